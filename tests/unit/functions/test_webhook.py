"""WebhookFunction against a real HTTP receiver on loopback, the secret in moto's Secrets Manager.

The receiver checks each request with the recipe docs/review.md gives customers (the doc's own Python
snippet, executed) over the raw bytes it received, so the test fails if what is sent is not what was
signed; failures come back as SQS batch item failures (the queue retries, then dead-letters them).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.fixtures.webhook_recipe import documented_verifier
from tests.unit.functions.handler_loader import FakeContext, load_handler

SECRET = "Zr5bP0qL8mW2xT7vK4nC9sD1fG6hJ3yA"  # made up here
# the bus's detail type -> the type receivers are promised (docs/review.md, "Webhook")
AS_SENT = {"Screening Decision": "Screening Decided", "Screening Reviewed": "Screening Reviewed"}


class Receiver:
    """A webhook receiver: records every request; answers ``status`` (per event id, or default)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status: dict[str, int] = {}
        self.default = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items()}
                receiver.requests.append({"path": self.path, "headers": headers, "body": body})
                code = receiver.status.get(headers.get("X-Kyc-Event-Id", ""), receiver.default)
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kyc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def handler(receiver: Receiver, monkeypatch: pytest.MonkeyPatch):
    from aws_lambda_powertools.utilities import parameters

    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        arn = sm.create_secret(Name="kyc-webhook-signing", SecretString=SECRET)["ARN"]
        parameters.clear_caches()
        module = load_handler(
            "webhook", {"KYC_WEBHOOK_URL": receiver.url, "KYC_WEBHOOK_SECRET_ARN": arn}, monkeypatch
        )
        yield module
        parameters.clear_caches()


def _event(n: int, detail_type: str = "Screening Decision") -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"00000000-0000-0000-0000-00000000000{n}",
        "detail-type": detail_type,
        "source": "kyc.screening",
        "account": "123456789012",
        "time": "2026-12-06T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"submission_id": f"{n}" * 64, "decision": "REVIEW", "reasons": ["MODEL_UNCERTAIN"]},
    }


def _sqs(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1765022400000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:webhook",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_each_event_is_posted_signed_and_verifies_with_the_documented_recipe(handler, receiver):
    events = [_event(1), _event(2, "Screening Reviewed")]
    answer = handler.lambda_handler(_sqs(*(json.dumps(e) for e in events)), FakeContext())
    assert answer == {"batchItemFailures": []}
    assert len(receiver.requests) == 2
    check = documented_verifier()
    received = sorted(receiver.requests, key=lambda r: r["headers"]["X-Kyc-Event-Id"])
    for sent, request in zip(events, received, strict=True):
        assert request["path"] == "/hooks/kyc"
        assert check(SECRET, request["headers"], request["body"]), request["headers"]
        assert not check("another-secret-entirely", request["headers"], request["body"])
        body = json.loads(request["body"])
        assert body["id"] == sent["id"] and body["type"] == AS_SENT[sent["detail-type"]]
        assert body["detail"] == sent["detail"]
        assert request["headers"]["Content-Type"] == "application/json"


def test_a_refused_or_redirected_post_is_a_batch_item_failure_and_only_that_one(handler, receiver):
    receiver.status = {_event(1)["id"]: 503, _event(2)["id"]: 302}
    answer = handler.lambda_handler(
        _sqs(json.dumps(_event(1)), json.dumps(_event(2)), json.dumps(_event(3))), FakeContext()
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    assert [r["path"] for r in receiver.requests].count("/elsewhere") == 0  # no redirect followed


def test_an_unreachable_receiver_fails_the_batch_for_a_retry(handler, receiver, monkeypatch):
    receiver.server.shutdown()
    receiver.server.server_close()
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with pytest.raises(BatchProcessingError):  # every record failed: the whole batch comes back
        handler.lambda_handler(_sqs(json.dumps(_event(1))), FakeContext())


def test_a_message_that_is_no_webhook_event_is_dropped_not_retried_forever(handler, receiver):
    answer = handler.lambda_handler(
        _sqs("not json", json.dumps(_event(4, "Object Created")), json.dumps(_event(5))), FakeContext()
    )
    assert answer == {"batchItemFailures": []}
    assert [r["headers"]["X-Kyc-Event-Id"] for r in receiver.requests] == [_event(5)["id"]]
