"""ReconcileExecution: an execution that failed, timed out or was aborted outside the workflow's own
error handling still ends in exactly one recorded decision (ERROR); its downstream event comes from
the table's stream (DecisionEventsPipe), like every decision's. Its upload's admission record is
settled (issue 24 item 5), so no later reuse check waits for a screening that will never index."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.dynamodb_admissions import DynamoDBAdmissions
from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore
from kyc.aws.stepfunctions_executions import StepFunctionsExecutions
from kyc.domain.outcomes import Decision
from kyc.domain.reasons import ReasonCode
from kyc.domain.record import DecisionContext, DecisionSummary, build_decision_item
from kyc.observability import count, log_lineage, logger, metrics, time_to_decision, tracer
from kyc.version import code_version

RESOURCES = settings.stack_resources()
DECISIONS = DynamoDBDecisionStore(RESOURCES.decisions_table)
EXECUTIONS = StepFunctionsExecutions()
ADMISSIONS = DynamoDBAdmissions(settings.reuse_table()) if settings.reuse_table() else None


def _execution_input(detail: dict[str, Any]) -> dict[str, Any]:
    """The input from the event, or read back from the execution when the event left it out (Step
    Functions omits what it cannot include, ``inputDetails.included: false``)."""
    if detail.get("input"):
        return json.loads(detail["input"])
    if not detail.get("executionArn"):
        return {}
    return EXECUTIONS.input_of(detail["executionArn"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail
    submission = _execution_input(detail).get("submission")
    if not submission:
        logger.warning("execution without a submission", extra={"execution_arn": detail.get("executionArn")})
        return {"recorded": False}
    sid = submission["submission_id"]
    logger.append_keys(correlation_id=sid, submission_id=sid)
    if ADMISSIONS is not None:
        ADMISSIONS.settle(sid)  # idempotent; a record already settled or erased stays so
    existing = DECISIONS.get(sid)
    recorded = False
    if existing is None:
        summary = DecisionSummary(Decision.ERROR, (ReasonCode.EXECUTION_FAILED,))
        context_ = DecisionContext(
            submission=submission,
            execution_arn=detail.get("executionArn"),
            recorded_by="reconcile",
            code_version=code_version(),
        )
        item = build_decision_item(
            summary, context_, now=datetime.now(UTC), retention_days=RESOURCES.retention_days
        )
        recorded = DECISIONS.put_once(item)
        existing = item if recorded else DECISIONS.get(sid)
        if recorded:
            count("Decisions", decision=Decision.ERROR)
            time_to_decision(submission.get("received_at"))
            log_lineage(
                "reconcile",
                sid,
                outputs={
                    "decision": "ERROR",
                    "reasons": [str(ReasonCode.EXECUTION_FAILED)],
                    "status": detail.get("status"),
                },
                execution_arn=detail.get("executionArn"),
            )
    return {"recorded": recorded, "decision": (existing or {}).get("decision")}
