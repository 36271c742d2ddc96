"""EraseSubmission against moto: every version and delete marker goes, the record is pseudonymised once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore
from kyc.domain.outcomes import Decision
from kyc.domain.reasons import ReasonCode
from kyc.domain.record import DecisionContext, DecisionSummary, build_decision_item
from tests.unit.functions.handler_loader import (
    FakeContext,
    create_pseudonym_key,
    expected_pseudonym,
    expected_submission_id,
    load_handler,
)

INTAKE, WORK, AUDIT, REVIEW, TABLE = "intake", "work", "audit", "review", "decisions"
RAW_KEY = "uploads/ACME-42/Jane Doe/selfie é+1.mp4"
REFERENCE = "ACME-42"


def _versions(s3: Any, bucket: str, prefix: str) -> list[str]:
    page = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [v["Key"] for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]


def _decision(sid: str, version_id: str) -> dict[str, Any]:
    summary = DecisionSummary(
        Decision.REJECT, (ReasonCode.HIGH_FAKE_SCORE,), score=0.9, policy={"version": "p-1"}
    )
    context = DecisionContext(
        submission={
            "submission_id": sid,
            "bucket": INTAKE,
            "key": RAW_KEY,
            "version_id": version_id,
            "client_reference": REFERENCE,
        },
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:sm:{sid}",
        recorded_by="decide",
        validation={"sha256": "c" * 64, "size": 11, "media": {"codec": "h264"}},
    )
    return build_decision_item(summary, context, now=datetime.now(UTC), retention_days=1825)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (INTAKE, WORK, AUDIT, REVIEW):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        v1 = s3.put_object(Bucket=INTAKE, Key=RAW_KEY, Body=b"first video")["VersionId"]
        s3.delete_object(Bucket=INTAKE, Key=RAW_KEY)  # a delete marker between the two uploads
        v2 = s3.put_object(Bucket=INTAKE, Key=RAW_KEY, Body=b"second video")["VersionId"]
        s3.put_object(Bucket=INTAKE, Key=RAW_KEY + ".other", Body=b"not this one")
        pseudonym_key = create_pseudonym_key()
        sid1 = expected_submission_id(INTAKE, RAW_KEY, v1, key_arn=pseudonym_key)
        sid2 = expected_submission_id(INTAKE, RAW_KEY, v2, key_arn=pseudonym_key)
        for sid in (sid1, sid2):
            for key in (
                f"frames/{sid}/000.jpg",
                f"frames/{sid}/manifest.json",
                f"scores/{sid}/batch-000.json",
            ):
                s3.put_object(Bucket=WORK, Key=key, Body=b"x")
                s3.put_object(Bucket=WORK, Key=key, Body=b"y")  # two versions each
            s3.put_object(Bucket=REVIEW, Key=f"reviews/{sid}/contact-sheet.png", Body=b"z")
            for name in ("scores.json", "lineage.json"):
                s3.put_object(Bucket=AUDIT, Key=f"decisions/{sid}/{name}", Body=b"z")
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": "S"}
                for n in ("submission_id", "client_reference", "decided_at")
            ],
            KeySchema=[{"AttributeName": "submission_id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "ClientReferenceIndex",
                    "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [
                        {"AttributeName": "client_reference", "KeyType": "HASH"},
                        {"AttributeName": "decided_at", "KeyType": "RANGE"},
                    ],
                }
            ],
        )
        store = DynamoDBDecisionStore(TABLE, ddb)
        store.put_once(_decision(sid1, v1))
        env = {
            "KYC_WORK_BUCKET": WORK,
            "KYC_AUDIT_BUCKET": AUDIT,
            "KYC_REVIEW_BUCKET": REVIEW,
            "KYC_DECISIONS_TABLE": TABLE,
            "KYC_PSEUDONYM_KEY_ARN": pseudonym_key,
        }
        app = load_handler("erase", env, monkeypatch)
        yield {
            "s3": s3,
            "ddb": ddb,
            "store": store,
            "app": app,
            "sids": (sid1, sid2),
            "versions": (v1, v2),
            "env": env,
            "monkeypatch": monkeypatch,
        }


def _erase(aws: dict[str, Any], **event: Any) -> dict[str, Any]:
    return aws["app"].lambda_handler(event, FakeContext())


def test_erase_sibling_version_without_decision_refused_nothing_deleted(aws: dict[str, Any]) -> None:
    sid1, _ = aws["sids"]
    result = _erase(aws, submission_id=sid1)
    assert result["outcomes"] == {"REFUSED": 1}
    assert len(_versions(aws["s3"], INTAKE, RAW_KEY)) == 4  # v1, marker, v2, and the .other object
    assert "erased_at" not in aws["store"].get(sid1)


def test_erase_without_a_usable_pseudonym_key_deletes_nothing(aws: dict[str, Any]) -> None:
    """No keyed pseudonym (KMS refuses: an encryption key where the HMAC key belongs), no erasure: it
    fails before any delete, so a retry with the right key finds everything still in place."""
    sid1, sid2 = aws["sids"]
    aws["store"].put_once(_decision(sid2, aws["versions"][1]))
    wrong = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    app = load_handler("erase", aws["env"] | {"KYC_PSEUDONYM_KEY_ARN": wrong}, aws["monkeypatch"])
    with pytest.raises(Exception, match="InvalidKeyUsage"):
        app.lambda_handler({"submission_id": sid1}, FakeContext())
    assert len(_versions(aws["s3"], INTAKE, RAW_KEY)) == 4
    assert len(_versions(aws["s3"], WORK, f"frames/{sid1}/")) == 4
    assert "erased_at" not in aws["store"].get(sid1)


def test_erase_by_reference_all_versions_markers_and_frames_deleted(aws: dict[str, Any]) -> None:
    sid1, sid2 = aws["sids"]
    aws["store"].put_once(_decision(sid2, aws["versions"][1]))
    result = _erase(aws, client_reference=REFERENCE, request_reference="DSR-7")
    assert result["outcomes"] == {"ERASED": 2}
    s3 = aws["s3"]
    assert _versions(s3, INTAKE, RAW_KEY) == [RAW_KEY + ".other"]  # only the unrelated key is left
    for sid in (sid1, sid2):
        assert _versions(s3, WORK, f"frames/{sid}/") == [] and _versions(s3, WORK, f"scores/{sid}/") == []
        assert _versions(s3, REVIEW, f"reviews/{sid}/") == []
        assert sorted(_versions(s3, AUDIT, f"decisions/{sid}/")) == [
            f"decisions/{sid}/erasure.json",
            f"decisions/{sid}/lineage.json",
            f"decisions/{sid}/scores.json",
        ]
        record = aws["store"].get(sid)
        text = json.dumps(record)
        assert RAW_KEY not in text and REFERENCE not in text
        assert record["decision"] == "REJECT" and record["reasons"] == ["HIGH_FAKE_SCORE"]
        assert record["source"]["sha256"] == "c" * 64
        assert record["source"]["key"] == expected_pseudonym(RAW_KEY)
        assert record["client_reference_pseudonym"] == expected_pseudonym(REFERENCE)
    docs = [
        json.loads(s3.get_object(Bucket=AUDIT, Key=f"decisions/{sid}/erasure.json")["Body"].read())
        for sid in (sid1, sid2)
    ]
    intake = [o for doc in docs for d in doc["deleted"] if d["bucket"] == INTAKE for o in d["objects"]]
    assert intake == [{"key": expected_pseudonym(RAW_KEY), "versions": 2, "delete_markers": 1}]
    evidence = docs[0]
    assert evidence["request"] == {"by": "client_reference", "request_reference": "DSR-7", "force": False}
    assert RAW_KEY not in json.dumps(evidence) and REFERENCE not in json.dumps(evidence)
    index = aws["ddb"].query(
        TableName=TABLE,
        IndexName="ClientReferenceIndex",
        KeyConditionExpression="client_reference = :r",
        ExpressionAttributeValues={":r": {"S": REFERENCE}},
    )
    assert index["Items"] == []


def test_erase_second_call_already_erased_nothing_changed(aws: dict[str, Any]) -> None:
    sid1, _ = aws["sids"]
    assert _erase(aws, submission_id=sid1, force=True)["submissions"][0]["outcome"] == "ERASED"
    before = aws["store"].get(sid1)
    evidence = aws["s3"].list_object_versions(Bucket=AUDIT, Prefix=f"decisions/{sid1}/erasure.json")
    result = _erase(aws, submission_id=sid1)
    assert result["submissions"][0]["outcome"] == "ALREADY_ERASED"
    assert aws["store"].get(sid1) == before
    again = aws["s3"].list_object_versions(Bucket=AUDIT, Prefix=f"decisions/{sid1}/erasure.json")
    assert len(again["Versions"]) == len(evidence["Versions"]) == 1


def test_erase_forced_sibling_without_decision_reported_pending(aws: dict[str, Any]) -> None:
    sid1, sid2 = aws["sids"]
    result = _erase(aws, submission_id=sid1, force=True)
    assert result["outcomes"] == {"ERASED": 1, "PENDING": 1}
    assert [r["submission_id"] for r in result["submissions"]] == [sid1, sid2]
    assert _versions(aws["s3"], INTAKE, RAW_KEY) == [RAW_KEY + ".other"]


def test_erase_unknown_submission_pending(aws: dict[str, Any]) -> None:
    assert _erase(aws, submission_id="f" * 64)["outcomes"] == {"PENDING": 1}


@pytest.mark.parametrize("event", [{}, {"submission_id": "a", "client_reference": "b"}, {"submission_id": 3}])
def test_erase_malformed_request_raises(aws: dict[str, Any], event: dict[str, Any]) -> None:
    with pytest.raises(aws["app"].ErasureRequestError):
        aws["app"].lambda_handler(event, FakeContext())
