"""NotifyReview: after a REVIEW is recorded, draw the contact sheet and tell reviewers where it is.

Runs after DecideOutcome; the decision is already stored and nothing here can change it. A failure
raises (and is counted) so the state machine's Catch can log it and end the execution successfully
(docs/review.md). The SNS message carries ids, reason codes and where to look, never the upload's
object key or raw scores. Where to look is a documented choice (issue 23): with a review workbench URL
configured, a link to the authenticated workbench and no bearer link to a face; without one, a short
presigned link to the contact sheet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.errors import SourceMissingError
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.aws.sns_review_notifier import ReviewNotice, SnsReviewNotifier
from kyc.domain.lineage import lineage_key
from kyc.domain.provenance import sheet_lines
from kyc.domain.record import contact_sheet_key
from kyc.domain.reuse import sheet_lines as reuse_sheet_lines
from kyc.domain.same_person import sheet_lines as identity_sheet_lines
from kyc.media.contact_sheet import contact_frames, render_contact_sheet
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

RESOURCES = settings.stack_resources()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
NOTIFIER = SnsReviewNotifier(RESOURCES.review_topic_arn)
MAX_LINK_SECONDS = 3600  # a link in a mailbox is a bearer credential: keep its life short
LINK_SECONDS = max(60, min(MAX_LINK_SECONDS, RESOURCES.review_link_seconds))
WORKBENCH_URL = RESOURCES.review_workbench_url.rstrip("/")


@logger.inject_lambda_context(correlation_id_path="submission_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("notify")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sid = event["submission_id"]
    if event.get("decision") != "REVIEW":
        return {"submission_id": sid, "notified": False}
    try:
        result = _notify(event, sid)
    except Exception:
        count("ReviewNotifyFailures")
        logger.exception("review notification failed")
        raise
    count("ReviewNotifications")
    return result


def _notify(event: dict[str, Any], sid: str) -> dict[str, Any]:
    sheet_key = sheet_sha256 = url = expires_at = None
    if event.get("manifest_key"):
        sheet = _render(event)
        sheet_key = contact_sheet_key(sid)
        sheet_sha256 = STORE.put_bytes(RESOURCES.review_bucket, sheet_key, sheet, "image/png")
        if not WORKBENCH_URL:  # no workbench: a short presigned link is the only way to the sheet
            url = STORE.presign_get(RESOURCES.review_bucket, sheet_key, LINK_SECONDS)
            expires_at = (datetime.now(UTC) + timedelta(seconds=LINK_SECONDS)).isoformat(timespec="seconds")
    # a workbench page opens only after the reviewer signs in: the message itself unlocks no face
    review_url = f"{WORKBENCH_URL}/#/case/{sid}" if WORKBENCH_URL else None  # the workbench's case route
    # The state machine may pass the whole submission; only the client's reference is used from it.
    submission = event.get("submission") or {}
    notice = ReviewNotice(
        submission_id=sid,
        decision=event["decision"],
        reasons=[str(r) for r in event.get("reasons") or []],
        client_reference=event.get("client_reference") or submission.get("client_reference") or None,
        contact_sheet_url=url,
        link_expires_at=expires_at,
        review_url=review_url,
    )
    message_id = NOTIFIER.notify(notice)
    log_lineage(
        "notify",
        sid,
        inputs={"manifest_key": event.get("manifest_key"), "scores_key": event.get("scores_key")},
        outputs={
            "bucket": RESOURCES.review_bucket,
            "contact_sheet_key": sheet_key,
            "contact_sheet_sha256": sheet_sha256,
            "message_id": message_id,
            "link_seconds": LINK_SECONDS if url else None,
        },
    )
    return {
        "submission_id": sid,
        "notified": True,
        "contact_sheet_key": sheet_key,
        "message_id": message_id,
    }


def _render(event: dict[str, Any]) -> bytes:
    """The sheet from the stored frames and, when present, the audit copy of the per-frame scores."""
    manifest = STORE.get_json(RESOURCES.work_bucket, event["manifest_key"])
    scores = None
    if event.get("scores_key"):
        try:
            scores = STORE.get_json(RESOURCES.audit_bucket, event["scores_key"])
        except SourceMissingError:
            logger.warning("scores document missing; sheet drawn without scores")
    frames = contact_frames(manifest, scores, lambda key: STORE.get_bytes(RESOURCES.work_bucket, key))
    decision = _decision_evidence(event)
    # a change of person first: it is why the sheet was sent when it happened
    header = identity_sheet_lines(((scores or {}).get("face_evidence") or {}).get("identity"))
    header += sheet_lines(decision.get("provenance")) + reuse_sheet_lines(decision.get("reuse"))
    return render_contact_sheet(frames, header=header)


def _decision_evidence(event: dict[str, Any]) -> dict[str, Any]:
    """The decision section of its lineage.json (provenance, reuse; docs/provenance.md); empty if absent."""
    try:
        lineage = STORE.get_json(RESOURCES.audit_bucket, lineage_key(event["submission_id"]))
    except SourceMissingError:
        return {}
    return lineage.get("decision") or {}
