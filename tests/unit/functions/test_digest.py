"""The digest handler against in-process moto: the chain as a cursor, late records, one write per key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from kyc.domain.digest import StoredDigest, verify_digests
from tests.fixtures.decisions_table import create_decisions_table
from tests.unit.functions.handler_loader import FakeContext, load_handler

TABLE, AUDIT = "decisions", "audit"


def _record(ddb: Any, sid: str, decided_at: datetime, decision: str = "REVIEW") -> dict[str, str]:
    """A decision record as decide writes it, and the evidence bytes it names."""
    docs = {f"decisions/{sid}/{name}.json": f"{name} of {sid}".encode() for name in ("scores", "lineage")}
    artefacts = {
        f"{name}_{part}": {"S": value}
        for name in ("scores", "lineage")
        for part, value in (
            ("key", f"decisions/{sid}/{name}.json"),
            ("sha256", hashlib.sha256(docs[f"decisions/{sid}/{name}.json"]).hexdigest()),
        )
    }
    ddb.put_item(
        TableName=TABLE,
        Item={
            "submission_id": {"S": sid},
            "decision": {"S": decision},
            "decided_at": {"S": decided_at.isoformat(timespec="milliseconds")},
            "artefacts": {"M": artefacts},
        },
    )
    return {k: v.decode() for k, v in docs.items()}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_decisions_table(ddb, TABLE)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=AUDIT)
        kms = boto3.client("kms", region_name="us-east-1")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        app = load_handler(
            "digest",
            {
                "KYC_AUDIT_BUCKET": AUDIT,
                "KYC_DECISIONS_TABLE": TABLE,
                "KYC_DIGEST_SIGNING_KEY_ID": key,
                "KYC_DIGEST_SETTLE_SECONDS": "900",
            },
            monkeypatch,
        )
        public = serialization.load_der_public_key(kms.get_public_key(KeyId=key)["PublicKey"])
        yield {"ddb": ddb, "s3": s3, "app": app, "public": public, "evidence": {}}


def _run(aws: dict[str, Any], **event: Any) -> dict[str, Any]:
    return aws["app"].lambda_handler(event, FakeContext())


def _verify(aws: dict[str, Any]):
    s3 = aws["s3"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=AUDIT, Prefix="digests/").get("Contents", []))
    stored = [StoredDigest(k, s3.get_object(Bucket=AUDIT, Key=k)["Body"].read()) for k in keys]

    def check(message: bytes, signature: bytes) -> bool:
        try:
            aws["public"].verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    evidence = {k: v.encode() for k, v in aws["evidence"].items()}
    return verify_digests(stored, check, evidence.get, recorded=aws["app"].INDEX.decided_in)


def test_settle_time_leaves_recent_records_for_the_next_digest(aws) -> None:
    now = datetime.now(UTC)
    aws["evidence"] |= _record(aws["ddb"], "old", now - timedelta(hours=1))
    aws["evidence"] |= _record(aws["ddb"], "recent", now - timedelta(minutes=5))  # within the 900 s
    first = _run(aws)
    assert first["sequence"] == 1 and first["entries"] == 2  # "old" only: two documents
    second = _run(aws, settle_seconds=0)  # on demand, up to now
    assert second["sequence"] == 2 and second["entries"] == 2 and second["late_entries"] == 0
    assert second["period"]["start"] == first["period"]["end"]
    report = _verify(aws)
    assert report.problems == [] and report.entries == 4


def test_record_visible_only_after_its_period_was_digested_is_listed_late(aws) -> None:
    now = datetime.now(UTC)
    first = _run(aws, settle_seconds=0)
    assert first["entries"] == 0
    # a record decided inside the first period that the index shows only now
    aws["evidence"] |= _record(aws["ddb"], "late", now - timedelta(minutes=1), decision="ERROR")
    second = _run(aws, settle_seconds=0)
    assert second["late_entries"] == 2
    listed = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=second["digest_key"])["Body"].read())
    assert {(e["key"], e.get("late")) for e in listed["digest"]["entries"]} == {
        ("decisions/late/lineage.json", True),
        ("decisions/late/scores.json", True),
    }
    assert _run(aws, settle_seconds=0)["late_entries"] == 0  # listed once, not again
    assert _verify(aws).problems == []


def test_a_digest_key_is_written_once(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(aws, settle_seconds=0)
    monkeypatch.setattr(aws["app"].STORE, "latest", lambda today: None)  # a second writer of sequence 1
    with pytest.raises(Exception, match="exists already"):
        _run(aws, settle_seconds=0)


def test_backlog_is_split_into_digests_of_bounded_size_and_chains(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    for minute in range(7):  # seven records across outcomes, older than the settle time
        decision = ("PASS", "REVIEW", "REJECT")[minute % 3]
        aws["evidence"] |= _record(
            aws["ddb"], f"b{minute}", now - timedelta(hours=2, minutes=-minute), decision
        )
    monkeypatch.setattr(aws["app"], "MAX_RECORDS_PER_DIGEST", 2)
    result = _run(aws)
    assert result["caught_up"] and result["digests_written"] >= 4  # 7 records, at most 2 per digest
    s3 = aws["s3"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=AUDIT, Prefix="digests/")["Contents"])
    bodies = [json.loads(s3.get_object(Bucket=AUDIT, Key=k)["Body"].read())["digest"] for k in keys]
    assert all(b["entry_count"] <= 4 for b in bodies), [b["entry_count"] for b in bodies]
    assert sum(b["entry_count"] for b in bodies) == 14
    report = _verify(aws)
    assert report.problems == [] and report.digests == len(keys) == result["digests_written"]
