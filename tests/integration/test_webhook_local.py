"""The webhook end to end on the local stack: a decision reaches the customer's endpoint, signed.

The path is the template's: the decision record's stream -> DecisionEventsPipe -> the decision bus ->
WebhookRule -> WebhookQueue (moto's EventBridge and SQS) -> WebhookFunction (the queue's event source
mapping, kyclocal) -> an HTTP POST to a real receiver on loopback. The receiver is the customer's: it
reads the signing secret from Secrets Manager (as a customer is told to in docs/review.md), checks each
request with the documented recipe (the doc's own Python, executed) over the raw bytes, refuses a bad
or stale signature with 401 and drops a replayed event id. A failing receiver makes the message come
back WebhookMaxAttempts times, then moto's SQS moves it to WebhookDeadLetterQueue.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip
from tests.fixtures.webhook_recipe import documented_verifier

MAX_ATTEMPTS = 3
RETRY_S = 2  # the queue's visibility timeout locally (the template's is 90 s)
HEADERS = ("Content-Type", "X-Kyc-Timestamp", "X-Kyc-Signature", "X-Kyc-Event-Id", "X-Kyc-Event-Type")


class CustomerEndpoint:
    """The customer's webhook receiver, built from docs/review.md: verify, refuse, drop replays."""

    def __init__(self) -> None:
        self.secret = ""
        self.failing = False  # answer 500 to everything (an outage on the customer's side)
        self.tolerance_s = 300
        self.log: list[dict[str, Any]] = []  # every request: headers, raw body, what was answered
        self.accepted: dict[str, dict[str, Any]] = {}  # event id -> body, first delivery only
        self._lock = threading.Lock()
        verify = documented_verifier()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                # the framework's case-insensitive headers, as the recipe expects (names arrive as sent)
                headers = {name: self.headers.get(name, "") for name in HEADERS}
                event_id = headers["X-Kyc-Event-Id"]
                with endpoint._lock:
                    if endpoint.failing:
                        verdict = 500
                    elif not verify(endpoint.secret, self.headers, raw, endpoint.tolerance_s):
                        verdict = 401
                    elif event_id in endpoint.accepted:
                        verdict = 208  # a replay within the window: acknowledged, not processed again
                    else:
                        endpoint.accepted[event_id] = json.loads(raw)
                        verdict = 204
                    endpoint.log.append({"headers": headers, "body": raw, "status": verdict})
                self.send_response(verdict)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kyc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def post(self, headers: dict[str, str], body: bytes) -> int:
        """Send a request to the endpoint as an attacker replaying a captured one would."""
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    def requests_for(self, submission_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.log if submission_id.encode() in r["body"]]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[CustomerEndpoint]:
    receiver = CustomerEndpoint()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture(scope="module")
def stack(endpoint: CustomerEndpoint) -> Iterator[LocalStack]:
    settings = LocalStackSettings(
        frame_count=8,
        webhook_url=endpoint.url,
        webhook_max_attempts=MAX_ATTEMPTS,
        webhook_retry_s=RETRY_S,
    )
    with LocalStack(settings) as running:
        secret_id = running.physical_ids["WebhookSigningSecret"]
        endpoint.secret = running.client("secretsmanager").get_secret_value(SecretId=secret_id)[
            "SecretString"
        ]
        yield running


def _screen(stack: LocalStack, path: Path) -> str:
    sid = stack.upload(path)["submission_id"]
    assert stack.wait_for_decision(sid, timeout_s=600) is not None
    return sid


def _wait(condition: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    return condition()


def test_a_decision_reaches_the_customers_endpoint_signed_and_replays_are_refused(
    stack: LocalStack, endpoint: CustomerEndpoint, tmp_path: Path
) -> None:
    sid = _screen(stack, make_clip(tmp_path / "decided.mp4", seconds=1.0, fps=10))
    delivered = _wait(lambda: [r for r in endpoint.requests_for(sid) if r["status"] == 204], 120)
    assert len(delivered) == 1, endpoint.requests_for(sid)
    request = delivered[0]
    body = json.loads(request["body"])
    decision = stack.decision(sid)
    assert (
        body["type"] == "Screening Decided" and request["headers"]["X-Kyc-Event-Type"] == "Screening Decided"
    )
    assert body["detail"]["submission_id"] == sid and body["detail"]["decision"] == decision["decision"]
    # an attacker who captured the request: the same bytes again are dropped as a replay of that event id
    headers = request["headers"]
    assert endpoint.post(headers, request["body"]) == 208
    assert [r["status"] for r in endpoint.requests_for(sid)] == [204, 208]  # processed once
    # a changed body, or a new timestamp on the old signature, fails the documented check
    assert endpoint.post(headers, request["body"].replace(sid.encode(), b"0" * len(sid))) == 401
    assert (
        endpoint.post(
            headers | {"X-Kyc-Timestamp": str(int(headers["X-Kyc-Timestamp"]) + 1)}, request["body"]
        )
        == 401
    )
    stale = str(int(headers["X-Kyc-Timestamp"]) - 3600)
    assert endpoint.post(headers | {"X-Kyc-Timestamp": stale}, request["body"]) == 401
    # the same signed request, later than the receiver's tolerance: refused even with a fresh event id store
    time.sleep(2.1)
    endpoint.tolerance_s = 1
    try:
        endpoint.accepted.pop(body["id"], None)
        assert endpoint.post(headers, request["body"]) == 401
    finally:
        endpoint.tolerance_s = 300


def test_a_failing_receiver_gets_every_attempt_then_the_event_is_dead_lettered(
    stack: LocalStack, endpoint: CustomerEndpoint, tmp_path: Path
) -> None:
    sqs = stack.client("sqs")
    dead_letters = stack.physical_ids["WebhookDeadLetterQueue"]
    endpoint.failing = True
    try:
        sid = _screen(stack, make_clip(tmp_path / "failing.mp4", seconds=1.0, fps=12))
        moved = _wait(
            lambda: sqs.receive_message(
                QueueUrl=dead_letters, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0
            ).get("Messages"),
            MAX_ATTEMPTS * RETRY_S * 4 + 90,
        )
    finally:
        endpoint.failing = False
    assert moved, "the event never reached the dead-letter queue"
    events = [json.loads(m["Body"]) for m in moved]
    mine = [e for e in events if e["detail"].get("submission_id") == sid]
    assert len(mine) == 1 and mine[0]["detail-type"] == "Screening Decision"  # the bus's own event
    attempts = endpoint.requests_for(sid)
    assert [a["status"] for a in attempts] == [500] * MAX_ATTEMPTS  # WebhookMaxAttempts, then no more
    assert len({a["headers"]["X-Kyc-Event-Id"] for a in attempts}) == 1  # one event, retried
    verify = documented_verifier()
    assert all(verify(endpoint.secret, a["headers"], a["body"]) for a in attempts)  # each attempt signed
