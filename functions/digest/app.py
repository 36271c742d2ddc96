"""DigestEvidence: on a schedule, sign a digest of the evidence recorded since the previous digest.

The previous digest is the cursor: the new period starts where it ended, so a failed or skipped
run loses nothing (the next one covers the gap). Records of the previous period that became visible
only after its digest was written are listed here, marked late. An on-demand run (``kycscreen
digest``) may pass ``{"settle_seconds": 0}`` to cover everything up to now. docs/digests.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.dynamodb_review_store import DynamoDBReviewStore
from kyc.aws.evidence_digests import DecisionTimeIndex, KmsDigestSigner, S3DigestStore
from kyc.domain.digest import (
    MAX_RECORDS_PER_DIGEST,
    DigestError,
    DigestPeriod,
    PreviousDigest,
    build_digest_body,
    capped_end,
    digest_document,
    digest_key,
    entries_from_decisions,
    entries_from_review_records,
    next_period,
    sha256_hex,
    signed_bytes,
)
from kyc.observability import count, logger, metrics, tracer

RESOURCES = settings.stack_resources()
DIGEST = settings.digest_settings()
INDEX = DecisionTimeIndex(RESOURCES.decisions_table)
SIGNER = KmsDigestSigner(DIGEST.signing_key_id)
STORE = S3DigestStore(RESOURCES.audit_bucket, kms_key_id=RESOURCES.kms_key_id)
# issue 20: verdicts and approvals (their write-once documents) in a section of their own
REVIEWS = DynamoDBReviewStore(DIGEST.reviews_table, retention_s=0) if DIGEST.reviews_table else None


MAX_DIGESTS_PER_RUN = 50  # a backlog is caught up over several runs, never in one long one
SPARE_MS = 60_000  # stop writing more digests when less than this is left of the invocation


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settle = DIGEST.settle_seconds
    if isinstance(event, dict) and event.get("settle_seconds") is not None:
        settle = max(0, int(event["settle_seconds"]))
    now = datetime.now(UTC)
    previous = STORE.latest(now.date())
    written: list[dict[str, Any]] = []
    while True:
        result, previous, capped = write_next_digest(previous, now, settle)
        written.append(result)
        if (
            not capped
            or len(written) >= MAX_DIGESTS_PER_RUN
            or context.get_remaining_time_in_millis() < SPARE_MS
        ):
            break
    return written[-1] | {"digests_written": len(written), "caught_up": not capped}


def write_next_digest(
    previous: PreviousDigest | None, now: datetime, settle: float
) -> tuple[dict[str, Any], PreviousDigest, bool]:
    """Sign and store the digest after ``previous``; True when its period had to be shortened."""
    prior = previous.body() if previous is not None else None
    planned = next_period(prior, now, settle)
    items, truncated = INDEX.first_decided(planned.start, planned.end, MAX_RECORDS_PER_DIGEST)
    end = capped_end(planned, [str(i["decided_at"]) for i in items], truncated, MAX_RECORDS_PER_DIGEST)
    period = DigestPeriod(start=planned.start, end=end)
    entries = entries_from_decisions(i for i in items if period.contains(str(i["decided_at"])))
    if prior is not None:  # records of the previous period its digest did not see
        before = prior["period"]
        listed = {e["key"] for e in prior.get("entries") or []}
        entries += [
            e
            for e in entries_from_decisions(INDEX.decided_in(before["start"], before["end"]), late=True)
            if e.key not in listed
        ]
    reviews = entries_from_review_records(REVIEWS.recorded_in(period.start, period.end)) if REVIEWS else []
    body = build_digest_body(
        previous=previous,
        period=period,
        entries=entries,
        audit_bucket=RESOURCES.audit_bucket,
        signing_key_id=SIGNER.key_id,
        written_at=now,
        review_entries=reviews,
    )
    data = digest_document(body, SIGNER.sign(signed_bytes(body)))
    key = digest_key(body["sequence"], body["written_at"])
    if not STORE.put_new(key, data):
        raise DigestError(
            f"digest {key} exists already: another run wrote this sequence; the next run chains to it"
        )
    late = sum(1 for e in entries if e.late)
    count("DigestsWritten")
    count("DigestEntries", value=body["entry_count"])
    result = {
        "digest_key": key,
        "digest_sha256": sha256_hex(data),
        "sequence": body["sequence"],
        "period": body["period"],
        "entries": body["entry_count"],
        "late_entries": late,
        "review_entries": len(reviews),
    }
    logger.info("digest written", extra=result)
    return result, PreviousDigest(key=key, data=data), end != planned.end
