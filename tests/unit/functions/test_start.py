"""StartScreening: one execution per upload, named by its submission id; backpressure through the queue."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from tests.unit.aws.test_dynamodb_reuse_index import create_reuse_table
from tests.unit.functions.handler_loader import (
    FakeContext,
    expected_pseudonym,
    expected_submission_id,
    load_handler,
)

BUCKET = "intake"
RAW_KEY = "uploads/ACME 2026/applicant+42 100%/selfie-é.mp4"
REUSE_TABLE = "reuse-index"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        put = s3.put_object(
            Bucket=BUCKET, Key=RAW_KEY, Body=b"video bytes", Metadata={"client-reference": "ref-42"}
        )
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="screening", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_reuse_table(ddb, REUSE_TABLE)
        yield {
            "ddb": ddb,
            "s3": s3,
            "sfn": sfn,
            "arn": arn,
            "version": put["VersionId"],
            "etag": put["ETag"].strip('"'),
            "monkeypatch": monkeypatch,
        }


def _handler(aws: dict[str, Any], **env: str) -> Any:
    return load_handler(
        "start",
        {"KYC_STATE_MACHINE_ARN": aws["arn"], "KYC_SCORE_MAX_CONCURRENCY": "3"}
        | {"KYC_REUSE_TABLE": REUSE_TABLE}
        | env,
        aws["monkeypatch"],
    )


def _batch(key: str, version: str | None, *, message_id: str = "m-1", etag: str = "e") -> dict[str, Any]:
    event = {
        "version": "0",
        "id": "ev-1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-28T17:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": 11, "etag": etag, "version-id": version},
            "request-id": "r-1",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": "rh",
                "body": json.dumps(event),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:admission",
                "awsRegion": "us-east-1",
            }
        ]
    }


def _executions(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return aws["sfn"].list_executions(stateMachineArn=aws["arn"])["executions"]


def test_start_url_encoded_key_starts_one_execution_named_by_submission(aws: dict[str, Any]) -> None:
    app = _handler(aws)

    result = app.lambda_handler(_batch(quote_plus(RAW_KEY, safe="/"), aws["version"]), FakeContext())

    assert result == {"batchItemFailures": []}
    sid = expected_submission_id(BUCKET, RAW_KEY, aws["version"], aws["etag"])
    [execution] = _executions(aws)
    assert execution["name"] == sid
    started = json.loads(aws["sfn"].describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["submission"]["key"] == RAW_KEY
    assert started["submission"]["client_reference"] == "ref-42"
    assert started["config"]["score_max_concurrency"] == 3
    days_ahead = (started["config"]["error_record_expires_at"] - time.time()) / 86400
    assert 1824 < days_ahead <= 1825  # the default decision retention


def test_start_admission_log_names_the_object_by_its_keyed_pseudonym_only(
    aws: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    app = _handler(aws)

    app.lambda_handler(_batch(quote_plus(RAW_KEY, safe="/"), aws["version"]), FakeContext())

    [admission] = [r for r in caplog.records if r.getMessage() == "admission"]
    assert admission.object == expected_pseudonym(RAW_KEY)  # type: ignore[attr-defined]
    text = " ".join(str(r.__dict__) for r in caplog.records)
    for clear in (RAW_KEY, quote_plus(RAW_KEY, safe="/"), "ACME 2026", "applicant+42", "ref-42"):
        assert clear not in text


def test_start_raw_key_from_producer_is_accepted(aws: dict[str, Any]) -> None:
    app = _handler(aws)

    app.lambda_handler(_batch(RAW_KEY, aws["version"]), FakeContext())

    assert [e["name"] for e in _executions(aws)] == [
        expected_submission_id(BUCKET, RAW_KEY, aws["version"], aws["etag"])
    ]


def test_start_duplicate_event_starts_nothing_and_succeeds(aws: dict[str, Any]) -> None:
    app = _handler(aws)
    app.lambda_handler(_batch(RAW_KEY, aws["version"], message_id="m-1"), FakeContext())

    again = app.lambda_handler(_batch(RAW_KEY, aws["version"], message_id="m-2"), FakeContext())

    assert again == {"batchItemFailures": []}
    assert len(_executions(aws)) == 1


def test_start_at_admission_limit_returns_message_to_queue(aws: dict[str, Any]) -> None:
    app = _handler(aws, KYC_MAX_RUNNING_EXECUTIONS="1")
    aws["sfn"].start_execution(stateMachineArn=aws["arn"], name="already-running", input="{}")

    result = app.lambda_handler(_batch(RAW_KEY, aws["version"], message_id="m-9"), FakeContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-9"}]}
    assert [e["name"] for e in _executions(aws)] == ["already-running"]


def _admission(aws: dict[str, Any], sid: str) -> dict[str, Any] | None:
    key = {"pk": {"S": f"adm#{sid}"}, "sk": {"S": "adm"}}
    return aws["ddb"].get_item(TableName=REUSE_TABLE, Key=key).get("Item")


def test_start_deferred_upload_is_recorded_as_admitted_at_s3s_event_time(aws: dict[str, Any]) -> None:
    """Issue 24 item 5: an upload held in the queue (the gate full) already has its admission record,
    so a later copy's reuse check waits for it; the receipt time is the event's (S3's), keys only."""
    app = _handler(aws, KYC_MAX_RUNNING_EXECUTIONS="1")
    aws["sfn"].start_execution(stateMachineArn=aws["arn"], name="already-running", input="{}")

    app.lambda_handler(_batch(RAW_KEY, aws["version"], message_id="m-9"), FakeContext())

    sid = expected_submission_id(BUCKET, RAW_KEY, aws["version"], aws["etag"])
    item = _admission(aws, sid)
    assert item is not None and not any(e["name"] == sid for e in _executions(aws))
    assert set(item) == {"pk", "sk", "state", "admitted_bucket", "admitted_at", "expires_at"}
    assert item["state"]["S"] == "admitted"
    # the event's "time" (2026-11-28T17:00:00Z): the 6-hour bucket from 12:00, the instant and the id
    assert item["admitted_bucket"]["S"] == "2026-11-28T12"
    assert item["admitted_at"]["S"] == f"2026-11-28T17:00:00.000000Z#{sid}"
    assert int(item["expires_at"]["N"]) == 1795885200 + 30 * 3600  # the event time + 6 h + 1 day


def test_start_redelivered_event_does_not_reopen_a_settled_admission(aws: dict[str, Any]) -> None:
    """A duplicate S3 event after the screening settled must not leave an 'admitted' row that later
    uploads would wait for."""
    app = _handler(aws)
    app.lambda_handler(_batch(RAW_KEY, aws["version"], message_id="m-1"), FakeContext())
    sid = expected_submission_id(BUCKET, RAW_KEY, aws["version"], aws["etag"])
    assert app.ADMISSIONS.settle(sid)

    app.lambda_handler(_batch(RAW_KEY, aws["version"], message_id="m-2"), FakeContext())

    item = _admission(aws, sid)
    assert item["state"]["S"] == "settled" and "admitted_bucket" not in item


def test_start_object_deleted_before_admission_still_starts_screening(aws: dict[str, Any]) -> None:
    app = _handler(aws)
    gone = "uploads/deleted clip.mp4"

    result = app.lambda_handler(_batch(quote_plus(gone, safe="/"), "v-gone", etag="etag-gone"), FakeContext())

    assert result == {"batchItemFailures": []}
    [execution] = _executions(aws)
    assert execution["name"] == expected_submission_id(BUCKET, gone, "v-gone", "etag-gone")


def test_start_malformed_message_is_a_batch_failure_not_a_crash(aws: dict[str, Any]) -> None:
    app = _handler(aws)
    batch = _batch(RAW_KEY, aws["version"], message_id="bad")
    batch["Records"][0]["body"] = "{not json"

    result = app.lambda_handler(batch, FakeContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert _executions(aws) == []
