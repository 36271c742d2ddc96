"""The decision outbox as deployed (after the SAM transform): stream, pipe, its role, DLQ and alarm,
and no function left that could publish a decision event itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kyclocal.pipe import PipeSpec
from kyclocal.template import local_template
from tests.unit.iac.test_template import _role_policy_documents


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return local_template().body["Resources"]


def _statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement of a role (inline, or in AWS::IAM::Policy resources attached to it), both
    branches of a conditional one (``Fn::If``) included."""
    out: list[dict[str, Any]] = []
    for document in _role_policy_documents({"Resources": resources}, role):
        for st in document["Statement"]:
            branches = st["Fn::If"][1:] if "Fn::If" in st else [st]
            out += [b for b in branches if "Action" in b]
    return out


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_the_decisions_table_streams_new_images(resources: dict[str, Any]) -> None:
    spec = resources["DecisionsTable"]["Properties"]["StreamSpecification"]
    assert spec["StreamViewType"] in {"NEW_IMAGE", "NEW_AND_OLD_IMAGES"}


def test_the_pipe_carries_inserts_only_from_the_stream_to_the_decision_bus(resources: dict[str, Any]) -> None:
    (pipes,) = [lid for lid, r in resources.items() if r["Type"] == "AWS::Pipes::Pipe"]
    props = resources[pipes]["Properties"]
    assert props["Source"] == {"Fn::GetAtt": ["DecisionsTable", "StreamArn"]}
    assert props["Target"] == {"Fn::GetAtt": ["DecisionEventBus", "Arn"]}
    assert props["KmsKeyIdentifier"] == {"Fn::GetAtt": ["ScreeningKey", "Arn"]}
    (pattern,) = [json.loads(f["Pattern"]) for f in props["SourceParameters"]["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"]}
    stream = props["SourceParameters"]["DynamoDBStreamParameters"]
    assert stream["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DecisionEventsDeadLetterQueue", "Arn"]}
    assert 0 <= stream["MaximumRetryAttempts"] <= 185  # finite: a poison record must reach the DLQ
    bus = props["TargetParameters"]["EventBridgeEventBusParameters"]
    assert (bus["Source"], bus["DetailType"]) == ("kyc.screening", "Screening Decision")


def test_the_local_stack_reads_the_same_pipe(resources: dict[str, Any]) -> None:
    spec = PipeSpec.from_template({"Resources": resources})
    assert (spec.source_table, spec.target_bus, spec.enrichment) == (
        "DecisionsTable",
        "DecisionEventBus",
        "RenderDecisionEventFunction",
    )
    insert = {"eventName": "INSERT", "dynamodb": {"NewImage": {}}}
    assert spec.passes(insert)
    assert not spec.passes(insert | {"eventName": "MODIFY"}) and not spec.passes(
        insert | {"eventName": "REMOVE"}
    )


def test_the_pipe_role_is_least_privilege(resources: dict[str, Any]) -> None:
    role = resources["DecisionEventsPipeRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pipes.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted = {
        (action, json.dumps(st["Resource"], sort_keys=True))
        for st in _statements(resources, "DecisionEventsPipeRole")
        for action in _actions(st)
    }
    assert all(st["Effect"] == "Allow" for st in _statements(resources, "DecisionEventsPipeRole"))

    def on(logical_id: str, attribute: str) -> str:
        return json.dumps({"Fn::GetAtt": [logical_id, attribute]}, sort_keys=True)

    assert granted == {
        ("dynamodb:DescribeStream", on("DecisionsTable", "StreamArn")),
        ("dynamodb:GetRecords", on("DecisionsTable", "StreamArn")),
        ("dynamodb:GetShardIterator", on("DecisionsTable", "StreamArn")),
        ("dynamodb:ListStreams", on("DecisionsTable", "StreamArn")),
        ("lambda:InvokeFunction", on("RenderDecisionEventFunction", "Arn")),
        ("events:PutEvents", on("DecisionEventBus", "Arn")),
        ("sqs:SendMessage", on("DecisionEventsDeadLetterQueue", "Arn")),
        ("kms:Decrypt", on("ScreeningKey", "Arn")),
        ("kms:GenerateDataKey", on("ScreeningKey", "Arn")),
    }


def test_no_function_can_publish_a_decision_event(resources: dict[str, Any]) -> None:
    """The pipe is the only publisher: a function that could put events could send a second one."""
    roles = {
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function" and isinstance(r["Properties"].get("Role"), dict)
    }
    assert len(roles) >= 9
    for role in roles:
        for st in _statements(resources, role):
            if _only_reviewed_events(st):
                continue  # issue 20: the API publishes Screening Reviewed, IAM lets it publish nothing else
            assert not any(a.startswith("events:") or a == "*" for a in _actions(st)), (role, st)


def _only_reviewed_events(statement: dict[str, Any]) -> bool:
    """PutEvents held to detail-type ``Screening Reviewed`` and source ``kyc.screening`` by IAM conditions."""
    equals = (statement.get("Condition") or {}).get("StringEquals") or {}
    return (
        _actions(statement) == {"events:PutEvents"}
        and equals.get("events:detail-type") == "Screening Reviewed"
        and equals.get("events:source") == "kyc.screening"
    )


def test_the_api_role_may_publish_only_screening_reviewed(resources: dict[str, Any]) -> None:
    statements = [
        st for st in _statements(resources, "ScreeningApiFunctionRole") if "events:PutEvents" in _actions(st)
    ]
    assert len(statements) == 1 and _only_reviewed_events(statements[0])


def test_the_pipes_dead_letters_are_encrypted_kept_and_alarmed(resources: dict[str, Any]) -> None:
    dlq = resources["DecisionEventsDeadLetterQueue"]["Properties"]
    assert dlq["KmsMasterKeyId"] == {"Fn::GetAtt": ["ScreeningKey", "Arn"]}
    assert dlq["MessageRetentionPeriod"] == 1209600  # 14 days, the SQS maximum
    alarm = resources["DecisionEventsDeadLetterQueueDepthAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DecisionEventsDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
