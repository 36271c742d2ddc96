"""The digest handler against in-process moto: bytes hashed as read, the chain as a cursor, late records."""

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

from kyc.aws.evidence_digests import AuditVersions, DecisionItems
from kyc.domain.digest import Evidence, verify_digests
from kyclocal.kms import honour_digest_message_type
from tests.fixtures.decisions_table import create_decisions_table
from tests.unit.functions.handler_loader import FakeContext, load_handler

TABLE, AUDIT = "decisions", "audit"


def _record(ddb: Any, s3: Any, sid: str, decided_at: datetime, decision: str = "REVIEW") -> None:
    """A decision record as decide writes it, and the evidence documents it names."""
    artefacts = {}
    for name in ("scores", "lineage"):
        key, body = f"decisions/{sid}/{name}.json", f"{name} of {sid}".encode()
        s3.put_object(Bucket=AUDIT, Key=key, Body=body)
        artefacts[f"{name}_key"] = {"S": key}
        artefacts[f"{name}_sha256"] = {"S": hashlib.sha256(body).hexdigest()}
    ddb.put_item(
        TableName=TABLE,
        Item={
            "submission_id": {"S": sid},
            "decision": {"S": decision},
            "decided_at": {"S": decided_at.isoformat(timespec="milliseconds")},
            "artefacts": {"M": artefacts},
        },
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    honour_digest_message_type()  # KMS's MessageType=DIGEST (the signer's) in moto
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_decisions_table(ddb, TABLE)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=AUDIT)
        s3.put_bucket_versioning(Bucket=AUDIT, VersioningConfiguration={"Status": "Enabled"})
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
        yield {"ddb": ddb, "s3": s3, "app": app, "public": public}


def _run(aws: dict[str, Any], **event: Any) -> dict[str, Any]:
    return aws["app"].lambda_handler(event, FakeContext())


def _verify(aws: dict[str, Any]):
    audit = AuditVersions(AUDIT, aws["s3"])

    def check(message: bytes, signature: bytes) -> bool:
        try:
            aws["public"].verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    evidence = Evidence(versions=audit.list(), fetch=audit.read, items=DecisionItems(TABLE, aws["ddb"]).all())
    return verify_digests(audit.stored_digests(), check, evidence, now=datetime.now(UTC))


def test_settle_time_leaves_recent_records_for_the_next_digest(aws) -> None:
    now = datetime.now(UTC)
    _record(aws["ddb"], aws["s3"], "old", now - timedelta(hours=1))
    first = _run(aws)
    assert first["sequence"] == 1 and first["entries"] == 1  # the item; its documents were just written
    second = _run(aws, settle_seconds=0)  # on demand, up to now
    # its two documents, and the item again beside them (restated: its evidence changed in this period)
    assert second["sequence"] == 2 and second["entries"] == 3 and second["late_entries"] == 0
    assert second["period"]["start"] == first["period"]["end"]
    report = _verify(aws)
    assert report.problems == [] and report.entries == 3


def test_documents_are_hashed_from_the_bytes_read_not_from_the_record(aws) -> None:
    now = datetime.now(UTC)
    _record(aws["ddb"], aws["s3"], "r", now - timedelta(minutes=1))
    aws["ddb"].update_item(  # the record names a hash the stored bytes do not have
        TableName=TABLE,
        Key={"submission_id": {"S": "r"}},
        UpdateExpression="SET artefacts.scores_sha256 = :h",
        ExpressionAttributeValues={":h": {"S": "0" * 64}},
    )
    result = _run(aws, settle_seconds=0)
    body = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=result["digest_key"])["Body"].read())["digest"]
    listed = {e["key"]: e["sha256"] for e in body["entries"]}
    assert listed["decisions/r/scores.json"] == hashlib.sha256(b"scores of r").hexdigest()
    assert _verify(aws).problems == []


def test_record_visible_only_after_its_period_was_digested_is_listed_late(aws) -> None:
    now = datetime.now(UTC)
    first = _run(aws, settle_seconds=0)
    assert first["entries"] == 0
    # an item decided inside the first period that the table shows only now (its documents are new)
    aws["ddb"].put_item(
        TableName=TABLE,
        Item={
            "submission_id": {"S": "late"},
            "decision": {"S": "ERROR"},
            "decided_at": {"S": (now - timedelta(minutes=1)).isoformat(timespec="milliseconds")},
        },
    )
    second = _run(aws, settle_seconds=0)
    assert second["late_entries"] == 1
    listed = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=second["digest_key"])["Body"].read())
    assert [(e["key"], e.get("late")) for e in listed["digest"]["entries"]] == [("item:late", True)]
    assert _run(aws, settle_seconds=0)["late_entries"] == 0  # listed once, not again
    assert _verify(aws).problems == []


def test_a_digest_key_is_written_once(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(aws, settle_seconds=0)
    monkeypatch.setattr(aws["app"].STORE, "latest", lambda: None)  # a second writer of sequence 1
    with pytest.raises(Exception, match="exists already"):
        _run(aws, settle_seconds=0)


def test_backlog_is_split_into_digests_of_bounded_size_and_chains(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    for minute in range(7):  # seven items across outcomes, older than the settle time
        aws["ddb"].put_item(
            TableName=TABLE,
            Item={
                "submission_id": {"S": f"b{minute}"},
                "decision": {"S": ("PASS", "REVIEW", "REJECT", "SOMETHING_ELSE")[minute % 4]},
                "decided_at": {
                    "S": (now - timedelta(hours=2, minutes=-minute)).isoformat(timespec="milliseconds")
                },
            },
        )
    monkeypatch.setattr(aws["app"], "MAX_RECORDS_PER_DIGEST", 2)
    result = _run(aws)
    assert result["caught_up"] and result["digests_written"] >= 4  # 7 items, at most 2 per digest
    s3 = aws["s3"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=AUDIT, Prefix="digests/")["Contents"])
    bodies = [json.loads(s3.get_object(Bucket=AUDIT, Key=k)["Body"].read())["digest"] for k in keys]
    assert all(b["entry_count"] <= 2 for b in bodies), [b["entry_count"] for b in bodies]
    assert sum(b["entry_count"] for b in bodies) == 7
    assert (
        result.get("genesis_sha256")
        == hashlib.sha256(s3.get_object(Bucket=AUDIT, Key=keys[0])["Body"].read()).hexdigest()
    )
    report = _verify(aws)
    assert report.problems == [] and report.digests == len(keys) == result["digests_written"]
