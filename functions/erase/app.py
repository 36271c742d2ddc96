"""EraseSubmissionFunction: GDPR Art. 17 erasure of one submission, or of every one of a client.

Input ``{"submission_id": ...}`` or ``{"client_reference": ...}``, optionally ``force``,
``reason`` and ``request_reference`` (the DSR ticket). Deletes every version of the video and of
the derived frames, scores and contact sheet, rewrites the case's review records without their
free text and deletes its API screening (issue 20), then rewrites the decision record in its
pseudonymised form (kept for AML, Art. 17(3)(b)). The order makes a retry safe: objects first
(a second sweep finds nothing), evidence next, the record last; once the record says
``erased_at`` a call changes nothing. A submission without a decision is refused: erasing
mid-screening would only produce an ERROR record that names the applicant again. By client reference,
screenings declared through the API and never uploaded are erased too (their item and the
Idempotency record holding their form: ``DECLARATION_ERASED``).
"""

from __future__ import annotations

from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore
from kyc.aws.dynamodb_erasure import DynamoDBErasureStore, DynamoDBReviewErasure
from kyc.aws.dynamodb_reuse_index import DynamoDBReuseIndex
from kyc.aws.errors import SourceMissingError
from kyc.aws.kms_mac import KmsMac
from kyc.aws.learning_eraser import LearningBucketEraser
from kyc.aws.learning_index import DynamoDBLearningIndex
from kyc.aws.s3_eraser import S3VersionEraser
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.aws.screening_registry import ScreeningRegistry
from kyc.domain.erasure import (
    ErasureOutcome,
    ErasureRequest,
    ErasureRequestError,
    PersonalDataLeftError,
    build_erasure_evidence,
    erasure_targets,
    is_erased,
    merge_deleted,
    personal_values,
    personal_values_left,
    pseudonymise_record,
    screening_id_of,
    sibling_submissions,
)
from kyc.domain.learning_erasure import learning_subject
from kyc.observability import count, log_lineage, logger, metrics, tracer
from kyc.version import code_version

RESOURCES = settings.stack_resources()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
ERASER = S3VersionEraser()
DECISIONS = DynamoDBDecisionStore(RESOURCES.decisions_table)
ERASURES = DynamoDBErasureStore(RESOURCES.decisions_table)
PSEUDONYM_MAC = KmsMac(settings.pseudonym_key_id())
REUSE_INDEX = DynamoDBReuseIndex(settings.reuse_table()) if settings.reuse_table() else None
# the API's tables (EnableScreeningApi); empty names when the API is off: nothing there to erase
REVIEW_RECORDS = DynamoDBReviewErasure(*settings.review_tables())
# issue 20: a screening's upload, from the intake bucket's own version list (as the API finds it)
REGISTRY = ScreeningRegistry(settings.review_tables()[1], mac=PSEUDONYM_MAC)
# issue 21: what the learning loop copied (labels, dataset rows, face crops); empty name: nothing to reach
# and the index of which runs and labels files hold whom (LearningIndexTable): erasure reads only those
_LEARNING_INDEX, _LEARNING_RETENTION = settings.learning_index()
LEARNING = LearningBucketEraser(
    settings.learning_bucket(),
    RESOURCES.kms_key_id,
    index=DynamoDBLearningIndex(_LEARNING_INDEX, _LEARNING_RETENTION) if _LEARNING_INDEX else None,
)

__all__ = ["ErasureRequestError", "lambda_handler"]


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event == {"learning_index": "catch-up"}:  # issue 21: after each pipeline run (RetrainCatchUpRule)
        return {"learning_index": catch_up()}
    request = ErasureRequest.from_event(event)
    if request.submission_id:
        queue = deque([request.submission_id])
    else:
        queue = deque(ERASURES.submissions_of(str(request.client_reference)))
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    while queue:
        sid = queue.popleft()
        if sid in seen:
            continue
        seen.add(sid)
        result = erase_submission(sid, request)
        queue.extend(result.get("sibling_submissions", []))  # their video went with this key's versions
        results.append(result)
    if request.client_reference:  # then what the API declared under it and nobody uploaded (issue 20)
        for screening in REVIEW_RECORDS.screenings_of(str(request.client_reference)):
            result = erase_declaration(screening, request, seen)
            if result is not None:
                results.append(result)
    outcomes = Counter(r["outcome"] for r in results)
    return {"outcomes": dict(sorted(outcomes.items())), "submissions": results}


def catch_up() -> dict[str, Any]:
    """File what a pipeline run (or a person) wrote since the last catch-up, so the next erasure does not
    pay for it, and erase from it every subject whose erasure is on record: a run that started before an
    erasure writes their rows after its sweep (docs/erasure.md, "what a running pipeline writes")."""
    answer = LEARNING.index_new_versions()
    late = answer.get("late_erasure") or {}
    rows = sum(int(late.get(n) or 0) for n in ("rows_tombstoned", "label_rows_deleted", "crops_deleted"))
    # a pipeline run trained on rows of an erased subject: its candidate must not be approved (alarmed)
    count("LearningRowsErasedAfterRun", value=rows)
    if rows:
        logger.warning("a pipeline run wrote rows of erased subjects: erased", extra={"late_erasure": late})
    return answer


def erase_submission(sid: str, request: ErasureRequest) -> dict[str, Any]:
    logger.append_keys(correlation_id=sid, submission_id=sid)
    item = DECISIONS.get(sid)
    if item is None:
        return _outcome(sid, ErasureOutcome.PENDING, note="no decision recorded yet: retry after it")
    if is_erased(item):
        return _outcome(sid, ErasureOutcome.ALREADY_ERASED, erased_at=item["erased_at"])
    now = datetime.now(UTC)
    # fails before deleting: personal data left, or no pseudonym (KMS refused), stops the erasure here
    pseudonymise_record(item, erased_at=now, reason=request.reason, evidence={}, mac=PSEUDONYM_MAC)
    source = item.get("source") or {}
    bucket, key = source.get("bucket"), source.get("key")
    siblings: list[str] = []
    if bucket and key:
        siblings = sibling_submissions(
            bucket, key, ERASER.version_ids(bucket, key), exclude=sid, mac=PSEUDONYM_MAC
        )
        pending = [s for s in siblings if DECISIONS.get(s) is None]
        if pending and not request.force:
            return _outcome(
                sid,
                ErasureOutcome.REFUSED,
                note=f"{len(pending)} other version(s) of this upload have no decision yet; retry or force",
            )
    targets = erasure_targets(sid, item.get("execution_arn"))
    sweeps = [ERASER.erase_key(bucket, key)] if bucket and key else []
    sweeps += [ERASER.erase_prefix(RESOURCES.work_bucket, p) for p in targets.work_prefixes]
    sweeps += [ERASER.erase_key(RESOURCES.review_bucket, k) for k in targets.review_keys]
    # the clip's hashes in the reuse index: after erasure, a copy of it no longer matches this one
    reuse_entries = REUSE_INDEX.erase(sid) if REUSE_INDEX is not None else 0
    # the review API's records of the case: verdict text goes, the screening (raw key, reference) goes
    reviews = REVIEW_RECORDS.erase_case(sid, erased_at=now)
    screening_deleted, _idempotency = REVIEW_RECORDS.delete_screening(screening_id_of(key), key=key)
    # issue 21: the learning loop's copies (docs/compliance.md): crops and label rows go, dataset rows
    # become tombstones that keep the labelled-set hash verifiable
    subject = learning_subject(item, whole_person=bool(request.client_reference), mac=PSEUDONYM_MAC)
    learning = LEARNING.erase(subject, erased_at=now.isoformat(timespec="milliseconds")).to_dict()
    evidence = build_erasure_evidence(
        item=item,
        erased_at=now,
        reason=request.reason,
        request=request.evidence(),
        deleted=sweeps,
        intake_bucket=bucket,
        siblings=siblings,
        code_version=code_version(),
        mac=PSEUDONYM_MAC,
    )
    evidence["deleted"] = merge_deleted(_earlier_sweeps(targets.evidence_key), evidence["deleted"])
    reuse_entries += _earlier_reuse_entries(targets.evidence_key)
    evidence["reuse_index_entries_deleted"] = reuse_entries
    earlier = _earlier_evidence(targets.evidence_key)
    # every verdict and approval of the case now in its pseudonymised form (this call's and a retry's)
    evidence["review_records_pseudonymised"] = (
        reviews["review_records_pseudonymised"] + reviews["review_records_already"]
    )
    evidence["review_leases_deleted"] = reviews["review_leases_deleted"] + int(
        earlier.get("review_leases_deleted") or 0
    )
    evidence["screening_records_deleted"] = int(screening_deleted) + int(
        earlier.get("screening_records_deleted") or 0
    )
    evidence["learning_data"] = _with_earlier_learning(learning, earlier.get("learning_data") or {})
    if personal_values_left(evidence, personal_values(item)):
        raise PersonalDataLeftError("erasure evidence would hold personal data")
    evidence_sha256 = STORE.put_json(RESOURCES.audit_bucket, targets.evidence_key, evidence)
    record = pseudonymise_record(
        item,
        erased_at=now,
        reason=request.reason,
        evidence={"key": targets.evidence_key, "sha256": evidence_sha256},
        mac=PSEUDONYM_MAC,
    )
    if not ERASURES.replace_once(record):
        return _outcome(sid, ErasureOutcome.ALREADY_ERASED, note="erased concurrently")
    deleted_total = sum(s["total"] for s in evidence["deleted"])
    log_lineage(
        "erase",
        sid,
        inputs={"decision": item.get("decision"), "source_sha256": source.get("sha256")},
        outputs={
            "erasure_key": targets.evidence_key,
            "erasure_sha256": evidence_sha256,
            "versions_deleted": deleted_total,
            "sibling_submissions": siblings,
            "reuse_index_entries_deleted": reuse_entries,
            "review_records_pseudonymised": evidence["review_records_pseudonymised"],
            "screening_records_deleted": evidence["screening_records_deleted"],
            "learning_data": evidence["learning_data"],
        },
        erasure_reason=request.reason,
        request=request.evidence(),
        execution_arn=item.get("execution_arn"),
    )
    count("Erasures", outcome=ErasureOutcome.ERASED)
    return _outcome(
        sid,
        ErasureOutcome.ERASED,
        versions_deleted=deleted_total,
        evidence_key=targets.evidence_key,
        evidence_sha256=evidence_sha256,
        sibling_submissions=siblings,
        reuse_index_entries_deleted=reuse_entries,
        review_records_pseudonymised=evidence["review_records_pseudonymised"],
        screening_records_deleted=evidence["screening_records_deleted"],
        learning_data=evidence["learning_data"],
    )


def erase_declaration(
    screening: dict[str, Any], request: ErasureRequest, seen: set[str]
) -> dict[str, Any] | None:
    """An API screening of the client: through its upload when there is one, else the declaration itself
    (the screening item, with the key and reference, and the Idempotency record holding its form)."""
    sid = REGISTRY.submission_of(screening)
    if sid is not None:  # uploaded: the submission's own erasure (PENDING while it is being screened)
        if sid in seen:
            return None
        seen.add(sid)
        return erase_submission(sid, request)
    screening_id = str(screening["screening_id"])
    deleted, idempotency = REVIEW_RECORDS.delete_screening(screening_id, key=screening.get("key"))
    form_expires_at = int(screening.get("form_expires_at") or 0)
    details: dict[str, Any] = {
        "screening_records_deleted": int(deleted),
        "idempotency_records_deleted": int(idempotency),
    }
    if form_expires_at > datetime.now(UTC).timestamp():  # a presigned form cannot be revoked
        details["upload_form_valid_until"] = datetime.fromtimestamp(form_expires_at, UTC).isoformat()
        details["note"] = "an upload with this form before then is screened: erase again after it"
    logger.info("declaration erased", extra={"screening_id": screening_id, **details})
    count("Erasures", outcome=ErasureOutcome.DECLARATION_ERASED)
    return {"screening_id": screening_id, "outcome": str(ErasureOutcome.DECLARATION_ERASED), **details}


def _with_earlier_learning(now: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """This sweep's learning-data counts plus those of an attempt that failed before the record."""
    out = dict(now)
    for name, value in earlier.items():
        if isinstance(value, int):
            out[name] = int(out.get(name) or 0) + value
        elif isinstance(value, list):
            out[name] = sorted(set(out.get(name) or []) | set(value))
    return out


def _earlier_evidence(evidence_key: str) -> dict[str, Any]:
    """The evidence of an attempt that failed before rewriting the record (its counts carry over)."""
    try:
        earlier = STORE.get_json(RESOURCES.audit_bucket, evidence_key)
    except SourceMissingError:
        return {}
    return earlier if isinstance(earlier, dict) else {}


def _earlier_sweeps(evidence_key: str) -> list[dict[str, Any]]:
    """The counts of an attempt that deleted objects but failed before rewriting the record."""
    try:
        return list(STORE.get_json(RESOURCES.audit_bucket, evidence_key).get("deleted") or [])
    except SourceMissingError:
        return []


def _earlier_reuse_entries(evidence_key: str) -> int:
    """Reuse index entries deleted by such an attempt (this one then finds none left)."""
    try:
        earlier = STORE.get_json(RESOURCES.audit_bucket, evidence_key)
    except SourceMissingError:
        return 0
    return int(earlier.get("reuse_index_entries_deleted") or 0)


def _outcome(sid: str, outcome: ErasureOutcome, **details: Any) -> dict[str, Any]:
    if outcome is not ErasureOutcome.ERASED:
        logger.info("erasure not applied", extra={"submission_id": sid, "outcome": str(outcome)})
        count("Erasures", outcome=outcome)
    return {"submission_id": sid, "outcome": str(outcome), **details}
