"""Lineage from the logs alone: rebuilt, verified against the stores, tampering found, state kept."""

from __future__ import annotations

import argparse
import io
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kyc.domain.frame_location import frame_key
from kyc.domain.lineage import chain_from_logs, is_failure, lineage_key, verify_chain
from kyclocal.commands.lineage import cmd_lineage, lineage_report
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip
from tests.integration.conftest import screen


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state") / ".local-stack"


STOPPED: set[int] = set()  # stacks a test has stopped itself (the round trip does)


@pytest.fixture(scope="module")
def stack(state_dir: Path) -> Iterator[LocalStack]:
    """Overrides conftest's: small clips, 8 frames, and state saved on stop."""
    running = LocalStack(LocalStackSettings(frame_count=8, state_dir=state_dir))
    running.start()
    yield running
    if id(running) not in STOPPED:
        running.stop()


@pytest.fixture(scope="module")
def screened(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict:
    clip = make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", width=320, height=240, fps=15, seconds=2.0)
    return screen(stack, clip, key="uploads/lineage/c.mp4")


def _forget_everything() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _fetch(stack: LocalStack):
    s3 = stack.client("s3")

    def fetch(bucket: str, key: str) -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    return fetch


def test_lineage_rebuilt_from_logs_alone_verifies(stack: LocalStack, screened: dict) -> None:
    sid = screened["submission_id"]
    chain = chain_from_logs(stack.log_lines(), sid)

    notified = ["notify"] if screened["decision"] == "REVIEW" else []  # reviewers are told of REVIEWs
    faces = ["faces"]  # the face stage (docs/face-stage.md) logs between extraction and scoring
    assert [s.stage for s in chain.stages] == [
        "validate",
        "extract",
        *faces,
        "score",
        "reuse",
        "decide",
        *notified,
    ]
    assert chain.problems == ()
    assert chain.decision == screened["decision"]
    assert chain.first("validate").outputs["sha256"] == screened["source"]["sha256"]
    assert chain.terminal.outputs["lineage_sha256"] == screened["artefacts"]["lineage_sha256"]
    assert chain.execution_arn == screened["execution_arn"]
    problems = verify_chain(
        chain, _fetch(stack), audit_bucket=stack.resources.audit_bucket, decision_item=screened
    )
    assert problems == []


def test_lineage_report_clean_submission_has_no_problems(stack: LocalStack, screened: dict) -> None:
    report = lineage_report(stack, screened["submission_id"])

    assert report is not None and report["problems"] == []
    assert report["summary"]["input_sha256"] == screened["source"]["sha256"]
    assert report["summary"]["policy_version"] == screened["policy"]["version"]


def test_lineage_tampered_frame_fails_with_its_key(stack: LocalStack, screened: dict) -> None:
    sid = screened["submission_id"]
    s3 = stack.client("s3")
    manifest_key = f"frames/{sid}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=stack.resources.work_bucket, Key=manifest_key)["Body"].read())
    # frames live one object per scoring batch (issue 25): every frame in the replaced object fails
    victim = frame_key(manifest, manifest["frames"][0])
    in_victim = [f for f in manifest["frames"] if frame_key(manifest, f) == victim]
    original = s3.get_object(Bucket=stack.resources.work_bucket, Key=victim)["Body"].read()
    s3.put_object(Bucket=stack.resources.work_bucket, Key=victim, Body=b"tampered")
    try:
        report = lineage_report(stack, sid)
    finally:
        s3.put_object(Bucket=stack.resources.work_bucket, Key=victim, Body=original)

    assert report["problems"] == [f"hash mismatch: {victim} @{f['offset']}" for f in in_victim]


def test_lineage_tampered_lineage_json_fails_on_logged_hash(stack: LocalStack, screened: dict) -> None:
    sid = screened["submission_id"]
    s3 = stack.client("s3")
    bucket, key = stack.resources.audit_bucket, lineage_key(sid)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    forged = json.loads(original)
    forged["decision"]["decision"] = "PASS"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(forged).encode())
    try:
        problems = lineage_report(stack, sid)["problems"]
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)

    assert problems[0].startswith(f"hash mismatch: {key}: stored ")
    assert f"lineage.json decision.decision: stored 'PASS', logs say '{screened['decision']}'" in problems


def test_lineage_tampered_decision_item_fails_on_decision(stack: LocalStack, screened: dict) -> None:
    sid = screened["submission_id"]
    ddb = stack.client("dynamodb")
    table = stack.resources.decisions_table
    ddb.update_item(
        TableName=table,
        Key={"submission_id": {"S": sid}},
        UpdateExpression="SET decision = :d",
        ExpressionAttributeValues={":d": {"S": "PASS"}},
    )
    try:
        problems = lineage_report(stack, sid)["problems"]
    finally:
        ddb.update_item(
            TableName=table,
            Key={"submission_id": {"S": sid}},
            UpdateExpression="SET decision = :d",
            ExpressionAttributeValues={":d": {"S": screened["decision"]}},
        )

    assert problems == [
        f"decision record decision: stored 'PASS', decide logged '{screened['decision']}'",
        # and Step Functions' own history, which no role of the stack can write (issue 23)
        f"witness: the decision record says PASS, DecideOutcome returned {screened['decision']} in execution "
        f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{sid}",
    ]


@pytest.mark.parametrize("kind", ["lineage.json", "scores.json", "frames"])
def test_lineage_deleted_evidence_fails_within_retention(
    stack: LocalStack, screened: dict, kind: str
) -> None:
    sid = screened["submission_id"]
    s3 = stack.client("s3")
    audit, work = stack.resources.audit_bucket, stack.resources.work_bucket
    victims = {
        "lineage.json": [(audit, lineage_key(sid))],
        "scores.json": [(audit, f"decisions/{sid}/scores.json")],
        "frames": [
            (work, o["Key"])
            for o in s3.list_objects_v2(Bucket=work, Prefix=f"frames/{sid}/").get("Contents", [])
        ],
    }[kind]
    assert victims
    originals = {v: s3.get_object(Bucket=v[0], Key=v[1])["Body"].read() for v in victims}
    for bucket, key in victims:
        s3.delete_object(Bucket=bucket, Key=key)
    try:
        now = lineage_report(stack, sid)["problems"]
        later = lineage_report(stack, sid, now=datetime.now(UTC) + timedelta(days=2))["problems"]
    finally:
        for (bucket, key), body in originals.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)

    assert any(is_failure(p) and p.startswith("missing: ") for p in now), now
    if kind == "frames":  # past the work bucket's one-day expiry, frames alone are excused
        assert later and not [p for p in later if is_failure(p)], later
    else:  # decision evidence is kept for years
        assert [p for p in later if is_failure(p)], later


def test_lineage_deleted_decision_item_fails(stack: LocalStack, screened: dict) -> None:
    sid = screened["submission_id"]
    ddb = stack.client("dynamodb")
    table = stack.resources.decisions_table
    raw = ddb.get_item(TableName=table, Key={"submission_id": {"S": sid}})["Item"]
    ddb.delete_item(TableName=table, Key={"submission_id": {"S": sid}})
    try:
        problems = lineage_report(stack, sid)["problems"]
    finally:
        ddb.put_item(TableName=table, Item=raw)

    assert [p for p in problems if is_failure(p) and "decision record" in p], problems


def test_lineage_forged_score_on_the_item_fails(stack: LocalStack, screened: dict) -> None:
    sid = screened["submission_id"]
    ddb = stack.client("dynamodb")
    table = stack.resources.decisions_table
    raw = ddb.get_item(TableName=table, Key={"submission_id": {"S": sid}})["Item"]
    ddb.update_item(
        TableName=table,
        Key={"submission_id": {"S": sid}},
        UpdateExpression="SET score = :s",
        ExpressionAttributeValues={":s": {"N": "0.001"}},
    )
    try:
        problems = lineage_report(stack, sid)["problems"]
    finally:
        ddb.put_item(TableName=table, Item=raw)

    assert any(p.startswith("decision record score: stored 0.001") for p in problems), problems


def _exit_code(report: dict | None, stack: LocalStack, sid: str) -> int:
    """What `kycscreen lineage` exits with for this report (cmd_lineage's rule, without a new stack)."""
    if report is None:
        return 1 if stack.decision(sid) is not None else 2
    return 1 if any(is_failure(p) for p in report["problems"]) else 0


def _as_decide_role_log(stack: LocalStack, records: list[dict]) -> None:
    """logs:CreateLogStream + PutLogEvents on the decide function's own log group: all its role may."""
    logs, group = stack.client("logs"), stack.log_group("DecideOutcomeFunction")
    stream = f"forged/{len(records)}-{datetime.now(UTC).timestamp()}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(datetime.now(UTC).timestamp() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now, "message": json.dumps(r)} for r in records],
    )


def test_attack_forged_decision_by_the_decide_role_is_caught(stack: LocalStack, screened: dict) -> None:
    """With only the decide role's permissions (PutItem, PutObject on decisions/*, its own log group),
    an insider invents a PASS for a submission that was never uploaded, complete with lineage.json,
    scores.json and stage records written into decide's log group. Strict lineage refuses the
    foreign stage records and finds no execution in Step Functions' history: exit 1.
    (moto does not evaluate IAM; the calls used are those DecideOutcomeFunctionRole is granted.)"""
    import hashlib

    sid = "e" * 64  # keyed ids cannot be computed without KMS: the insider makes one up
    s3, audit = stack.client("s3"), stack.resources.audit_bucket
    real = stack.decision(screened["submission_id"])
    assert real is not None
    lineage = json.loads(s3.get_object(Bucket=audit, Key=lineage_key(real["submission_id"]))["Body"].read())
    lineage |= {
        "submission_id": sid,
        "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:x:{sid}",
    }
    lineage["decision"] |= {"decision": "PASS", "reasons": []}
    body = json.dumps(lineage).encode()
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": stack.kms_key_id, "ChecksumAlgorithm": "SHA256"}
    s3.put_object(Bucket=audit, Key=lineage_key(sid), Body=body, **kms)
    item = {
        "submission_id": {"S": sid},
        "decision": {"S": "PASS"},
        "reasons": {"L": []},
        "decided_at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
        "received_at": {"S": "2020-01-01T00:00:00+00:00"},  # old enough to excuse anything, were it trusted
        "execution_arn": {"S": lineage["execution_arn"]},
        "source": {
            "M": {
                "bucket": {"S": stack.resources.intake_bucket},
                "key": {"S": "uploads/never.mp4"},
                "version_id": {"S": "v-never"},
                "sha256": {"S": lineage["source"]["sha256"]},
            }
        },
        "artefacts": {
            "M": {
                "lineage_key": {"S": lineage_key(sid)},
                "lineage_sha256": {"S": hashlib.sha256(body).hexdigest()},
            }
        },
    }
    stack.client("dynamodb").put_item(TableName=stack.resources.decisions_table, Item=item)
    # every stage record of the real chain, re-labelled for the invented submission, in decide's group
    chain = chain_from_logs(stack.log_lines(), real["submission_id"])
    forged = []
    for record in chain.stages:
        entry = dict(record.entry) | {"submission_id": sid}
        if record.stage == "decide":
            entry["outputs"] = dict(entry["outputs"]) | {
                "decision": "PASS",
                "reasons": [],
                "lineage_sha256": hashlib.sha256(body).hexdigest(),
            }
            entry["execution_arn"] = lineage["execution_arn"]
        forged.append({"message": "lineage", "lineage": entry, "function_name": "decide", "timestamp": "x"})
    _as_decide_role_log(stack, forged)

    report = lineage_report(stack, sid)
    assert report is not None
    problems = report["problems"]
    assert any(p.startswith("foreign record: a validate record in /aws/lambda/") for p in problems), problems
    assert any(p.startswith("missing: execution history (Step Functions has no execution") for p in problems)
    assert _exit_code(report, stack, sid) == 1
    # without the stage records, a bare decision is exit 1 too (never "nothing to verify")
    bare = "d" * 64
    stack.client("dynamodb").put_item(
        TableName=stack.resources.decisions_table,
        Item={"submission_id": {"S": bare}, "decision": {"S": "PASS"}, "decided_at": item["decided_at"]},
    )
    assert lineage_report(stack, bare) is None and _exit_code(None, stack, bare) == 1
    for forged_sid in (sid, bare):
        stack.client("dynamodb").delete_item(
            TableName=stack.resources.decisions_table, Key={"submission_id": {"S": forged_sid}}
        )


def test_lineage_state_round_trip_still_verifies(stack: LocalStack, screened: dict, state_dir: Path) -> None:
    """Last in the module: stop (which saves), verify from the CLI in a restored stack."""
    sid = screened["submission_id"]
    stack.stop()
    STOPPED.add(id(stack))
    _forget_everything()  # moto's backends are per process: make the next stack really fresh
    files = [p for p in state_dir.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700

    out = io.StringIO()
    args = argparse.Namespace(submission_id=sid, json=True, state_dir=state_dir, at=None)
    code = cmd_lineage(args, out)
    report = json.loads(out.getvalue())
    assert (code, report["problems"], report["verified"]) == (0, [], True)
    assert report["decision"] == screened["decision"]

    ident = screened["_ident"]
    _forget_everything()
    with LocalStack(LocalStackSettings(frame_count=8, state_dir=state_dir)) as again:
        head = again.client("s3").head_object(
            Bucket=ident["bucket"], Key=ident["key"], VersionId=ident["version_id"]
        )
        assert head["VersionId"] == ident["version_id"]
        assert again.drain_admissions(timeout_s=5)
        decides = [  # this submission's (the forged-decision attack above left records of its own)
            r
            for r in again.log_lines()
            if (r.get("lineage") or {}).get("stage") == "decide" and r["lineage"].get("submission_id") == sid
        ]
        assert len(decides) == 1, "a restored upload was screened again"
        assert again.decision(sid)["decision"] == screened["decision"]
