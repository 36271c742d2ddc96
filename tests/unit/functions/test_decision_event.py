"""The decision outbox: what the table's stream carries becomes the Screening Decision detail.

The expected details are written out by hand from the items (an independent oracle), not rebuilt
with ``decision_event_detail``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore
from tests.unit.functions.handler_loader import FakeContext, load_handler

TABLE = "decisions"


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        arn = ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "submission_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "submission_id", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]["LatestStreamArn"]
        # moto intercepts no account-based endpoint (<account>.ddb...), which botocore picks for ARNs
        streams = boto3.client(
            "dynamodbstreams", region_name="us-east-1", config=Config(account_id_endpoint_mode="disabled")
        )
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="kyc-screening",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        app = load_handler("decision_event", {"KYC_STATE_MACHINE_ARN": machine}, monkeypatch)

        def screened(sid: str, version_id: str | None = None) -> None:  # what start does for an upload
            submission = {"submission_id": sid, "bucket": "intake", "version_id": version_id}
            sfn.start_execution(
                stateMachineArn=machine, name=sid, input=json.dumps({"submission": submission})
            )

        yield {
            "screened": screened,
            "ddb": ddb,
            "store": DynamoDBDecisionStore(TABLE, ddb),
            "records": lambda: streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"],
            "app": app,
        }


def _scored_item(sid: str) -> dict[str, Any]:
    return {
        "submission_id": sid,
        "record_version": "1",
        "decision": "REVIEW",
        "reasons": ["BORDERLINE_SCORE", "LOW_FRAME_QUALITY"],
        "score": 0.55,
        "policy": {"version": "2026-01", "pass_threshold": 0.3},
        "client_reference": "ref-7",
        "decided_at": "2026-11-29T16:00:00.000+00:00",
        "source": {"bucket": "intake", "key": "uploads/ref-7/a.mp4", "sha256": "f" * 64},
    }


def test_new_decision_becomes_its_event_without_scores(table: dict[str, Any]) -> None:
    table["screened"]("s1")
    table["store"].put_once(_scored_item("s1"))

    details = table["app"].lambda_handler(table["records"](), FakeContext())

    assert details == [
        {
            "event_id": "s1",
            "submission_id": "s1",
            "client_reference": "ref-7",
            "decision": "REVIEW",
            "reasons": ["BORDERLINE_SCORE", "LOW_FRAME_QUALITY"],
            "policy_version": "2026-01",
            "decided_at": "2026-11-29T16:00:00.000+00:00",
        }
    ]


def test_state_machine_error_record_gets_its_event_too(table: dict[str, Any]) -> None:
    """RecordFailureDirect's item (written by Step Functions, with no policy and no client
    reference) is a decision like any other: it gets one event, with nulls where it has nothing."""
    table["ddb"].put_item(
        TableName=TABLE,
        Item={
            "submission_id": {"S": "s2"},
            "decision": {"S": "ERROR"},
            "reasons": {"L": [{"S": "PIPELINE_ERROR"}]},
            "execution_arn": {"S": "arn:exec"},
            "decided_at": {"S": "2026-11-29T16:01:00Z"},
            "recorded_by": {"S": "state-machine"},
            "expires_at": {"N": "1900000000"},
        },
    )

    details = table["app"].lambda_handler(table["records"](), FakeContext())

    assert details == [
        {
            "event_id": "s2",
            "submission_id": "s2",
            "client_reference": None,
            "decision": "ERROR",
            "reasons": ["PIPELINE_ERROR"],
            "policy_version": None,
            "decided_at": "2026-11-29T16:01:00Z",
        }
    ]


def test_updates_and_removals_are_not_decisions(
    caplog: pytest.LogCaptureFixture, table: dict[str, Any]
) -> None:
    """Erasure rewrites the item (MODIFY) and a delete removes it (REMOVE): neither is a new decision;
    both are recorded, and a delete by a role (not the TTL) is of kind "other" (alarmed)."""
    table["screened"]("s3")
    table["store"].put_once(_scored_item("s3"))
    table["ddb"].update_item(
        TableName=TABLE,
        Key={"submission_id": {"S": "s3"}},
        UpdateExpression="REMOVE client_reference",
    )
    table["ddb"].delete_item(TableName=TABLE, Key={"submission_id": {"S": "s3"}})
    records = table["records"]()
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]

    details = table["app"].lambda_handler(records, FakeContext())

    assert [d["submission_id"] for d in details] == ["s3"]
    changes = [r.change for r in caplog.records if r.getMessage() == "decision item changed"]
    assert [(c["event"], c["submission_id"], c["kind"]) for c in changes] == [
        ("MODIFY", "s3", "other"),  # client_reference removed, but no erased_at: not erase's rewrite
        ("REMOVE", "s3", "other"),  # a role's DeleteItem, not the TTL
    ]


def test_a_bare_put_item_never_reaches_the_bus(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture, table: dict[str, Any]
) -> None:
    """Issue 23: a PASS PutItem for a submission no execution screened (or for another object
    version than the execution screened) is withheld and counted; a screened one goes through."""
    table["screened"]("real", version_id="v1")
    table["store"].put_once(_scored_item("forged") | {"decision": "PASS"})
    table["store"].put_once(_scored_item("real") | {"source": {"bucket": "intake", "version_id": "v2"}})

    details = table["app"].lambda_handler(table["records"](), FakeContext())

    assert details == []
    withheld = [r for r in caplog.records if r.getMessage() == "decision withheld: no witness"]
    assert {(w.submission_id, w.reason) for w in withheld} == {
        ("forged", "no Step Functions execution screened this submission"),
        ("real", "the record names another object version than the execution screened"),
    }
    assert capsys.readouterr().out.count('"UnwitnessedDecisions":[1.0]') == 2


def test_erasure_rewrite_and_ttl_removal_are_recorded_not_alarmed() -> None:
    from kyc.aws.decision_stream import item_changes

    keys = {"submission_id": {"S": "s5"}}
    records = [
        {"eventName": "MODIFY", "dynamodb": {"Keys": keys, "NewImage": keys | {"erased_at": {"S": "t"}}}},
        {
            "eventName": "REMOVE",
            "dynamodb": {"Keys": keys},
            "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        },
    ]
    assert [c.kind for c in item_changes(records)] == ["erasure", "expiry"]


def test_insert_without_new_image_fails_loudly(table: dict[str, Any]) -> None:
    """A stream switched to KEYS_ONLY would otherwise send empty events: the batch fails, the pipe
    retries and dead-letters it, and the alarm says so."""
    record = {"eventName": "INSERT", "dynamodb": {"Keys": {"submission_id": {"S": "s4"}}}}

    with pytest.raises(ValueError, match="NewImage"):
        table["app"].lambda_handler([record], FakeContext())
