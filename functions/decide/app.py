"""DecideOutcome: turn the evidence into exactly one recorded decision.

Mode ``decide`` aggregates scored frames under the decision policy; mode ``error`` records an
ERROR after a failure elsewhere in the workflow. Either way the DynamoDB write is conditional:
the first terminal decision for a submission stands, and a replay returns it unchanged.
Downstream systems learn of it from the table's stream (DecisionEventsPipe), not from here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore
from kyc.aws.errors import SourceChangedError, SourceMissingError
from kyc.aws.kms_mac import KmsMac
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.aws.ssm_policy_source import PolicyOverrideProvider
from kyc.domain.binding import sampling_in_force
from kyc.domain.contract import CONTRACT_VERSION
from kyc.domain.decision import (
    EvidenceObject,
    FaceStageEvidence,
    Recorded,
    ScoredBatch,
    build_record,
    evidence_object,
    face_stage_evidence,
    frames_lineage,
    scored_summary,
    unscored_summary,
)
from kyc.domain.drift import DriftBaseline, score_band
from kyc.domain.erasure import evidence_staging_prefix
from kyc.domain.identity import pseudonymise_key
from kyc.domain.lineage import sha256_hex
from kyc.domain.policy import DecisionPolicy, PolicyError
from kyc.domain.promotion import PromotionError, pointer_drift_baseline, split_pointer
from kyc.domain.record import DecisionSummary
from kyc.domain.shadow import UNWITNESSED, live_shadow, shadow_result_key
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, time_to_decision, tracer
from kyc.version import code_version

RESOURCES = settings.stack_resources()
PROVENANCE_POLICY = settings.provenance_policy()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
DECISIONS = DynamoDBDecisionStore(RESOURCES.decisions_table)
POLICY_SOURCE = PolicyOverrideProvider() if RESOURCES.policy_parameter else None
PSEUDONYM_MAC = KmsMac(settings.pseudonym_key_id())
POLICY_CACHE_SECONDS = RESOURCES.policy_cache_seconds
FACE_STAGE = settings.face_stage()
try:
    DRIFT_FALLBACK = settings.drift_baseline_fallback()
except ValueError:  # a DriftBaseline* pair that is not a mix: no drift metrics, never a failed decision
    logger.exception("DriftBaseline* parameters are not a decision mix")
    DRIFT_FALLBACK = None


@logger.inject_lambda_context(correlation_id_path="state.submission.submission_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("decide")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = event["state"]
    submission = state["submission"]
    sid = submission["submission_id"]
    existing = DECISIONS.get(sid)
    if existing is None or _evidence_lost(existing, event):
        record = _record(event, state)
        if existing is None:
            _stage_evidence(record, event)
        else:
            record = _staged(record, existing, event)
        if existing is None and DECISIONS.put_once(record.item):
            existing = record.item
            _write_evidence(record, existing)
            log_lineage(**record.lineage_log)
            count("Decisions", decision=existing["decision"])
            time_to_decision(submission.get("received_at"))
            if existing.get("score") is not None:  # the distribution an operator watches for model drift
                count("DecisionScore", value=existing["score"], unit="None")
                count("DecisionScoreBand", band=score_band(existing["score"]))
            _emit_drift(existing["decision"], existing.get("score"))
            for reason in existing["reasons"]:
                count("DecisionReasons", reason_code=reason)
            _count_shadow(record.lineage_log.get("shadow"))
        else:
            existing = existing or DECISIONS.get(sid)
            assert existing is not None
            if _write_evidence(record, existing):  # this run won earlier and crashed before its evidence
                log_lineage(**record.lineage_log)
    assert existing is not None
    return {
        "submission_id": sid,
        "decision": existing["decision"],
        "reasons": existing["reasons"],
        "policy_version": (existing.get("policy") or {}).get("version"),
    }


def _emit_drift(decision: str, score: float | None) -> None:
    """DecisionsDriftAlarm's inputs: this decision's standardised deviations from the champion's mix
    (kyc.domain.drift), against the baseline the production pointer carries, else the template's."""
    baseline = _drift_baseline()
    outcomes, bands = baseline.deviations(decision, score) if baseline else ({}, {})
    for outcome, deviation in outcomes.items():
        count("DriftOutcomeDeviation", value=deviation, unit="None", outcome=outcome)
    for band, deviation in bands.items():
        count("DriftBandDeviation", value=deviation, unit="None", band=band)


def _drift_baseline() -> DriftBaseline | None:
    if POLICY_SOURCE is None:
        return DRIFT_FALLBACK
    try:
        fetched = POLICY_SOURCE.get(RESOURCES.policy_parameter, max_age=POLICY_CACHE_SECONDS)
        return pointer_drift_baseline(json.loads(fetched["document"]), DRIFT_FALLBACK)
    except (PromotionError, ValueError) as exc:  # the decision stands; the alarm judges the fallback
        logger.error("drift baseline unreadable in the production pointer", extra={"error": str(exc)})
        return DRIFT_FALLBACK


def _write_evidence(record: Recorded, item: dict[str, Any]) -> bool:
    """Write the objects ``item`` names by key and hash; True when any was missing and written.

    Only bytes whose hash the stored item names are written: a run that lost the conditional put
    (other content, other hashes) writes nothing, and a replay of the winner after a crash
    restores exactly the evidence its record promised.
    """
    named = _named_evidence(item)
    written = False
    for obj in record.evidence:
        if named.get(obj.key) != obj.sha256:
            continue
        if STORE.put_new(RESOURCES.audit_bucket, obj.key, obj.data, "application/json"):
            written = True
        elif sha256_hex(STORE.get_bytes(RESOURCES.audit_bucket, obj.key)) != obj.sha256:
            logger.error("audit object differs from the hash its decision names", extra={"key": obj.key})
    return written


def _staging_key(obj_key: str, event: dict[str, Any]) -> str:
    """Where this execution keeps its evidence bytes until its decision is written (work bucket,
    expires with it): one prefix per execution, so racing executions never share one."""
    return f"{evidence_staging_prefix(event.get('execution_arn'))}{obj_key}"  # erase deletes it too


def _stage_evidence(record: Recorded, event: dict[str, Any]) -> None:
    """Keep the exact bytes before the conditional put: a retry after a crash between the put and
    the audit write restores these, not a recomputation that may differ (a refreshed policy cache,
    a new code version) and so no longer match the hashes the decision names."""
    for obj in record.evidence:
        STORE.put_bytes(RESOURCES.work_bucket, _staging_key(obj.key, event), obj.data, "application/json")


def _staged(record: Recorded, item: dict[str, Any], event: dict[str, Any]) -> Recorded:
    """``record`` with each evidence object replaced by this execution's staged bytes when they are
    the ones ``item`` names; what is not staged (or expired) keeps the recomputed bytes."""
    named = _named_evidence(item)
    evidence: list[EvidenceObject] = []
    for obj in record.evidence:
        try:
            staged = evidence_object(
                obj.key, STORE.get_bytes(RESOURCES.work_bucket, _staging_key(obj.key, event))
            )
        except SourceMissingError:
            staged = obj
        evidence.append(staged if named.get(obj.key) == staged.sha256 else obj)
    return replace(record, evidence=tuple(evidence))


def _named_evidence(item: dict[str, Any]) -> dict[str, str]:
    artefacts = item.get("artefacts") or {}
    return {
        artefacts[f"{name}_key"]: artefacts.get(f"{name}_sha256")
        for name in ("scores", "lineage")
        if artefacts.get(f"{name}_key")
    }


def _evidence_lost(item: dict[str, Any], event: dict[str, Any]) -> bool:
    """This execution's own decision whose lineage.json is missing: it crashed between the put and
    the evidence. Another execution's decision is never rewritten (its inputs are not ours)."""
    key = (item.get("artefacts") or {}).get("lineage_key")
    if not key or item.get("execution_arn") != event.get("execution_arn"):
        return False
    try:
        STORE.head(RESOURCES.audit_bucket, key)
    except SourceMissingError:
        return True
    return False


def _record(event: dict[str, Any], state: dict[str, Any]) -> Recorded:
    summary, scores_doc, batch_lineage = _summarise(event.get("mode", "decide"), state)
    if scores_doc is not None:  # issue 21: what the shadowed candidate would decide; decides nothing
        shadow = _live_shadow(state, str(summary.decision))
        if shadow is not None:
            scores_doc["shadow"] = shadow
    return build_record(
        event=event,
        state=state,
        summary=summary,
        scores_doc=scores_doc,
        batch_lineage=batch_lineage,
        provenance_policy=PROVENANCE_POLICY,
        frames=_frames_lineage(state),
        pseudonymous_key=pseudonymise_key(state["submission"]["key"], PSEUDONYM_MAC),
        code_version=code_version(),
        audit_bucket=RESOURCES.audit_bucket,
        now=datetime.now(UTC),
        retention_days=RESOURCES.retention_days,
    )


def _live_shadow(state: dict[str, Any], recorded: str) -> dict[str, Any] | None:
    """The live shadow block (kyc.domain.shadow.live_shadow) from the shadow scores the score
    function wrote, also kept as ``scores/<sid>/shadow.json`` in the work bucket. Read after the
    decision is taken and never raises: whatever fails here is recorded as a FAILED block."""
    sid = state["submission"]["submission_id"]
    scoring = state.get("scoring") or []
    named = {int(b["batch_index"]): (b.get("shadow") or {}).get("result_key") for b in scoring}
    if not any(named.values()):
        return None  # no candidate was shadowed while this upload was scored
    try:
        docs = {
            i: json.loads(STORE.get_bytes(RESOURCES.work_bucket, k)) if k else None for i, k in named.items()
        }
        frames_sampled = int((state.get("extraction") or {}).get("frames_sampled") or 0)
        block = live_shadow(scoring, docs, frames_sampled=frames_sampled, recorded_decision=recorded)
        if block is not None:
            STORE.put_json(RESOURCES.work_bucket, shadow_result_key(sid), block)
        return block
    except Exception as exc:  # the shadow's evidence is best effort; the decision is not
        logger.exception("live shadow evidence failed")
        return {"status": "FAILED", "reason": f"{type(exc).__name__}: {exc}"[:300], "decision": None}


def _count_shadow(shadow: dict[str, Any] | None) -> None:
    """ShadowLiveCompared / ShadowLiveDisagreements feed ShadowLiveDisagreementAlarm (a rate with a
    volume guard). An INCOMPLETE block's failed batches were counted by score (ShadowFailures);
    a block decide could not assemble is counted here, an UNWITNESSED one as ShadowLiveUnwitnessed."""
    if not shadow:
        return
    if shadow.get("status") == "FAILED":
        count("ShadowFailures")
    if shadow.get("status") == UNWITNESSED:  # the witness did not name the pointer's bytes: no comparison
        count("ShadowLiveUnwitnessed")
        return
    if shadow.get("decision") is None:
        return
    count("ShadowLiveCompared")
    count("ShadowLiveDisagreements", value=0 if shadow.get("agrees") else 1)


def _summarise(mode: str, state: dict[str, Any]) -> tuple[DecisionSummary, dict | None, list[dict]]:
    """Which path produced the outcome: failure, refusal (kyc.domain.decision), or scored evidence
    read here from the work bucket."""
    unscored = unscored_summary(mode, state, _policy_in_force)
    if unscored is not None:
        return unscored, None, []
    batches = [
        ScoredBatch(
            batch,
            STORE.get_bytes(RESOURCES.work_bucket, batch["result_key"]) if batch.get("result_key") else None,
        )
        for batch in state.get("scoring") or []
    ]
    policy, policy_record = _policy()
    faces = _face_stage_evidence(state, policy)
    return scored_summary(
        state,
        batches,
        policy=policy,
        policy_record=policy_record,
        faces=faces,
        provenance_policy=PROVENANCE_POLICY,
        contract_version=CONTRACT_VERSION,
        work_bucket=RESOURCES.work_bucket,
        sampling=sampling_in_force(
            (_manifest(state) or {}).get("params"),
            face_evidence_source=FACE_STAGE.source,
            face_check_frames=_face_check_frames(faces),
        ),
    )


def _face_stage_evidence(state: dict[str, Any], policy: DecisionPolicy) -> FaceStageEvidence:
    """The face stage's evidence document, read from the work bucket (checked in the domain)."""
    pointer = state.get("faces") or {}
    key = pointer.get("evidence_key") if FACE_STAGE.source != "model" else None
    return face_stage_evidence(
        source=FACE_STAGE.source,
        pointer=pointer,
        document_raw=STORE.get_bytes(RESOURCES.work_bucket, key) if key else None,
        policy=policy,
        bucket=RESOURCES.work_bucket,
    )


def _face_check_frames(faces: FaceStageEvidence) -> int | None:
    """FaceCheckFrames as the face stage's document records it; this function's own setting when the
    stage wrote none (nothing to check: NO_FACE_EVIDENCE decides); None when faces come from the model."""
    if faces.source == "model":
        return None
    record = faces.record or {}
    return record.get("check_frames", FACE_STAGE.check_frames)


def _manifest(state: dict[str, Any]) -> dict[str, Any] | None:
    """The frame manifest extraction wrote, checked against the hash the state carries (when it
    carries one): its sampling parameters are what the calibration binding compares."""
    extraction = state.get("extraction") or {}
    if not extraction.get("manifest_key"):
        return None
    raw = STORE.get_bytes(RESOURCES.work_bucket, extraction["manifest_key"])
    expected = extraction.get("manifest_sha256")
    if expected and sha256_hex(raw) != expected:
        raise SourceChangedError(f"frame manifest {extraction['manifest_key']} is not the one extracted")
    return json.loads(raw)


def _frames_lineage(state: dict[str, Any]) -> dict[str, Any] | None:
    extraction = state.get("extraction") or {}
    return frames_lineage(extraction, _manifest(state), RESOURCES.work_bucket)


def _policy() -> tuple[DecisionPolicy, dict[str, Any]]:
    """Template defaults, overridden by the SSM document when one is configured (cached 5 minutes).

    Returns the policy and what the record keeps of it: its values and, for an override, the
    parameter name and version it was read from, so an auditor can fetch that exact document.
    """
    values: dict[str, Any] = dict(settings.policy_defaults())
    override: dict[str, Any] | None = None
    if POLICY_SOURCE is not None:
        fetched = POLICY_SOURCE.get(RESOURCES.policy_parameter, max_age=POLICY_CACHE_SECONDS)
        values |= _override_document(fetched["document"])
        override = {k: fetched[k] for k in ("parameter", "parameter_version", "parameter_type")}
    policy = DecisionPolicy.from_mapping(values)
    return policy, policy.to_dict() | ({"override": override} if override else {})


def _override_document(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PolicyError(f"policy override {RESOURCES.policy_parameter} is not JSON") from exc
    if not isinstance(document, dict):
        raise PolicyError(f"policy override {RESOURCES.policy_parameter} must be a JSON object")
    # issue 21: a production pointer also names where its model is served (score reads that part)
    return split_pointer(document)[0]


def _policy_in_force() -> dict[str, Any]:
    """The policy an INVALID or ERROR record names. A broken override is recorded as such, since
    it must never stop the one decision this upload gets."""
    try:
        return _policy()[1]
    except Exception as exc:  # the ERROR path records whatever went wrong; it cannot fail on it
        logger.exception("decision policy unavailable")
        return {"version": None, "unavailable": f"{type(exc).__name__}: {exc}"[:300]}
