"""The scheduled verifier on the local stack (issue 23 item 6): attacks planted with the attacker's
permissions, the function invoked through Lambda's Invoke API with the schedule's event, its findings
read from its own log group and the template's alarms evaluated on the metrics it emitted.

moto does not evaluate IAM: each attack uses only calls the named role is granted in template.yaml
(the decide role: PutItem on the table, PutObject under decisions/ in the audit bucket, its own log
group; an administrator: a plain DeleteObject, which Object Lock turns into a delete marker).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kyc.domain.lineage import lineage_key
from kyclocal.alarms import TEMPLATE_PATH, breaches_at, datapoints_from_emf, load_alarms
from kyclocal.commands.digest import run_digest
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip
from tests.integration.conftest import screen

FUNCTION = "VerifyEvidenceFunction"
SCHEDULED_EVENT = Path(__file__).resolve().parents[2] / "events" / "verifier-schedule.json"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """Small clips, 8 frames: the verifier's work is reading, not screening."""
    # settle 0: the attacks are checked in the run right after them (in AWS a decision younger than
    # DigestSettleSeconds waits for the next run: tests/unit/functions/test_verifier.py)
    settings = LocalStackSettings(frame_count=8, extra_env={"KYC_VERIFIER_SETTLE_SECONDS": "0"})
    with LocalStack(settings) as running:
        yield running


@pytest.fixture(scope="module")
def screened(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    clip = make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", width=320, height=240, fps=15, seconds=2.0)
    item = screen(stack, clip, key="uploads/verifier/c.mp4")
    result, errored = run_digest(stack)  # the hourly digest has run since
    assert not errored, result
    return item


def _run_verifier(stack: LocalStack) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Invoke as EventBridge Scheduler does (Lambda Invoke, the scheduled event); return the result
    and this run's records from the verifier's own log group (findings and EMF)."""
    lam, logs = stack.client("lambda"), stack.client("logs")
    group = stack.log_group(FUNCTION)
    before = _streams(logs, group)
    response = lam.invoke(FunctionName=stack.function_names[FUNCTION], Payload=SCHEDULED_EVENT.read_bytes())
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    records = []
    for stream in sorted(_streams(logs, group) - before):
        for event in logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)[
            "events"
        ]:
            try:
                records.append(json.loads(event["message"]))
            except ValueError:
                continue
    return payload, records


def _streams(logs: Any, group: str) -> set[str]:
    try:
        return {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]}
    except logs.exceptions.ResourceNotFoundException:
        return set()


def _findings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("message") == "verifier finding"]


def _alarm_states(records: list[dict[str, Any]]) -> dict[str, bool]:
    """The template's own verifier alarms evaluated on this run's EMF (kyclocal.alarms)."""
    alarms = load_alarms(TEMPLATE_PATH)
    points = datapoints_from_emf(records)
    at = time.time() + 60
    return {
        name: breaches_at(alarms[name], points, at)
        for name in ("VerifierFindingAlarm", "VerifierMissedAlarm")
    }


def test_clean_stack_reports_nothing_and_no_alarm(stack: LocalStack, screened: dict) -> None:
    result, records = _run_verifier(stack)
    assert _findings(records) == [] and result["verified"], _findings(records)
    assert result["lineage_checked"] >= 1  # the screened decision's strict lineage was checked
    assert _alarm_states(records) == {"VerifierFindingAlarm": False, "VerifierMissedAlarm": False}


def test_a_verifier_that_never_ran_leaves_the_missed_alarm_firing() -> None:
    alarms = load_alarms(TEMPLATE_PATH)
    assert breaches_at(alarms["VerifierMissedAlarm"], [], time.time())  # no data: breaching


def _as_decide_role_log(stack: LocalStack, records: list[dict]) -> None:
    logs, group = stack.client("logs"), stack.log_group("DecideOutcomeFunction")
    stream = f"forged/{datetime.now(UTC).timestamp()}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now, "message": json.dumps(r)} for r in records],
    )


def test_forged_pass_by_the_decide_role_is_reported_and_alarms(stack: LocalStack, screened: dict) -> None:
    """A PASS for a submission never uploaded: item, lineage.json and a decide record in decide's
    own log group, as the decide role may write them."""
    sid = "e" * 64
    s3, audit = stack.client("s3"), stack.resources.audit_bucket
    lineage = json.loads(
        s3.get_object(Bucket=audit, Key=lineage_key(screened["submission_id"]))["Body"].read()
    )
    lineage |= {"submission_id": sid}
    lineage["decision"] |= {"decision": "PASS", "reasons": []}
    body = json.dumps(lineage).encode()
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": stack.kms_key_id, "ChecksumAlgorithm": "SHA256"}
    version = s3.put_object(Bucket=audit, Key=lineage_key(sid), Body=body, **kms)["VersionId"]
    ddb, table = stack.client("dynamodb"), stack.resources.decisions_table
    ddb.put_item(
        TableName=table,
        Item={
            "submission_id": {"S": sid},
            "decision": {"S": "PASS"},
            "reasons": {"L": []},
            "decided_at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
            "artefacts": {
                "M": {
                    "lineage_key": {"S": lineage_key(sid)},
                    "lineage_sha256": {"S": hashlib.sha256(body).hexdigest()},
                }
            },
        },
    )
    _as_decide_role_log(
        stack,
        [
            {
                "message": "lineage",
                "lineage": {
                    "stage": "decide",
                    "submission_id": sid,
                    "outputs": {"decision": "PASS", "lineage_sha256": hashlib.sha256(body).hexdigest()},
                },
            }
        ],
    )
    try:
        result, records = _run_verifier(stack)
    finally:
        ddb.delete_item(TableName=table, Key={"submission_id": {"S": sid}})
        s3.delete_object(
            Bucket=audit, Key=lineage_key(sid), VersionId=version, BypassGovernanceRetention=True
        )
    found = [f for f in _findings(records) if f["subject"] == sid]
    assert found and {f["check"] for f in found} == {"lineage"}, _findings(records)
    problems = " | ".join(f["problem"] for f in found)
    assert "execution history" in problems  # Step Functions never ran it: the service's witness
    assert not result["verified"]
    assert _alarm_states(records)["VerifierFindingAlarm"]


def test_delete_marker_on_evidence_is_reported_and_alarms(stack: LocalStack, screened: dict) -> None:
    s3, audit = stack.client("s3"), stack.resources.audit_bucket
    key = lineage_key(screened["submission_id"])
    marker = s3.delete_object(Bucket=audit, Key=key)["VersionId"]  # Object Lock: only a delete marker
    try:
        result, records = _run_verifier(stack)
    finally:
        s3.delete_object(Bucket=audit, Key=key, VersionId=marker)  # removing the marker restores it
    found = _findings(records)
    assert any(f["check"] == "digests" and f["problem"].startswith(f"deleted: {key}") for f in found), found
    assert not result["verified"] and _alarm_states(records)["VerifierFindingAlarm"]


def test_rewritten_decision_item_is_reported_and_alarms(stack: LocalStack, screened: dict) -> None:
    """The decide role rewrites the real decision (PutItem) after the digest listed it."""
    ddb, table, sid = stack.client("dynamodb"), stack.resources.decisions_table, screened["submission_id"]
    original = ddb.get_item(TableName=table, Key={"submission_id": {"S": sid}})["Item"]
    forged = dict(original) | {"decision": {"S": "PASS" if original["decision"]["S"] != "PASS" else "REJECT"}}
    ddb.put_item(TableName=table, Item=forged)
    try:
        result, records = _run_verifier(stack)
    finally:
        ddb.put_item(TableName=table, Item=original)
    found = _findings(records)
    assert any(f["check"] == "digests" and f["problem"].startswith("altered:") for f in found), found
    assert any(f["check"] == "lineage" and f["subject"] == sid for f in found), found
    assert not result["verified"] and _alarm_states(records)["VerifierFindingAlarm"]


def test_after_the_attacks_are_undone_the_stack_verifies_again(stack: LocalStack, screened: dict) -> None:
    result, records = _run_verifier(stack)
    assert _findings(records) == [] and result["verified"]
    assert not _alarm_states(records)["VerifierFindingAlarm"]
