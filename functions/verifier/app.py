"""VerifyEvidence: on a schedule, check the evidence as an auditor would and alarm on any finding.

The same checks as ``kycscreen verify-digests`` (every digest, its signature by KMS Verify, the chain
from the pinned genesis, every version of every audit object and every decision item) and ``kycscreen
lineage`` (strict, on a fresh random sample of recent decisions, PASS first), through the same domain
code. Read-only: it lists, reads and verifies; it writes nothing but its own log and metrics. Each
finding is one ``verifier finding`` log record; ``VerifierFindings`` counts them (0 on a clean run,
VerifierFindingAlarm) and ``VerifierRuns`` counts completed runs (VerifierMissedAlarm: missing data is
breaching). docs/digests.md, docs/lineage.md, docs/runbook.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.evidence_digests import AuditVersions, DecisionItems, KmsSignatureVerifier
from kyc.aws.lineage_witnesses import ExecutionHistory, StageLogs, StoredObjects
from kyc.domain.digest import Evidence, period_time, verify_digests
from kyc.domain.lineage import EvidenceRetention, check_lineage
from kyc.domain.verifier import (
    Finding,
    digest_findings,
    lineage_findings,
    lineage_pool,
    sample_decisions,
)
from kyc.observability import count, logger, metrics, tracer

RESOURCES = settings.stack_resources()
VERIFIER = settings.verifier_settings()
ITEMS = DecisionItems(RESOURCES.decisions_table)
AUDIT = AuditVersions(RESOURCES.audit_bucket)
SIGNATURES = KmsSignatureVerifier(VERIFIER.signing_key_id)
LOGS = StageLogs(VERIFIER.stage_log_groups)
OBJECTS = StoredObjects()
EXECUTIONS = ExecutionHistory(RESOURCES.state_machine_arn)
RETENTION = EvidenceRetention(
    days=VERIFIER.retention_days,
    erasable=frozenset({VERIFIER.intake_bucket, RESOURCES.work_bucket} - {""}),
)
# Stage records are searched from this long before the window's oldest decision: an execution runs
# minutes, but a decision re-dated by its writer must not push its own records out of the search.
LOG_SEARCH_MARGIN = timedelta(days=1)
SPARE_MS = 60_000  # stop sampling when less than this is left: the run still reports and counts


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # findings name submissions
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    items = ITEMS.all()
    findings = check_digests(items, now)
    pool = lineage_pool(
        items,
        now,
        lookback=timedelta(hours=VERIFIER.lookback_hours),
        settle=timedelta(seconds=VERIFIER.settle_seconds),
    )
    sampled = sample_decisions(pool, VERIFIER.sample_size)
    checked = 0
    for submission_id in sampled:
        if context.get_remaining_time_in_millis() < SPARE_MS:  # report what was checked, never time out
            logger.warning("verifier sample cut short", extra={"checked": checked, "sampled": len(sampled)})
            break
        findings += check_one_lineage(submission_id, items, now)
        checked += 1
    for finding in findings:
        logger.error("verifier finding", extra=finding.to_dict())
    count("VerifierFindings", value=len(findings))  # 0 too: the alarm sees a value every run
    count("VerifierLineageChecks", value=checked)
    count("VerifierRuns")
    result = {
        "verified": not findings,
        "findings": len(findings),
        "digest_findings": sum(1 for f in findings if f.check == "digests"),
        "lineage_checked": checked,
        "lineage_findings": sum(1 for f in findings if f.check == "lineage"),
        "checked_at": period_time(now),
    }
    logger.info("verifier run", extra=result)
    return result


def check_digests(items: list[dict[str, Any]], now: datetime) -> list[Finding]:
    """``verify-digests``: every digest (first version, versions counted, delete markers seen),
    signatures by KMS Verify, the pinned genesis, every evidence version and every item."""
    evidence = Evidence(versions=AUDIT.list(), fetch=AUDIT.read, items=items)
    report = verify_digests(
        AUDIT.stored_digests(), SIGNATURES.verify, evidence, now=now, genesis_sha256=VERIFIER.genesis_sha256
    )
    return digest_findings(report, expected=True)


def check_one_lineage(submission_id: str, items: list[dict[str, Any]], now: datetime) -> list[Finding]:
    """``kycscreen lineage --strict`` for one decision, every witness read fresh."""
    item = next((i for i in items if i.get("submission_id") == submission_id), None)
    witness = EXECUTIONS.witness(submission_id)
    started = witness.started_at or now - timedelta(hours=VERIFIER.lookback_hours)
    since_ms = int((started - LOG_SEARCH_MARGIN).timestamp() * 1000)
    check = check_lineage(
        LOGS.records(submission_id, since_ms=since_ms),
        submission_id,
        stage_groups=VERIFIER.stage_log_groups,
        decision_item=item,
        fetch=OBJECTS.fetch,
        fetch_source=OBJECTS.fetch_version,
        audit_bucket=RESOURCES.audit_bucket,
        retention=RETENTION,
        witness=witness,
        now=now,
    )
    return lineage_findings(check)
