"""StartScreening: one execution per upload, named by its submission id; backpressure through the queue."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
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
    assert set(item) == {"pk", "sk", "state", "ordered_at", "admitted_bucket", "admitted_at", "expires_at"}
    assert item["ordered_at"]["S"] == "2026-11-28T17:00:00+00:00"  # no SentTimestamp: the receipt time
    assert item["state"]["S"] == "queued"
    # the event's "time" (2026-11-28T17:00:00Z): the 6-hour bucket from 12:00 (the queued partition),
    # the instant and the id
    assert item["admitted_bucket"]["S"] == "queued#2026-11-28T12"
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


# --- issue 24 item 5: the gate admits in receipt order, so no running check waits on a queued upload ---
EVENT_AT = "2026-11-28T17:00:00+00:00"  # _batch's event time


def _with_queue(aws: dict[str, Any], visibility: int = 600) -> tuple[Any, str, dict[str, Any]]:
    """A real queue holding the batch's message, received once (its receipt handle in the batch)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="admission", Attributes={"VisibilityTimeout": str(visibility)})[
        "QueueUrl"
    ]
    batch = _batch(RAW_KEY, aws["version"], message_id="m-q")
    sqs.send_message(QueueUrl=url, MessageBody=batch["Records"][0]["body"])
    (message,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    batch["Records"][0]["receiptHandle"] = message["ReceiptHandle"]
    batch["Records"][0]["attributes"] = message["Attributes"]
    return sqs, url, batch


def _state(aws: dict[str, Any], sid: str) -> str | None:
    item = _admission(aws, sid)
    return item["state"]["S"] if item else None


def test_start_holds_an_upload_back_briefly_while_an_earlier_one_is_still_queued(aws: dict[str, Any]) -> None:
    """A free slot, but an upload received one second earlier is still queued: this one is deferred
    (no execution), its message hidden for ORDER_DEFER_S rather than the queue's 600 s, and it stays
    queued. Once the earlier one is started, the same message is admitted."""
    sqs, url, batch = _with_queue(aws)
    app = _handler(aws, KYC_ADMISSION_QUEUE_URL=url)
    app.ORDER_DEFER_S = 1
    sent_ms = int(batch["Records"][0]["attributes"]["SentTimestamp"])  # this message's place: now
    earlier_at = datetime.fromtimestamp((sent_ms - 1000) / 1000, UTC).isoformat()
    app.ADMISSIONS.admit("earlier", earlier_at)  # sent one second before it, still queued

    result = app.lambda_handler(batch, FakeContext())

    sid = expected_submission_id(BUCKET, RAW_KEY, aws["version"], aws["etag"])
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-q"}]}
    assert _executions(aws) == [] and _state(aws, sid) == "queued"
    time.sleep(1.5)
    (again,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]  # back after 1 s
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"

    assert app.ADMISSIONS.mark_started("earlier", earlier_at)
    batch["Records"][0]["receiptHandle"] = again["ReceiptHandle"]
    assert app.lambda_handler(batch, FakeContext()) == {"batchItemFailures": []}
    assert [e["name"] for e in _executions(aws)] == [sid] and _state(aws, sid) == "started"


def test_start_an_upload_received_at_the_same_instant_with_a_smaller_id_goes_first(
    aws: dict[str, Any],
) -> None:
    app = _handler(aws)
    sid = expected_submission_id(BUCKET, RAW_KEY, aws["version"], aws["etag"])
    app.ADMISSIONS.admit("0" * 64, EVENT_AT)  # same second, smaller id: earlier in receipt order
    app.ADMISSIONS.admit("f" * 64, EVENT_AT)  # same second, larger id: later, never holds this one back
    assert sid > "0" * 64 and sid < "f" * 64

    assert app.lambda_handler(_batch(RAW_KEY, aws["version"]), FakeContext())["batchItemFailures"]
    app.ADMISSIONS.settle("0" * 64)
    assert app.lambda_handler(_batch(RAW_KEY, aws["version"]), FakeContext()) == {"batchItemFailures": []}


def test_start_an_earlier_upload_a_running_one_may_wait_for_is_admitted_over_the_limit(
    aws: dict[str, Any],
) -> None:
    """The gate is full, but an upload received after this one is already started (its record came
    first): its reuse check may be waiting for this one, so this one is owed a slot."""
    app = _handler(aws, KYC_MAX_RUNNING_EXECUTIONS="1")
    aws["sfn"].start_execution(stateMachineArn=aws["arn"], name="later", input="{}")
    app.ADMISSIONS.admit("later", "2026-11-28T17:00:03+00:00")
    assert app.ADMISSIONS.mark_started("later", "2026-11-28T17:00:03+00:00")

    result = app.lambda_handler(_batch(RAW_KEY, aws["version"]), FakeContext())

    sid = expected_submission_id(BUCKET, RAW_KEY, aws["version"], aws["etag"])
    assert result == {"batchItemFailures": []}
    assert sorted(e["name"] for e in _executions(aws)) == sorted(["later", sid])


def test_start_full_gate_still_defers_when_only_settled_or_older_uploads_are_later(
    aws: dict[str, Any],
) -> None:
    app = _handler(aws, KYC_MAX_RUNNING_EXECUTIONS="1")
    aws["sfn"].start_execution(stateMachineArn=aws["arn"], name="other", input="{}")
    app.ADMISSIONS.admit("later-settled", "2026-11-28T17:00:03+00:00")
    app.ADMISSIONS.mark_started("later-settled", "2026-11-28T17:00:03+00:00")
    app.ADMISSIONS.settle("later-settled")
    app.ADMISSIONS.admit("earlier-started", "2026-11-28T16:59:00+00:00")
    app.ADMISSIONS.mark_started("earlier-started", "2026-11-28T16:59:00+00:00")

    assert app.lambda_handler(_batch(RAW_KEY, aws["version"]), FakeContext())["batchItemFailures"]
    assert [e["name"] for e in _executions(aws)] == ["other"]


def test_start_a_queued_record_whose_message_died_blocks_later_uploads_15_minutes_at_most(
    aws: dict[str, Any],
) -> None:
    """A record left queued (its message crashed its way to the DLQ) holds later uploads back only
    within ORDER_HORIZON (15 min) of its receipt; and a reuse check never waits for it after that."""
    app = _handler(aws)
    app.ADMISSIONS.admit("dead", "2026-11-28T16:45:00+00:00")  # exactly 15 min before: still holds
    assert app.lambda_handler(_batch(RAW_KEY, aws["version"]), FakeContext())["batchItemFailures"]
    assert app.ADMISSIONS.unsettled_before("x", EVENT_AT)[0].submission_id == "dead"
    app.ADMISSIONS.delete("dead")
    app.ADMISSIONS.admit("dead", "2026-11-28T16:44:59+00:00")  # 15 min 1 s before: no longer

    assert app.lambda_handler(_batch(RAW_KEY, aws["version"]), FakeContext()) == {"batchItemFailures": []}
    assert "dead" not in {r.submission_id for r in app.ADMISSIONS.unsettled_before("x", EVENT_AT)}


def test_start_the_last_receive_is_never_deferred(aws: dict[str, Any]) -> None:
    """Deferring an upload on its last receive (AdmissionMaxReceives) would send it to the DLQ
    undecided: it is admitted over the limit instead."""
    app = _handler(aws, KYC_MAX_RUNNING_EXECUTIONS="1", KYC_ADMISSION_MAX_RECEIVES="5")
    aws["sfn"].start_execution(stateMachineArn=aws["arn"], name="other", input="{}")
    batch = _batch(RAW_KEY, aws["version"])
    batch["Records"][0]["attributes"] = {"ApproximateReceiveCount": "4"}
    assert app.lambda_handler(batch, FakeContext())["batchItemFailures"]
    batch["Records"][0]["attributes"] = {"ApproximateReceiveCount": "5"}

    assert app.lambda_handler(batch, FakeContext()) == {"batchItemFailures": []}
    assert len(_executions(aws)) == 2


def test_start_records_the_messages_sent_timestamp_as_the_uploads_place_once(aws: dict[str, Any]) -> None:
    """Issue 24 item 5, same-second copies: the place in the order is the admission message's
    SentTimestamp (ms; 1795885200250 is 17:00:00.250 on the event's day, by hand), written on the
    first receipt; a redelivery with another SentTimestamp leaves it as it was."""
    app = _handler(aws, KYC_MAX_RUNNING_EXECUTIONS="1")
    aws["sfn"].start_execution(stateMachineArn=aws["arn"], name="already-running", input="{}")
    batch = _batch(RAW_KEY, aws["version"])
    batch["Records"][0]["attributes"] = {"SentTimestamp": "1795885200250", "ApproximateReceiveCount": "1"}
    app.lambda_handler(batch, FakeContext())
    sid = expected_submission_id(BUCKET, RAW_KEY, aws["version"], aws["etag"])
    item = _admission(aws, sid)
    assert item["ordered_at"]["S"] == "2026-11-28T17:00:00.250+00:00"
    assert item["admitted_at"]["S"] == f"2026-11-28T17:00:00.250000Z#{sid}"

    batch["Records"][0]["attributes"] = {"SentTimestamp": "1795885201999", "ApproximateReceiveCount": "2"}
    app.lambda_handler(batch, FakeContext())
    assert _admission(aws, sid)["ordered_at"]["S"] == "2026-11-28T17:00:00.250+00:00"
    assert app.ADMISSIONS.ordered_at(sid) == "2026-11-28T17:00:00.250+00:00"
    # an upload sent 1 ms before, in the same second, is the earlier whatever the ids
    app.ADMISSIONS.admit("f" * 64, EVENT_AT, "2026-11-28T17:00:00.249+00:00")
    assert app.ADMISSIONS.queued_before(sid, "2026-11-28T17:00:00.250+00:00")
    assert not app.ADMISSIONS.queued_before("0" * 64, "2026-11-28T17:00:00.249+00:00")


def _alarmed_series(alarm: str) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of each MetricStat of ``alarm`` in template.yaml as written."""
    from pathlib import Path

    from cfnlint.decode import decode

    template, _ = decode(str(Path(__file__).resolve().parents[3] / "template.yaml"))
    return [
        (
            q["MetricStat"]["Metric"]["Namespace"],
            q["MetricStat"]["Metric"]["MetricName"],
            {d["Name"]: d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"]},
        )
        for q in template["Resources"][alarm]["Properties"]["Metrics"]
        if "MetricStat" in q
    ]


@pytest.mark.parametrize("why", ["owed", "last receive"])
def test_an_upload_admitted_over_the_limit_is_a_series_the_alarm_reads(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], why: str
) -> None:
    """Both over-limit rules emit AdmissionsOverLimit with exactly the namespace and dimensions one of
    AdmissionsOverLimitAlarm's series names (a dimension set that differs by one value is another
    series in CloudWatch, and the alarm would read nothing)."""
    env = {
        "KYC_MAX_RUNNING_EXECUTIONS": "1",
        "KYC_ADMISSION_MAX_RECEIVES": "5",
        "POWERTOOLS_SERVICE_NAME": "kyc-screening",  # Globals of template.yaml
        "POWERTOOLS_METRICS_NAMESPACE": "KycScreening",
    }
    app = _handler(aws, **env)
    aws["sfn"].start_execution(stateMachineArn=aws["arn"], name="other", input="{}")
    batch = _batch(RAW_KEY, aws["version"])
    if why == "owed":
        app.ADMISSIONS.admit("later", "2026-11-28T17:00:03+00:00")
        assert app.ADMISSIONS.mark_started("later", "2026-11-28T17:00:03+00:00")
    else:
        batch["Records"][0]["attributes"] = {"ApproximateReceiveCount": "5"}
    capsys.readouterr()

    assert app.lambda_handler(batch, FakeContext()) == {"batchItemFailures": []}

    emitted = []
    for line in capsys.readouterr().out.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                if metric["Name"] == "AdmissionsOverLimit":
                    dims = {d: blob[d] for group in directive["Dimensions"] for d in group}
                    emitted.append((directive["Namespace"], metric["Name"], dims))
    assert len(emitted) == 1, emitted
    assert emitted[0] in _alarmed_series("AdmissionsOverLimitAlarm")
