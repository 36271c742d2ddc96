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
from kyc.aws.evidence_digests import AuditVersions, DecisionItems, KmsDigestSigner, S3DigestStore
from kyc.domain.digest import (
    DIGEST_PREFIX,
    MAX_RECORDS_PER_DIGEST,
    DigestError,
    DigestPeriod,
    ObjectVersion,
    PreviousDigest,
    build_digest_body,
    capped_end,
    digest_document,
    digest_key,
    late_entries,
    next_period,
    period_entries,
    sha256_hex,
    signed_bytes,
    submission_of,
)
from kyc.observability import count, logger, metrics, tracer

RESOURCES = settings.stack_resources()
DIGEST = settings.digest_settings()
ITEMS = DecisionItems(RESOURCES.decisions_table)
AUDIT = AuditVersions(RESOURCES.audit_bucket)
SIGNER = KmsDigestSigner(DIGEST.signing_key_id)
STORE = S3DigestStore(RESOURCES.audit_bucket, kms_key_id=RESOURCES.kms_key_id)


MAX_DIGESTS_PER_RUN = 50  # a backlog is caught up over several runs, never in one long one
SPARE_MS = 60_000  # stop writing more digests when less than this is left of the invocation


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settle = DIGEST.settle_seconds
    if isinstance(event, dict) and event.get("settle_seconds") is not None:
        settle = max(0, int(event["settle_seconds"]))
    now = datetime.now(UTC)
    previous = STORE.latest()
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
    genesis = next((w["digest_sha256"] for w in written if w["sequence"] == 1), None)
    if genesis:  # the auditor records this value out of band (docs/digests.md: the genesis)
        logger.info("digest chain genesis", extra={"genesis_sha256": genesis})
    return written[-1] | {
        "digests_written": len(written),
        "caught_up": not capped,
        **({"genesis_sha256": genesis} if genesis else {}),
    }


def write_next_digest(
    previous: PreviousDigest | None, now: datetime, settle: float
) -> tuple[dict[str, Any], PreviousDigest, bool]:
    """Sign and store the digest after ``previous``; True when its period had to be shortened.

    Everything listed is read here: the items by a Scan, the audit objects' versions by
    ListObjectVersions and each version's bytes by GetObject (hashed as read). Delete markers are
    counted and logged (verifiers report them); they never shorten what is listed.
    """
    prior = previous.body() if previous is not None else None
    planned = next_period(prior, now, settle)
    reread_from = prior["period"]["start"] if prior is not None else planned.start
    items = ITEMS.since(reread_from)
    versions = AUDIT.list()
    markers = [v for v in [*versions, *AUDIT.list(DIGEST_PREFIX)] if v.delete_marker]
    if markers:
        count("AuditDeleteMarkers", value=len(markers))
        logger.warning("delete markers in the audit bucket", extra={"keys": sorted({m.key for m in markers})})
    times = [str(i.get("decided_at")) for i in items if isinstance(i.get("decided_at"), str)]
    times += [v.at for v in versions if not v.delete_marker]
    end = capped_end(planned, times, [], MAX_RECORDS_PER_DIGEST)
    period = DigestPeriod(start=planned.start, end=end)
    wanted = [v for v in versions if not v.delete_marker and _needed(v, period, prior)]
    read = [(v, data) for v in wanted if (data := AUDIT.read(v.key, v.version_id)) is not None]
    restated = {
        sid: ITEMS.get(sid) for sid in {submission_of(v.key) for v, _ in read if period.contains(v.at)} if sid
    }
    entries = period_entries(period, now, items, read, restated)
    if prior is not None:  # evidence of the previous period its digest did not see
        entries += late_entries(prior, now, items, read)
    body = build_digest_body(
        previous=previous,
        period=period,
        entries=entries,
        audit_bucket=RESOURCES.audit_bucket,
        signing_key_id=SIGNER.key_id,
        written_at=now,
    )
    data = digest_document(body, SIGNER.sign(signed_bytes(body)))
    key = digest_key(body["sequence"], body["written_at"])
    if not STORE.put_new(key, data):
        raise DigestError(
            f"digest {key} exists already: another run wrote this sequence; the next run chains to it"
        )
    late = sum(1 for e in entries if e.late)
    flagged = sorted({e.key for e in entries if e.flag})
    count("DigestsWritten")
    count("DigestEntries", value=body["entry_count"])
    if flagged:
        count("DigestFlaggedItems", value=len(flagged))
        logger.warning("decision items dated outside any period", extra={"keys": flagged})
    result = {
        "digest_key": key,
        "digest_sha256": sha256_hex(data),
        "sequence": body["sequence"],
        "period": body["period"],
        "entries": body["entry_count"],
        "late_entries": late,
        "flagged": len(flagged),
        "delete_markers": len(markers),
    }
    logger.info("digest written", extra=result)
    return result, PreviousDigest(key=key, data=data), end != planned.end


def _needed(version: ObjectVersion, period: DigestPeriod, prior: dict[str, Any] | None) -> bool:
    if period.contains(version.at):
        return True
    if prior is None:
        return False
    before = prior["period"]
    return DigestPeriod(start=before.get("start"), end=str(before["end"])).contains(version.at)
