"""kyclocal.events: a service event reaches exactly the targets EventBridge would hand it to (issue 21
autoindex). Rules and targets are put here through moto's EventBridge API, as CloudFormation creates
them; which functions ran, and with what, is recorded by a stand-in router."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyclocal.events import PIPELINE_STATUS_CHANGE, deliver, pipeline_run_ended
from kyclocal.stack import ACCOUNT, REGION, STACK_NAME

PIPELINE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{STACK_NAME}-retrain"


class _Router:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def invoke(self, function: str, payload: str) -> tuple[bytes, bool]:
        self.calls.append((function, json.loads(payload)))
        return json.dumps({"ran": function}).encode(), function == "Broken"


class _Stack:
    region = REGION

    def __init__(self) -> None:
        self.router = _Router()
        self.physical_ids = {f: f"{STACK_NAME}-{f.lower()}" for f in ("Erase", "Other", "Broken")}

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


def _function_arn(stack: _Stack, logical: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{stack.physical_ids[logical]}"


@pytest.fixture
def stack():
    with mock_aws():
        running = _Stack()
        events = running.client("events")
        ended = {
            "source": ["aws.sagemaker"],
            "detail-type": [PIPELINE_STATUS_CHANGE],
            "detail": {
                "currentPipelineExecutionStatus": ["Succeeded", "Failed", "Stopped"],
                "pipelineArn": [{"equals-ignore-case": PIPELINE}],
            },
        }
        events.put_rule(Name="catch-up", EventPattern=json.dumps(ended), State="ENABLED")
        events.put_targets(
            Rule="catch-up",
            Targets=[
                {
                    "Id": "erase",
                    "Arn": _function_arn(running, "Erase"),
                    "Input": '{"learning_index": "catch-up"}',
                },
                {"Id": "queue", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:somewhere"},
            ],
        )
        events.put_rule(Name="whole-event", EventPattern=json.dumps(ended), State="ENABLED")
        events.put_targets(Rule="whole-event", Targets=[{"Id": "o", "Arn": _function_arn(running, "Other")}])
        events.put_rule(Name="off", EventPattern=json.dumps(ended), State="DISABLED")
        events.put_targets(Rule="off", Targets=[{"Id": "b", "Arn": _function_arn(running, "Broken")}])
        failed_only = {"source": ["aws.sagemaker"], "detail": {"currentPipelineExecutionStatus": ["Failed"]}}
        events.put_rule(Name="failed", EventPattern=json.dumps(failed_only), State="ENABLED")
        events.put_targets(Rule="failed", Targets=[{"Id": "b", "Arn": _function_arn(running, "Broken")}])
        yield running


def test_a_run_that_succeeded_reaches_each_matching_functions_target_with_its_constant_input(stack) -> None:
    deliveries = pipeline_run_ended(stack, "Succeeded", execution="x1")
    assert [(d.rule, d.function, d.errored) for d in deliveries] == [
        ("catch-up", "Erase", False),
        ("whole-event", "Other", False),
    ]
    (erase, erase_input), (other, event) = stack.router.calls
    assert (erase, other) == ("Erase", "Other")
    assert erase_input == {"learning_index": "catch-up"}  # the constant, nothing of the event
    assert event["detail"]["pipelineExecutionArn"] == f"{PIPELINE}/execution/x1"  # no Input: the event
    assert event["detail-type"] == PIPELINE_STATUS_CHANGE and event["source"] == "aws.sagemaker"
    assert deliveries[0].answer() == {"ran": "Erase"}


def test_a_failed_run_also_reaches_a_failing_target_and_says_so(stack) -> None:
    deliveries = pipeline_run_ended(stack, "Failed")
    assert [(d.rule, d.function, d.errored) for d in deliveries] == [
        ("catch-up", "Erase", False),
        ("failed", "Broken", True),
        ("whole-event", "Other", False),
    ]


def test_a_status_that_is_not_an_end_or_another_pipeline_reaches_nothing(stack) -> None:
    assert pipeline_run_ended(stack, "Executing") == []
    event = {
        "source": "aws.sagemaker",
        "detail-type": PIPELINE_STATUS_CHANGE,
        "detail": {"currentPipelineExecutionStatus": "Succeeded", "pipelineArn": PIPELINE + "-2"},
    }
    assert deliver(stack, event) == []
    assert stack.router.calls == []
