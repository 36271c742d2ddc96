"""EventBridge for the AWS service events moto never emits (issue 21 autoindex), on the local stack.

SageMaker's "Model Building Pipeline Execution Status Change" is sent by SageMaker, not by anything moto
runs, so nothing would reach the template's ``RetrainCatchUpRule``. ``deliver`` does what EventBridge does
with such an event: every enabled rule CloudFormation created on the default bus (its pattern as the
template wrote it, intrinsics resolved by moto) is matched by moto's own EventBridge matcher, and each
matching rule's targets that are the stack's functions are invoked through the stack's Lambda routing,
with the target's constant ``Input`` when it has one, else the event. So which function runs, and with
what, is the template's decision, not this module's.

``pipeline_run_ended`` is the event SageMaker sends when a run of ``<stack>-retrain`` ends; the local
journey sends it where a run's outcome enters the stack (``kyclocal.loop.register_candidate``), and a test
sends it after writing a run's output into LearningBucket, as a pipeline would.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kyclocal.loop import RemoteStack
    from kyclocal.stack import LocalStack

LOG = logging.getLogger(__name__)
PIPELINE_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"


@dataclass(frozen=True)
class Delivery:
    """One target's invocation: which rule, which function, what it answered."""

    rule: str
    function: str
    payload: bytes
    errored: bool

    def answer(self) -> Any:
        return json.loads(self.payload) if self.payload else None


def deliver(stack: LocalStack | RemoteStack, event: dict[str, Any]) -> list[Delivery]:
    """Hand ``event`` to every target of every matching rule of the stack, in rule-name order."""
    from moto.events.models import EventPattern

    from kyclocal.loop import _invoke

    events = stack.client("events")
    functions = {physical: logical for logical, physical in stack.physical_ids.items()}
    rules: list[dict[str, Any]] = []
    request: dict[str, Any] = {"EventBusName": "default"}
    while True:
        page = events.list_rules(**request)
        rules.extend(page.get("Rules", []))
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    out: list[Delivery] = []
    for rule in sorted(rules, key=lambda r: r["Name"]):
        if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
            continue
        if not EventPattern.load(rule["EventPattern"]).matches_event(event):
            continue
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName="default")["Targets"]
        for target in targets:
            name = target["Arn"].split(":function:", 1)[-1] if ":function:" in target["Arn"] else None
            function = functions.get(name or "")
            if function is None:
                continue  # a queue, a bus, a log group: moto's own put_events covers those
            body = target["Input"] if "Input" in target else json.dumps(event)
            payload, errored = _invoke(stack, function, body)
            if errored:  # EventBridge would retry, then dead-letter (the rule's DLQ alarm pages)
                LOG.error("rule %s: %s failed: %s", rule["Name"], function, payload[:300])
            out.append(Delivery(rule["Name"], function, payload, errored))
    return out


def pipeline_run_ended(
    stack: LocalStack | RemoteStack, status: str = "Succeeded", *, execution: str | None = None
) -> list[Delivery]:
    """The event SageMaker sends when a run of this stack's retraining pipeline ends, delivered."""
    from kyclocal.stack import ACCOUNT, STACK_NAME

    region = stack.region
    pipeline = f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/{STACK_NAME}-retrain"
    execution_arn = f"{pipeline}/execution/{execution or uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": PIPELINE_STATUS_CHANGE,
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": now,
        "region": region,
        "resources": [pipeline, execution_arn],
        "detail": {
            "pipelineArn": pipeline,
            "pipelineExecutionArn": execution_arn,
            "pipelineExecutionDisplayName": execution_arn.rsplit("/", 1)[-1],
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
            "executionStartTime": now,
            "executionEndTime": now,
        },
    }
    return deliver(stack, event)
