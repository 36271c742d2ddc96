"""The digest's AWS adapters against in-process moto: item scan, version listing, KMS Sign, the store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from kyc.aws.evidence_digests import (
    AuditVersions,
    DecisionItems,
    KmsDigestSigner,
    KmsSignatureVerifier,
    S3DigestStore,
)
from kyclocal.kms import RAW_MESSAGE_LIMIT, honour_digest_message_type
from tests.fixtures.decisions_table import create_decisions_table

TABLE, BUCKET = "decisions", "audit"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    honour_digest_message_type()  # KMS's MessageType=DIGEST and its 4096-byte RAW limit, in moto
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_decisions_table(ddb, TABLE)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield {"ddb": ddb, "s3": s3, "kms": boto3.client("kms", region_name="us-east-1")}


def _put(ddb: Any, sid: str, decision: str, decided_at: str) -> None:
    ddb.put_item(
        TableName=TABLE,
        Item={"submission_id": {"S": sid}, "decision": {"S": decision}, "decided_at": {"S": decided_at}},
    )


def test_item_scan_returns_every_value_and_every_date_not_before_start(aws) -> None:
    start = "2026-11-29T10:00:00.000+00:00"
    records = {
        "before": ("PASS", "2026-11-29T09:59:59.999+00:00"),
        "at-start": ("REVIEW", start),
        "unknown-value": ("APPROVED", "2026-11-29T10:30:00.000+00:00"),  # in no per-outcome index query
        "future": ("PASS", "2099-01-01T00:00:00.000+00:00"),
    }
    for sid, (decision, at) in records.items():
        _put(aws["ddb"], sid, decision, at)
    aws["ddb"].put_item(TableName=TABLE, Item={"submission_id": {"S": "undated"}, "decision": {"S": "PASS"}})
    aws["ddb"].put_item(
        TableName=TABLE,
        Item={"submission_id": {"S": "number"}, "decision": {"S": "PASS"}, "decided_at": {"N": "1"}},
    )
    items = DecisionItems(TABLE, aws["ddb"])
    assert {i["submission_id"] for i in items.since(start)} == {
        "at-start",
        "unknown-value",
        "future",
        "undated",
        "number",
    }
    assert len(items.all()) == 6


def test_version_listing_shows_what_a_delete_marker_hides(aws) -> None:
    s3, key = aws["s3"], "decisions/x/scores.json"
    first = s3.put_object(Bucket=BUCKET, Key=key, Body=b"one")["VersionId"]
    second = s3.put_object(Bucket=BUCKET, Key=key, Body=b"two")["VersionId"]
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="decisions/")  # hidden from latest
    audit = AuditVersions(BUCKET, s3)
    listed = audit.list()
    assert sorted((v.version_id, v.delete_marker) for v in listed if not v.delete_marker) == sorted(
        [(first, False), (second, False)]
    )
    assert [v.delete_marker for v in listed].count(True) == 1
    assert audit.read(key, first) == b"one" and audit.read(key, "no-such-version") is None


def test_kms_signature_verifies_offline_with_the_public_key(aws) -> None:
    key = aws["kms"].create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    signer = KmsDigestSigner(key, aws["kms"])
    message = b'{"sequence":1}'
    signature = signer.sign(message)
    public = serialization.load_der_public_key(signer.public_key_der())
    public.verify(signature, message, ec.ECDSA(hashes.SHA256()))  # raises when it does not verify
    with pytest.raises(InvalidSignature):
        public.verify(signature, message + b" ", ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("size", [RAW_MESSAGE_LIMIT + 1, 1_000_000])
def test_a_digest_larger_than_kms_raw_limit_is_signed_and_verifies_offline_and_in_kms(aws, size) -> None:
    """Issue 23: a digest lists every version and item of an hour; past ~20 entries its body exceeds
    the 4096 bytes KMS takes as a RAW message. Signed as its SHA-256 (DIGEST), it is the same ECDSA
    signature: the offline check (cryptography over the raw bytes) and KMS Verify both accept it."""
    key = aws["kms"].create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    message = b'{"entries":[' + b"x" * size + b"]}"
    with pytest.raises(ClientError) as refused:  # what KMS does with RAW
        aws["kms"].sign(KeyId=key, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    signature = KmsDigestSigner(key, aws["kms"]).sign(message)
    public = serialization.load_der_public_key(aws["kms"].get_public_key(KeyId=key)["PublicKey"])
    public.verify(signature, message, ec.ECDSA(hashes.SHA256()))  # raises when it does not verify
    verifier = KmsSignatureVerifier(key, aws["kms"])
    assert verifier.verify(message, signature) and not verifier.verify(message + b" ", signature)


def test_store_finds_the_latest_digest_even_behind_a_delete_marker_and_writes_each_key_once(aws) -> None:
    store = S3DigestStore(BUCKET, s3_client=aws["s3"])
    assert store.latest() is None
    for key in ("digests/2026/11/20/0000000001.json", "digests/2026/11/25/0000000002.json"):
        assert store.put_new(key, key.encode())
    assert store.put_new("digests/2026/11/25/0000000002.json", b"again") is False
    latest = store.latest()
    assert latest is not None and latest.key == "digests/2026/11/25/0000000002.json"
    assert latest.data == b"digests/2026/11/25/0000000002.json"
    aws["s3"].delete_object(Bucket=BUCKET, Key=latest.key)  # hiding the head does not restart the chain
    assert store.latest().key == "digests/2026/11/25/0000000002.json"
    digests = AuditVersions(BUCKET, aws["s3"]).stored_digests()
    assert [(d.key, d.hidden) for d in digests] == [
        ("digests/2026/11/20/0000000001.json", False),
        ("digests/2026/11/25/0000000002.json", True),
    ]
