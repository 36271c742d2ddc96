"""WebhookFunction (issue 20, optional): POSTs `Screening Decided` / `Screening Reviewed` to the
customer's URL, signed (kyc.domain.webhook; docs/review.md, "Webhook").

Fed by WebhookQueue (a rule on the decision bus). Each message is one EventBridge event; a failed
POST is reported as a batch item failure, so only that message comes back after the visibility
timeout, and after ``WebhookMaxAttempts`` receives SQS moves it to the dead-letter queue (alarmed).
An event the webhook does not send (another detail type, no id) is logged and dropped: retrying
it could never succeed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.webhook_delivery import WebhookDeliveryError, post, signing_secret
from kyc.domain.webhook import WebhookError, check_url, sign_event
from kyc.observability import count, logger, metrics, tracer

WEBHOOK = settings.webhook_settings()
URL = check_url(WEBHOOK.url)
PROCESSOR = BatchProcessor(event_type=EventType.SQS)


def deliver(record: SQSRecord) -> None:
    try:
        event = json.loads(record.body)
        signed = sign_event(event, secret=signing_secret(WEBHOOK.secret_id), timestamp=int(time.time()))
    except (ValueError, WebhookError) as exc:
        logger.error("not a webhook event: dropped", extra={"message_id": record.message_id, "why": str(exc)})
        count("WebhookEventsDropped")
        return
    event_id = signed.headers["X-Kyc-Event-Id"]
    try:
        status = post(URL, signed.body, signed.headers, timeout_s=WEBHOOK.timeout_s)
    except WebhookDeliveryError as exc:
        attempt = int(record.attributes.approximate_receive_count or 1)
        logger.warning(
            "webhook delivery failed", extra={"event_id": event_id, "attempt": attempt, "why": str(exc)}
        )
        count("WebhookDeliveriesFailed")
        raise
    logger.info("webhook delivered", extra={"event_id": event_id, "status": status})
    count("WebhookDeliveries")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # results carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=deliver, processor=PROCESSOR, context=context)
