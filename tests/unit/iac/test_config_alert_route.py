"""The template's NON_COMPLIANT route, run on moto's EventBridge (an independent implementation of event
patterns and input transformers): which AWS Config compliance changes reach the alarm topic, and as what.

moto's EventBridge cannot target SNS, so the rule's target is an SQS queue here; pattern and input
transformer are the template's, resolved for a stack named ``kyc-prod``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.iac.test_template import _props

STACK = "kyc-prod"
REGION = "eu-west-1"


NO_VALUE = {"Ref": "AWS::NoValue"}


def _resolve(value: Any, template: dict[str, Any]) -> Any:
    """Intrinsics of the pattern, for the default parameters (the upload API off)."""
    if isinstance(value, list):
        return [_resolve(v, template) for v in value if v != NO_VALUE and _resolve(v, template) != NO_VALUE]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        assert value["Fn::If"][0] == "IsUploadApiEnabled"
        return value["Fn::If"][2]
    if set(value) == {"Ref"}:  # a Config rule's Ref is its name
        return _resolve(_props(template, value["Ref"])["ConfigRuleName"], template)
    if set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{AWS::StackName\}", STACK, value["Fn::Sub"])
    return {k: _resolve(v, template) for k, v in value.items()}


def _change(rule: str, resource: str, rtype: str, compliance: str) -> dict[str, Any]:
    """A "Config Rules Compliance Change" event, shaped as AWS Config sends it to EventBridge."""
    return {
        "Source": "aws.config",
        "DetailType": "Config Rules Compliance Change",
        "Detail": json.dumps(
            {
                "resourceId": resource,
                "awsRegion": REGION,
                "awsAccountId": "123456789012",
                "configRuleName": rule,
                "recordVersion": "1.0",
                "messageType": "ComplianceChangeNotification",
                "resourceType": rtype,
                "newEvaluationResult": {
                    "complianceType": compliance,
                    "configRuleInvokedTime": "2026-11-29T12:00:00Z",
                },
                "oldEvaluationResult": {"complianceType": "COMPLIANT"},
            }
        ),
    }


@pytest.fixture
def route(template):
    rule = _props(template, "ConfigComplianceChangeRule")
    (target,) = rule["Targets"]
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="alarm-topic-stand-in")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", region_name=REGION)
        events.put_rule(
            Name="config-change", EventPattern=json.dumps(_resolve(rule["EventPattern"], template))
        )
        events.put_targets(
            Rule="config-change",
            Targets=[{"Id": "t", "Arn": arn, "InputTransformer": target["InputTransformer"]}],
        )

        def deliver(*changes: dict[str, Any]) -> list[str]:
            events.put_events(Entries=list(changes))
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            return [m["Body"] for m in got]

        yield deliver


def test_a_drifted_control_of_this_stack_reaches_the_topic_as_one_readable_line(route):
    (body,) = route(
        _change(
            f"{STACK}-s3-bucket-ssl-requests-only", "kyc-prod-intake-abc", "AWS::S3::Bucket", "NON_COMPLIANT"
        )
    )
    text = json.loads(body)
    assert (
        f"kyc-prod-intake-abc (AWS::S3::Bucket) is NON_COMPLIANT with {STACK}-s3-bucket-ssl-requests-only"
        in text
    )
    assert "docs/runbook.md" in text


def test_compliant_changes_and_other_rules_stay_quiet(route):
    assert route(_change(f"{STACK}-s3-bucket-ssl-requests-only", "b", "AWS::S3::Bucket", "COMPLIANT")) == []
    assert (
        route(_change("other-stack-s3-bucket-ssl-requests-only", "b", "AWS::S3::Bucket", "NON_COMPLIANT"))
        == []
    )


def test_the_periodic_log_group_rule_alerts_only_on_this_stacks_log_groups(route):
    rule = f"{STACK}-cloudwatch-log-group-encrypted"
    ours = _change(rule, f"/aws/lambda/{STACK}-decide-outcome", "AWS::Logs::LogGroup", "NON_COMPLIANT")
    states = _change(
        rule, f"/aws/vendedlogs/states/{STACK}-screening", "AWS::Logs::LogGroup", "NON_COMPLIANT"
    )
    theirs = _change(rule, "/aws/lambda/payroll-export", "AWS::Logs::LogGroup", "NON_COMPLIANT")
    assert len(route(ours)) == 1
    assert len(route(states)) == 1
    assert route(theirs) == []
