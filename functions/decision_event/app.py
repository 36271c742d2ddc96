"""RenderDecisionEvent: the enrichment step of the decision outbox pipe (DecisionEventsPipe).

EventBridge Pipes reads the decisions table's stream, keeps INSERTs (new decisions) and hands them
here in batches; each detail returned becomes one ``Screening Decision`` event on the decision bus.
An input template cannot do this job: it cannot turn the item's DynamoDB-typed ``reasons`` list
into the plain list of codes the event has always carried. No function publishes the event
itself any more, so every decision, whoever wrote it (decide, reconcile, the state machine's
RecordFailureDirect), gets exactly one event, and a crash after the write cannot send a second.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc.aws.decision_stream import new_decision_details
from kyc.observability import count, logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: list[dict[str, Any]], context: LambdaContext) -> list[dict[str, Any]]:
    details = new_decision_details(event)
    for detail in details:
        count("DecisionEvents", decision=detail["decision"])
    logger.info("decision events rendered", extra={"submission_ids": [d["submission_id"] for d in details]})
    return details
