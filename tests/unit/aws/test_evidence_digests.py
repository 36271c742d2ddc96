"""The digest's AWS adapters against in-process moto: the time index, KMS Sign, the digest store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from kyc.aws.evidence_digests import DecisionTimeIndex, KmsDigestSigner, S3DigestStore
from tests.fixtures.decisions_table import create_decisions_table

TABLE, BUCKET = "decisions", "audit"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_decisions_table(ddb, TABLE)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield {"ddb": ddb, "s3": s3, "kms": boto3.client("kms", region_name="us-east-1")}


def _put(ddb: Any, sid: str, decision: str, decided_at: str) -> None:
    ddb.put_item(
        TableName=TABLE,
        Item={"submission_id": {"S": sid}, "decision": {"S": decision}, "decided_at": {"S": decided_at}},
    )


def test_time_index_splits_records_at_period_bounds_exactly_once(aws) -> None:
    bounds = [
        "2026-11-29T10:00:00.000+00:00",
        "2026-11-29T11:00:00.000+00:00",
        "2026-11-29T12:00:00.000+00:00",
    ]
    records = {
        "before": ("PASS", "2026-11-29T09:59:59.999+00:00"),
        "at-start": ("REVIEW", bounds[0]),
        "inside": ("REJECT", "2026-11-29T10:30:00.000+00:00"),
        "at-end": ("INVALID", bounds[1]),  # belongs to the second period, not both
        "step-functions-form": ("ERROR", "2026-11-29T11:59:59.999Z"),  # $$.State.EnteredTime
        "after": ("PASS", bounds[2]),
    }
    for sid, (decision, at) in records.items():
        _put(aws["ddb"], sid, decision, at)
    index = DecisionTimeIndex(TABLE, aws["ddb"])

    def sids(start: str | None, end: str) -> set[str]:
        return {i["submission_id"] for i in index.decided_in(start, end)}

    assert sids(None, bounds[0]) == {"before"}
    assert sids(bounds[0], bounds[1]) == {"at-start", "inside"}
    assert sids(bounds[1], bounds[2]) == {"at-end", "step-functions-form"}
    # consecutive periods tile: every record exactly once
    union = sids(None, bounds[0]) | sids(bounds[0], bounds[1]) | sids(bounds[1], bounds[2])
    assert union == set(records) - {"after"}


def test_kms_signature_verifies_offline_with_the_public_key(aws) -> None:
    key = aws["kms"].create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    signer = KmsDigestSigner(key, aws["kms"])
    message = b'{"sequence":1}'
    signature = signer.sign(message)
    public = serialization.load_der_public_key(signer.public_key_der())
    public.verify(signature, message, ec.ECDSA(hashes.SHA256()))  # raises when it does not verify
    with pytest.raises(InvalidSignature):
        public.verify(signature, message + b" ", ec.ECDSA(hashes.SHA256()))


def test_store_finds_the_latest_digest_across_days_and_writes_each_key_once(aws) -> None:
    store = S3DigestStore(BUCKET, s3_client=aws["s3"])
    assert store.latest(date(2026, 11, 29)) is None
    for key in ("digests/2026/11/20/0000000001.json", "digests/2026/11/25/0000000002.json"):
        assert store.put_new(key, key.encode())
    assert store.put_new("digests/2026/11/25/0000000002.json", b"again") is False
    latest = store.latest(date(2026, 11, 29))  # four empty days first
    assert latest is not None and latest.key == "digests/2026/11/25/0000000002.json"
    assert latest.data == b"digests/2026/11/25/0000000002.json"
    assert store.put_new("digests/2026/11/29/0000000003.json", b"3")
    assert store.latest(date(2026, 11, 29)).key == "digests/2026/11/29/0000000003.json"
