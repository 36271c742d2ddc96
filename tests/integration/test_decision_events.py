"""One Screening Decision event per decision, by construction: the decisions table's stream through
DecisionEventsPipe (as template.yaml declares it) to the bus, and a subscriber's queue on it.

Each test counts the events a subscriber receives for one submission. The expected detail is
projected by hand from the stored item (the table is the oracle), not by the code under test.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from pathlib import Path

import pytest

from kyclocal.lambda_router import LocalLambdaContext
from kyclocal.stack import LocalStack
from tests.integration.conftest import crash_in, screen

QUIET_S = 3.0  # after the first event, how long a second one is waited for


class Subscriber:
    """Everything the local subscriber queue received, by submission id."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack
        self.events: dict[str, list[dict]] = defaultdict(list)

    def _drain(self) -> None:
        sqs = self._stack.client("sqs")
        url = self._stack.decision_events_queue_url
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return
            for message in messages:
                event = json.loads(message["Body"])
                self.events[event["detail"]["submission_id"]].append(event)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def settled(self, sid: str, timeout_s: float = 30.0) -> list[dict]:
        """The events of ``sid`` once the first arrived and no other came for QUIET_S seconds."""
        deadline = time.monotonic() + timeout_s
        while not self.events.get(sid) and time.monotonic() < deadline:
            self._drain()
            time.sleep(0.2)
        quiet_until = time.monotonic() + QUIET_S
        while time.monotonic() < quiet_until:
            self._drain()
            time.sleep(0.2)
        return list(self.events.get(sid, []))


@pytest.fixture(scope="module")
def subscriber(stack: LocalStack) -> Subscriber:
    return Subscriber(stack)


def _expected_detail(item: dict) -> dict:
    return {
        "event_id": item["submission_id"],
        "submission_id": item["submission_id"],
        "client_reference": item.get("client_reference"),
        "decision": item["decision"],
        "reasons": item["reasons"],
        "policy_version": (item.get("policy") or {}).get("version"),
        "decided_at": item["decided_at"],
    }


def test_a_decision_yields_exactly_one_event(
    stack: LocalStack, subscriber: Subscriber, clips: dict[str, Path]
) -> None:
    item = screen(stack, clips["h264.mp4"], key="uploads/events/one.mp4")

    [event] = subscriber.settled(item["submission_id"])

    assert (event["source"], event["detail-type"]) == ("kyc.screening", "Screening Decision")
    assert event["detail"] == _expected_detail(item)
    assert "score" not in event["detail"] and "p_fake" not in json.dumps(event)


def test_the_state_machines_own_error_record_gets_one_event(
    stack: LocalStack, subscriber: Subscriber, clips: dict[str, Path]
) -> None:
    stack.router.fault = crash_in("DecideOutcomeFunction", "the decide function is down")
    item = screen(stack, clips["hevc.mov"], key="uploads/events/direct-error.mov")
    assert item["recorded_by"] == "state-machine"

    [event] = subscriber.settled(item["submission_id"])

    assert event["detail"] == _expected_detail(item)
    assert event["detail"]["decision"] == "ERROR" and event["detail"]["policy_version"] is None


def test_a_crash_right_after_the_decision_write_still_yields_one_event(
    stack: LocalStack, subscriber: Subscriber, clips: dict[str, Path]
) -> None:
    """The decide function writes its decision, then dies before it can answer Step Functions; the
    workflow's failure path calls it again (a replay). One decision, one event."""
    crashed: list[str] = []

    def crash_after_write(name: str, event: dict) -> None:
        if name != "DecideOutcomeFunction" or crashed or event.get("mode") != "decide":
            return
        crashed.append(event["state"]["submission"]["submission_id"])
        stack.router.fault = None  # the real run below, then the crash
        try:
            payload, errored = stack.router.invoke(name, json.dumps(event))
            assert not errored, payload
        finally:
            stack.router.fault = crash_after_write
        raise RuntimeError("killed after the decision write")

    stack.router.fault = crash_after_write
    item = screen(stack, clips["vp9.webm"], key="uploads/events/crash-after-write.webm")

    assert crashed == [item["submission_id"]]
    assert item["recorded_by"] == "decide"
    [event] = subscriber.settled(item["submission_id"])
    assert event["detail"] == _expected_detail(item)


def test_a_replayed_decide_yields_no_second_event(
    stack: LocalStack, subscriber: Subscriber, clips: dict[str, Path]
) -> None:
    item = screen(stack, clips["av1.mp4"], key="uploads/events/replay.mp4")
    assert len(subscriber.settled(item["submission_id"])) == 1
    replay = {
        "mode": "error",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:replay",
        "state": {"submission": item["_ident"], "failure": {"Error": "States.Timeout"}},
    }

    payload, errored = stack.router.invoke("DecideOutcomeFunction", json.dumps(replay))

    assert not errored and json.loads(payload)["decision"] == item["decision"]
    assert len(subscriber.settled(item["submission_id"], timeout_s=QUIET_S)) == 1


def test_a_losing_concurrent_writer_leaves_the_winners_evidence(
    stack: LocalStack, subscriber: Subscriber, clips: dict[str, Path]
) -> None:
    """Two decide runs for one submission both read "no decision yet"; the second, with other
    content (an ERROR), loses the conditional put and must not touch the winner's evidence."""
    item = screen(stack, clips["h264-rotated.mp4"], key="uploads/events/race.mp4")
    sid, audit, s3 = item["submission_id"], stack.resources.audit_bucket, stack.client("s3")
    keys = {name: item["artefacts"][f"{name}_key"] for name in ("scores", "lineage")}
    before = {name: s3.get_object(Bucket=audit, Key=key)["Body"].read() for name, key in keys.items()}
    loser = stack.router.module("DecideOutcomeFunction")  # an environment of its own, never returned
    real_get, reads = loser.DECISIONS.get, []

    def raced_read(sid_: str) -> dict | None:  # its first read came before the winner's put
        reads.append(sid_)
        return None if len(reads) == 1 else real_get(sid_)

    loser.DECISIONS.get = raced_read
    event = {
        "mode": "error",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:loser",
        "state": {"submission": item["_ident"], "failure": {"Error": "States.Timeout"}},
    }

    result = loser.lambda_handler(event, LocalLambdaContext(function_name="DecideOutcomeFunction"))

    assert result["decision"] == item["decision"] != "ERROR" and len(reads) == 2

    for name, key in keys.items():
        data = s3.get_object(Bucket=audit, Key=key)["Body"].read()
        assert data == before[name]
        assert hashlib.sha256(data).hexdigest() == item["artefacts"][f"{name}_sha256"]
    assert stack.decision(sid)["decision"] == item["decision"]
    assert len(subscriber.settled(sid, timeout_s=QUIET_S)) == 1


def test_a_batch_the_renderer_cannot_render_lands_in_the_pipes_dead_letter_queue(
    stack: LocalStack, subscriber: Subscriber, clips: dict[str, Path]
) -> None:
    """The renderer fails every time: after the template's retries the pipe writes where the batch
    was to DecisionEventsDeadLetterQueue (what its alarm watches), and no event is sent."""

    def renderer_down(name: str, event: object) -> None:
        if name == "RenderDecisionEventFunction":
            raise RuntimeError("the renderer is down")

    stack.router.fault = renderer_down
    item = screen(stack, clips["h264.mp4"], key="uploads/events/dead-letter.mp4")
    sqs = stack.client("sqs")
    queue = stack.physical_ids["DecisionEventsDeadLetterQueue"]
    url = queue if queue.startswith("http") else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    messages: list[dict] = []
    deadline = time.monotonic() + 30
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])

    assert len(messages) == 1
    info = json.loads(messages[0]["Body"])["ddbStreamBatchInfo"]
    assert info["batchSize"] >= 1 and info["startSequenceNumber"] <= info["endSequenceNumber"]
    stack.router.fault = None
    assert subscriber.settled(item["submission_id"], timeout_s=QUIET_S) == []


def test_attack_a_bare_put_item_of_a_pass_sends_no_event(
    stack: LocalStack, subscriber: Subscriber, clips: dict[str, Path]
) -> None:
    """Issue 23: with dynamodb:PutItem alone (the decide role's), an insider writes a PASS for a
    submission that was never uploaded, and flips a real decision with UpdateItem. The pipe's
    enrichment finds no execution for the first (RenderDecisionEvent withholds it: the
    UnwitnessedDecisionAlarm's metric) and records the second as a change of kind "other"
    (DecisionItemChangedAlarm's metric); the subscriber receives neither. moto does not evaluate
    IAM: the calls are those DecideOutcomeFunctionRole is granted."""
    real = screen(stack, clips["vp9.webm"], key="uploads/events/flipped.webm")
    [_] = subscriber.settled(real["submission_id"])
    ddb, table = stack.client("dynamodb"), stack.resources.decisions_table
    forged = hashlib.sha256(b"never uploaded").hexdigest()
    ddb.put_item(
        TableName=table,
        Item={
            "submission_id": {"S": forged},
            "decision": {"S": "PASS"},
            "reasons": {"L": []},
            "client_reference": {"S": "CRM-insider-friend"},
            "decided_at": {"S": real["decided_at"]},
            "source": {"M": {"bucket": {"S": stack.resources.intake_bucket}, "version_id": {"S": "v-x"}}},
        },
    )
    ddb.update_item(
        TableName=table,
        Key={"submission_id": {"S": real["submission_id"]}},
        UpdateExpression="SET decision = :p",
        ExpressionAttributeValues={":p": {"S": "PASS"}},
    )

    assert subscriber.settled(forged, timeout_s=8.0) == []
    assert len(subscriber.settled(real["submission_id"], timeout_s=1.0)) == 1  # still the one real event
    records = list(stack.log_lines("RenderDecisionEventFunction"))
    withheld = [r for r in records if r.get("message") == "decision withheld: no witness"]
    assert [r["submission_id"] for r in withheld] == [forged]
    changed = [r["change"] for r in records if r.get("message") == "decision item changed"]
    assert {(c["submission_id"], c["event"], c["kind"], c["decision"]) for c in changed} == {
        (real["submission_id"], "MODIFY", "other", "PASS")
    }
    assert any('"UnwitnessedDecisions"' in json.dumps(r) for r in records), (
        "the withheld decision is counted for UnwitnessedDecisionAlarm"
    )
