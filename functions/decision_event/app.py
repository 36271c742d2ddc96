"""RenderDecisionEvent: the enrichment step of the decision outbox pipe (DecisionEventsPipe).

EventBridge Pipes reads the decisions table's stream and hands every record here in batches; each
detail returned becomes one ``Screening Decision`` event on the decision bus. An input template
cannot do this job: it cannot turn the item's DynamoDB-typed ``reasons`` list into the plain list
of codes the event has always carried. No function publishes the event itself, so every decision
gets exactly one event, and a crash after the write cannot send a second.

Issue 23: an INSERT becomes an event only when the Step Functions execution its submission id names
exists and screened that very upload: a bare PutItem by any role (a PASS for a submission never
uploaded) is withheld, logged and counted (``UnwitnessedDecisions``, alarmed). A MODIFY or REMOVE
of a decision item is never an event: it is logged here as evidence and counted by kind
(``DecisionItemChanges``; ``kind=other``, neither erase's rewrite nor the TTL, is alarmed).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc.aws.clients import client
from kyc.aws.decision_stream import item_changes, new_decision_details
from kyc.observability import count, logger, metrics, tracer

STATE_MACHINE_ARN = os.environ.get("KYC_STATE_MACHINE_ARN", "")


def describe_execution(submission_id: str) -> dict[str, Any] | None:
    """The execution named by the submission id (never an ARN the item claims), or None (also when
    no state machine is configured: fail closed, nothing unwitnessed reaches the bus)."""
    if not STATE_MACHINE_ARN:
        return None
    sfn = client("stepfunctions")
    arn = f"{STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:{submission_id}"
    try:
        return sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        return None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
def lambda_handler(event: list[dict[str, Any]], context: LambdaContext) -> list[dict[str, Any]]:
    details, withheld = new_decision_details(event, describe_execution)
    for detail in details:
        count("DecisionEvents", decision=detail["decision"])
    for sid, reason in withheld:
        count("UnwitnessedDecisions")
        logger.warning("decision withheld: no witness", extra={"submission_id": sid, "reason": reason})
    for change in item_changes(event):
        count("DecisionItemChanges", kind=change.kind)
        log = logger.warning if change.kind == "other" else logger.info
        log("decision item changed", extra={"change": change.to_dict()})
    logger.info("decision events rendered", extra={"submission_ids": [d["submission_id"] for d in details]})
    return details
