"""The scheduled verifier's handler against in-process moto: real digests written by the digest
handler, signatures checked by KMS Verify, findings logged and counted (issue 23 item 6).

The local-stack journey (attacks planted, the function invoked as the schedule would, the alarm
evaluated) is tests/integration/test_verifier.py; here each finding kind is pinned down cheaply.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.domain.verifier import lineage_pool, sample_decisions
from kyclocal.alarms import datapoints_from_emf
from kyclocal.kms import honour_digest_message_type
from tests.fixtures.decisions_table import create_decisions_table
from tests.unit.functions.handler_loader import FakeContext, load_handler
from tests.unit.functions.test_digest import AUDIT, TABLE, _record

INTAKE, WORK = "intake", "work"
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:kyc-screening"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    honour_digest_message_type()  # moto's Verify hashes a DIGEST again; KMS does not
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_decisions_table(ddb, TABLE)
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (AUDIT, INTAKE, WORK):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        kms = boto3.client("kms", region_name="us-east-1")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        common = {"KYC_AUDIT_BUCKET": AUDIT, "KYC_DECISIONS_TABLE": TABLE, "KYC_DIGEST_SIGNING_KEY_ID": key}
        digest = load_handler("digest", common | {"KYC_DIGEST_SETTLE_SECONDS": "0"}, monkeypatch)
        verifier = load_handler(
            "verifier",
            common
            | {
                "KYC_INTAKE_BUCKET": INTAKE,
                "KYC_WORK_BUCKET": WORK,
                "KYC_STATE_MACHINE_ARN": STATE_MACHINE,
                "KYC_VERIFIER_STAGE_LOG_GROUPS": json.dumps({"decide": "/aws/lambda/kyc-decide-outcome"}),
                "KYC_VERIFIER_RETENTION_DAYS": json.dumps({INTAKE: 30, WORK: 1, AUDIT: 1825}),
                "KYC_VERIFIER_SAMPLE_SIZE": "0",
                "KYC_VERIFIER_SETTLE_SECONDS": "0",  # the records below are minutes old
            },
            monkeypatch,
        )
        yield {"ddb": ddb, "s3": s3, "kms": kms, "digest": digest, "verifier": verifier, "key": key}


def _verify(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], list[dict]]:
    """The handler's result, and what it wrote: EMF on stdout, and every record it logged at error
    level with its fields (recorded at the logger's call, whatever stream an earlier test left it)."""
    capsys.readouterr()
    logger = aws["verifier"].logger
    logged: list[dict[str, Any]] = []
    error = logger.error

    def record(msg: str, *args: Any, extra: dict[str, Any] | None = None, **kwargs: Any) -> None:
        logged.append({"message": msg} | {k: v for k, v in (extra or {}).items() if k in FIELDS})
        error(msg, *args, extra=extra, **kwargs)

    logger.error = record  # type: ignore[method-assign]
    try:
        result = aws["verifier"].lambda_handler({}, FakeContext())
    finally:
        del logger.error  # the class's method again
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return result, lines + logged


def _metric(lines: list[dict], name: str) -> list[float]:
    """CloudWatch's reading of the EMF records: every value of ``name``."""
    return [p.value for p in datapoints_from_emf(lines) if p.name == name]


FIELDS = ("check", "subject", "problem")


def _findings(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("message") == "verifier finding"]


def _two_digested_decisions(aws: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    _record(aws["ddb"], aws["s3"], "a" * 64, now - timedelta(minutes=2), decision="PASS")
    _record(aws["ddb"], aws["s3"], "b" * 64, now - timedelta(minutes=1))
    aws["digest"].lambda_handler({"settle_seconds": 0}, FakeContext())


def test_clean_evidence_is_no_finding_and_still_counts_a_run(aws, capsys) -> None:
    _two_digested_decisions(aws)
    result, lines = _verify(aws, capsys)
    assert result["verified"] and result["findings"] == 0, _findings(lines)
    assert _metric(lines, "VerifierFindings") == [0.0]  # a value every run: the alarm reads a zero
    assert _metric(lines, "VerifierRuns") == [1.0]


def test_a_delete_marker_on_evidence_is_a_logged_and_counted_finding(aws, capsys) -> None:
    _two_digested_decisions(aws)
    hidden = f"decisions/{'a' * 64}/lineage.json"
    aws["s3"].delete_object(Bucket=AUDIT, Key=hidden)  # a plain delete: only a marker
    result, lines = _verify(aws, capsys)
    assert not result["verified"] and result["digest_findings"] >= 1
    found = _findings(lines)
    assert any(f["check"] == "digests" and hidden in f["problem"] for f in found), found
    assert _metric(lines, "VerifierFindings") == [float(len(found))]


def test_a_digest_signed_by_another_key_fails_kms_verify(aws, capsys) -> None:
    _two_digested_decisions(aws)
    listing = aws["s3"].list_objects_v2(Bucket=AUDIT, Prefix="digests/")["Contents"]
    key = listing[0]["Key"]
    document = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=key)["Body"].read())
    # a second key the forger controls signs the same body; stored as the digest's only version
    other = aws["kms"].create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    body = json.dumps(document["digest"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signature = aws["kms"].sign(
        KeyId=other,
        Message=hashlib.sha256(body.encode()).digest(),
        MessageType="DIGEST",
        SigningAlgorithm="ECDSA_SHA_256",
    )["Signature"]
    import base64

    document["signature"] = base64.b64encode(signature).decode()
    versions = aws["s3"].list_object_versions(Bucket=AUDIT, Prefix=key)["Versions"]
    aws["s3"].delete_object(Bucket=AUDIT, Key=key, VersionId=versions[0]["VersionId"])  # no lock in moto here
    aws["s3"].put_object(Bucket=AUDIT, Key=key, Body=json.dumps(document).encode())
    result, lines = _verify(aws, capsys)
    problems = [f["problem"] for f in _findings(lines)]
    assert f"signature: {key} does not verify with the public key" in problems, problems
    assert not result["verified"]


def test_no_digest_where_decisions_exist_is_a_finding_not_nothing_to_verify(aws, capsys) -> None:
    _record(aws["ddb"], aws["s3"], "c" * 64, datetime.now(UTC))
    result, lines = _verify(aws, capsys)
    assert not result["verified"]
    assert [f["problem"].split(":", 1)[0] for f in _findings(lines)] == ["missing"]
    assert _metric(lines, "VerifierFindings") == [1.0]


def test_a_sampled_decision_no_stage_function_logged_is_a_lineage_finding(aws, capsys, monkeypatch) -> None:
    _two_digested_decisions(aws)
    monkeypatch.setattr(
        aws["verifier"],
        "VERIFIER",
        aws["verifier"].VERIFIER.__class__(**(vars(aws["verifier"].VERIFIER) | {"sample_size": 1})),
    )
    result, lines = _verify(aws, capsys)
    found = [f for f in _findings(lines) if f["check"] == "lineage"]
    # the PASS is drawn first; no log group, no execution: strict lineage fails, never "unknown"
    assert [f["subject"] for f in found] == ["a" * 64]
    assert result["lineage_checked"] == 1 and not result["verified"]


@pytest.mark.parametrize("seed", range(5))
def test_sample_takes_every_pass_first_then_others_at_random(seed: int) -> None:
    items = [{"submission_id": f"p{i}", "decision": "PASS"} for i in range(3)]
    items += [{"submission_id": f"r{i}", "decision": "REVIEW"} for i in range(10)]
    picked = sample_decisions(items, 5, random.Random(seed))
    assert set(picked[:3]) == {"p0", "p1", "p2"} and len(picked) == 5 and len(set(picked)) == 5
    assert all(p.startswith("r") for p in picked[3:])
    assert sample_decisions(items, 100, random.Random(seed)).__len__() == 13


def test_sample_is_not_predictable_from_the_items() -> None:
    items = [{"submission_id": f"r{i}", "decision": "REVIEW"} for i in range(50)]
    draws = {tuple(sample_decisions(items, 5)) for _ in range(20)}  # the OS CSPRNG, fresh each run
    assert len(draws) > 15


def test_pool_leaves_settling_decisions_for_the_next_run_and_keeps_every_undated_item() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def at(minutes_ago: float) -> str:
        return (now - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")

    items = [
        {"submission_id": "settling", "decided_at": at(14)},  # younger than 15 min
        {"submission_id": "settled", "decided_at": at(16)},
        {"submission_id": "old", "decided_at": at(25 * 60)},  # outside the 24 h window
        {"submission_id": "edge", "decided_at": at(24 * 60)},  # exactly at the window's start: in
        {"submission_id": "undated"},
        {"submission_id": "numeric", "decided_at": 1765000000},
        {"submission_id": "future", "decided_at": at(-60)},  # the digest check reports it (future:)
    ]
    pool = lineage_pool(items, now, lookback=timedelta(hours=24), settle=timedelta(minutes=15))
    assert [i["submission_id"] for i in pool] == ["settled", "edge", "undated", "numeric"]


def test_a_run_short_of_time_stops_sampling_and_still_reports(aws, capsys, monkeypatch) -> None:
    """A sample larger than the time left: the run checks what it can and still emits its metrics
    (a timed-out run would emit nothing and look like a missed run)."""
    _two_digested_decisions(aws)
    verifier = aws["verifier"]
    monkeypatch.setattr(
        verifier, "VERIFIER", verifier.VERIFIER.__class__(**(vars(verifier.VERIFIER) | {"sample_size": 2}))
    )
    left = iter([120_000, 30_000])  # enough for one check, then below SPARE_MS

    class ShortContext(FakeContext):
        def get_remaining_time_in_millis(self) -> int:
            return next(left)

    capsys.readouterr()
    result = verifier.lambda_handler({}, ShortContext())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert result["lineage_checked"] == 1
    assert _metric(lines, "VerifierLineageChecks") == [1.0] and _metric(lines, "VerifierRuns") == [1.0]
