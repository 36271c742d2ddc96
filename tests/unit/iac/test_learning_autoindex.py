"""Issue 21 autoindex: every end of a run of this stack's retraining pipeline triggers the learning index's
catch-up in the erase function, through a rule that may invoke only that function, with retries, a
dead-letter queue under the stack key and alarms on the stack's topic.

The rule's pattern is checked by a second tool, moto's EventBridge matcher, against events shaped as
SageMaker sends them (the pipeline's ARN lowercased, as SageMaker writes ARNs), with the template's
``${...}`` resolved here for a stack name with capitals."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

RULE = "RetrainCatchUpRule"
DLQ = "RetrainCatchUpDeadLetterQueue"
ALARM_TOPIC = {"Ref": "AlarmTopic"}
STACK, REGION, ACCOUNT = "Kyc-Prod", "eu-west-1", "123456789012"


def _props(tpl: dict[str, Any], lid: str) -> dict[str, Any]:
    return tpl["Resources"][lid]["Properties"]


def _resolve(value: Any) -> Any:
    """The template's pseudo parameters and ``!Sub`` for one deployment (STACK, REGION, ACCOUNT)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        names = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        names["AWS::StackName"] = STACK
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], value["Fn::Sub"])
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def _event(status: str, pipeline: str, *, source: str = "aws.sagemaker") -> dict[str, Any]:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{pipeline}".lower()
    return {
        "version": "0",
        "id": "e1",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": source,
        "account": ACCOUNT,
        "region": REGION,
        "time": "2026-12-07T05:00:00Z",
        "resources": [arn],
        "detail": {
            "pipelineArn": arn,
            "pipelineExecutionArn": f"{arn}/execution/abc123",
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
        },
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (_event("Succeeded", f"{STACK}-retrain"), True),
        (_event("Failed", f"{STACK}-retrain"), True),  # a failed run may have written runs/ output
        (_event("Stopped", f"{STACK}-retrain"), True),
        (_event("Executing", f"{STACK}-retrain"), False),
        (_event("Stopping", f"{STACK}-retrain"), False),
        (_event("Succeeded", "other-stack-retrain"), False),
        (_event("Succeeded", f"{STACK}-retrain-2"), False),
        (_event("Succeeded", f"{STACK}-retrain", source="custom.sagemaker"), False),
    ],
)
def test_the_rule_matches_every_end_of_this_stacks_pipeline_and_nothing_else(template, event, expected):
    from moto.events.models import EventPattern

    pattern = _resolve(_props(template, RULE)["EventPattern"])
    assert EventPattern.load(json.dumps(pattern)).matches_event(event) is expected
    # the name the rule watches is the name the pipeline is created with
    pipeline = _resolve(_props(template, "RetrainPipeline")["PipelineName"])
    assert pipeline == f"{STACK}-retrain"


def test_the_rule_invokes_only_the_erase_function_with_the_constant_catch_up_and_dead_letters(template):
    rule = _props(template, RULE)
    assert "Condition" not in template["Resources"][RULE]  # watches a pipeline made outside the stack too
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["EraseSubmissionFunction", "Arn"]}
    assert json.loads(target["Input"]) == {"learning_index": "catch-up"}
    assert "InputPath" not in target and "InputTransformer" not in target  # nothing of the event passes
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [DLQ, "Arn"]}}


def test_only_this_rule_may_invoke_the_erase_function_through_eventbridge(template):
    grants = [
        (lid, r["Properties"])
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["FunctionName"] == {"Ref": "EraseSubmissionFunction"}
    ]
    assert len(grants) == 1, grants
    (_, grant) = grants[0]
    assert grant["Action"] == "lambda:InvokeFunction"
    assert grant["Principal"] == "events.amazonaws.com"
    assert grant["SourceArn"] == {"Fn::GetAtt": [RULE, "Arn"]}
    assert grant["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_the_dead_letter_queue_is_under_the_stack_key_retained_and_written_only_by_the_rule_and_function(
    template,
):
    queue = _props(template, DLQ)
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": ["ScreeningKey", "Arn"]}
    assert queue["MessageRetentionPeriod"] == 1209600  # SQS's maximum: 14 days to look at a failure
    policies = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and r["Properties"]["Queues"] == [{"Ref": DLQ}]
    ]
    (policy,) = policies
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "AllowRetrainCatchUpRuleDeadLetters",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [DLQ, "Arn"]},
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [RULE, "Arn"]}}},
        }
    ]
    # the function's own asynchronous failures land there too, through its role: SendMessage, this queue
    config = _props(template, "RetrainCatchUpInvokeConfig")
    assert config["FunctionName"] == {"Ref": "EraseSubmissionFunction"}
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [DLQ, "Arn"]}
    sends = [
        st
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        and r["Properties"]["Roles"] == [{"Ref": "EraseSubmissionFunctionRole"}]
        for st in r["Properties"]["PolicyDocument"]["Statement"]
        if "sqs:" in json.dumps(st.get("Action"))
    ]
    assert sends == [
        {
            "Sid": "RecordFailedCatchUps",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [DLQ, "Arn"]},
        }
    ]


def test_a_failed_catch_up_and_rows_erased_after_a_run_page_the_alarm_topic(template):
    depth = _props(template, "RetrainCatchUpDeadLetterQueueDepthAlarm")
    assert (depth["Namespace"], depth["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert depth["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [DLQ, "QueueName"]}}]
    late = _props(template, "LearningRowsErasedAfterRunAlarm")
    assert (late["Namespace"], late["MetricName"]) == ("KycScreening", "LearningRowsErasedAfterRun")
    for alarm in (depth, late):
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [ALARM_TOPIC] and alarm["OKActions"] == [ALARM_TOPIC]
        assert alarm["TreatMissingData"] == "notBreaching"
