"""StartScreening: admit uploads from the queue into the workflow, once each, at a pace the endpoint can take.

Each SQS message carries an S3 ``Object Created`` event from EventBridge. The execution is named by
the submission id (derived from bucket, key and version), so a duplicated event cannot start a
second screening. While too many screenings are running, messages go back to the queue.

Before the admission gate, every upload received gets its admission record in the reuse table
(kyc.aws.dynamodb_admissions; receipt time: S3's event time, which the applicant does not control):
a reuse check waits for uploads received before its own that have not settled, queued ones included
(docs/provenance.md). So that no check waits for an upload that cannot get a slot, the gate admits
in receipt order (kyc.domain.reuse.admission_verdict): an upload is held back, briefly
(``ORDER_DEFER_S``), while an earlier one is still queued; an upload a running screening may be
waiting for is admitted over the limit; and an upload on its last receive is never deferred again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.dynamodb_admissions import DynamoDBAdmissions
from kyc.aws.errors import SourceMissingError
from kyc.aws.kms_mac import KmsMac
from kyc.aws.s3_object_store import ObjectHead, S3ObjectStore
from kyc.aws.sqs_queue import SqsQueue
from kyc.aws.stepfunctions_starter import StartOutcome, StepFunctionsStarter
from kyc.domain.identity import pseudonymise_key, submission_id
from kyc.domain.reuse import AdmissionVerdict, admission_verdict, ordered_at
from kyc.observability import count, logger, metrics, stage_duration, tracer

RESOURCES = settings.stack_resources()
STORE = S3ObjectStore()
STARTER = StepFunctionsStarter(RESOURCES.state_machine_arn)
PSEUDONYM_MAC = KmsMac(settings.pseudonym_key_id())
ADMISSIONS = DynamoDBAdmissions(settings.reuse_table())
PROCESSOR = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
CLIENT_REFERENCE_METADATA = "client-reference"
QUEUE_URL, MAX_RECEIVES = settings.admission_queue()
QUEUE = SqsQueue(QUEUE_URL) if QUEUE_URL else None
# How long an upload held back for an earlier queued one stays hidden: short at first, as the earlier
# one may be admitted any moment, then longer with each receive up to the queue's visibility timeout
# (10, 20, ... 180 s), so that holding never spends AdmissionMaxReceives much faster than waiting for
# a full gate does (60 receives: about 2.6 h of holding); the last receive is never deferred.
ORDER_DEFER_S = 10
ORDER_DEFER_MAX_S = 180  # AdmissionQueue's VisibilityTimeout (tests/unit/iac asserts it)


class AdmissionDeferredError(Exception):
    """Too many screenings in flight: the message returns to the queue and is retried later."""


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("admit")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _gate
    _gate = AdmissionGate(STARTER, RESOURCES.max_running_executions)
    return process_partial_response(event=event, record_handler=_admit, processor=PROCESSOR, context=context)


class AdmissionGate:
    """Counts running screenings once per batch (one ListExecutions call), then admits up to the limit."""

    def __init__(self, starter: StepFunctionsStarter, limit: int) -> None:
        self._starter = starter
        self._limit = limit
        self._running: int | None = None

    def admit(self) -> bool:
        if self._running is None:
            self._running = self._starter.running_count(self._limit)
        if self._running >= self._limit:
            return False
        self._running += 1
        return True

    def force(self) -> None:
        """Admitted over the limit (``START_OWED``, ``START_LAST``): the slot still counts."""
        self._running = (self._running or 0) + 1

    def release(self) -> None:
        """A slot counted by ``admit`` but not used (the upload was held back for order)."""
        if self._running:
            self._running -= 1


_gate: AdmissionGate | None = None


def _admit(record: SQSRecord) -> str:
    try:
        return _admit_upload(record)
    except AdmissionDeferredError:
        raise
    except Exception:
        logger.exception("admission failed; the message returns to the queue (then to its DLQ)")
        raise


def _receives(record: SQSRecord) -> int:
    """ApproximateReceiveCount (1 when absent or unreadable: never mistaken for the last receive)."""
    try:
        return int(record.raw_event.get("attributes", {}).get("ApproximateReceiveCount") or 1)
    except (TypeError, ValueError):
        return 1


def _gate_verdict(record: SQSRecord, sid: str, received_at: str) -> tuple[AdmissionVerdict, str]:
    """Record the upload (queued, with its place in the order: the message's SentTimestamp), then ask
    the gate in that order (kyc.domain.reuse). Returns the verdict and the upload's ``ordered_at``,
    as its first receipt recorded it (a redelivery never moves it)."""
    order = ordered_at(received_at, record.raw_event.get("attributes", {}).get("SentTimestamp"))
    if ADMISSIONS.admit(sid, received_at, order):  # before the gate: a deferred upload is waited for too
        count("AdmissionsRecorded")
        state: str | None = None
    else:
        state, recorded = ADMISSIONS.record(sid)
        order = recorded or received_at  # a record from before ordered_at: its receipt time
    verdict = admission_verdict(
        state=state,
        last_receive=_receives(record) >= MAX_RECEIVES,
        owed=lambda: ADMISSIONS.started_after(sid, order),
        slot_free=lambda: _gate is None or _gate.admit(),
        earlier_queued=lambda: ADMISSIONS.queued_before(sid, order),
    )
    return verdict, order


def _admit_upload(record: SQSRecord) -> str:
    s3_event = S3EventNotificationEventBridgeModel.model_validate_json(record.body)
    detail = s3_event.detail
    bucket = detail.bucket.name
    key, head = _resolve_key(bucket, detail.object.key, detail.object.version_id)
    if head is None:  # gone before admission: screen anyway, so the upload still gets its (ERROR) decision
        head = ObjectHead(
            size=int(detail.object.size or 0),
            etag=detail.object.etag or None,
            version_id=detail.object.version_id,
            metadata={},
        )
    sid = submission_id(bucket, key, head.version_id, head.etag, mac=PSEUDONYM_MAC)  # keyed: issue 23
    logger.append_keys(submission_id=sid, correlation_id=sid)
    received_at = (s3_event.time or datetime.now(UTC)).isoformat()
    verdict, order = _gate_verdict(record, sid, received_at)
    if verdict is AdmissionVerdict.DEFER_FULL:
        count("AdmissionsDeferred")
        raise AdmissionDeferredError("running screenings at the configured maximum")
    if verdict is AdmissionVerdict.DEFER_ORDER:
        count("AdmissionsHeldForOrder")
        if _gate is not None:
            _gate.release()  # the slot it was counted in stays free for the earlier upload
        if QUEUE is not None:
            QUEUE.hide_for(record.receipt_handle, min(ORDER_DEFER_MAX_S, ORDER_DEFER_S * _receives(record)))
        raise AdmissionDeferredError("an upload received earlier is still queued")
    over = verdict in (AdmissionVerdict.START_OWED, AdmissionVerdict.START_LAST)
    if over and _gate is not None and not _gate.admit():  # a free slot, if any, is used first
        _gate.force()
        count("AdmissionsOverLimit", reason=str(verdict))
    execution_input = {
        "submission": {
            "submission_id": sid,
            "bucket": bucket,
            "key": key,
            "version_id": head.version_id,
            "etag": head.etag,
            "size": head.size,
            "client_reference": head.metadata.get(CLIENT_REFERENCE_METADATA),
            "received_at": received_at,
            "event_id": str(s3_event.id),
        },
        "config": {
            "score_max_concurrency": RESOURCES.score_max_concurrency,
            # TTL for the ERROR record the state machine writes itself when nothing else can
            "error_record_expires_at": int(
                (datetime.now(UTC) + timedelta(days=RESOURCES.retention_days)).timestamp()
            ),
        },
    }
    pseudonym = pseudonymise_key(key, PSEUDONYM_MAC)  # before starting: a KMS failure retries the message
    # started before StartExecution: an earlier upload received meanwhile sees that this one may wait
    # for it (owed). Should the start fail, the redelivery finds it started and starts it again.
    ADMISSIONS.mark_started(sid, order)
    outcome = STARTER.start(sid, execution_input)
    count("UploadsReceived" if outcome is StartOutcome.STARTED else "DuplicateEvents")
    logger.info("admission", extra={"outcome": str(outcome), "object": pseudonym})
    return str(outcome)


def _resolve_key(bucket: str, key: str, version_id: str | None) -> tuple[str, ObjectHead | None]:
    """S3 documents URL-encoded keys in events; some producers send them raw. Try the key as given,
    then its decoded form, and keep the one that names a real object (None when neither does)."""
    candidates = dict.fromkeys((key, unquote_plus(key)))
    for candidate in candidates:
        try:
            return candidate, STORE.head(bucket, candidate, version_id)
        except SourceMissingError:
            continue
    return unquote_plus(key), None
