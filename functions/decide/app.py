"""DecideOutcome: turn the evidence into exactly one recorded decision.

Mode ``decide`` aggregates scored frames under the decision policy; mode ``error`` records an
ERROR after a failure elsewhere in the workflow. Either way the DynamoDB write is conditional:
the first terminal decision for a submission stands, and a replay returns it unchanged.
Downstream systems learn of it from the table's stream (DecisionEventsPipe), not from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore
from kyc.aws.errors import SourceMissingError
from kyc.aws.kms_mac import KmsMac
from kyc.aws.s3_object_store import S3ObjectStore, canonical_json
from kyc.aws.ssm_policy_source import PolicyOverrideProvider
from kyc.domain.binding import model_binding_findings
from kyc.domain.contract import CONTRACT_VERSION
from kyc.domain.face_gates import FaceGates
from kyc.domain.faces import FaceEvidenceError, assess_frame, face_findings, frame_faces_from_dict
from kyc.domain.failures import reason_for_failure
from kyc.domain.identity import pseudonymise_key
from kyc.domain.lineage import build_lineage, sha256_hex
from kyc.domain.outcomes import Decision
from kyc.domain.policy import (
    DecisionPolicy,
    Finding,
    FrameEvidence,
    PolicyError,
    apply_findings,
    decide_outcome,
)
from kyc.domain.provenance import ProvenanceAssessment, assess
from kyc.domain.reasons import ReasonCode
from kyc.domain.record import (
    DecisionContext,
    DecisionSummary,
    build_decision_item,
    reasons_from,
)
from kyc.domain.reuse import reuse_findings
from kyc.media.framestore import frame_location
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, time_to_decision, tracer
from kyc.version import code_version

RESOURCES = settings.stack_resources()
PROVENANCE_POLICY = settings.provenance_policy()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
DECISIONS = DynamoDBDecisionStore(RESOURCES.decisions_table)
POLICY_SOURCE = PolicyOverrideProvider() if RESOURCES.policy_parameter else None
PSEUDONYM_MAC = KmsMac(settings.pseudonym_key_id())
POLICY_CACHE_SECONDS = 300
FACE_STAGE = settings.face_stage()


@logger.inject_lambda_context(correlation_id_path="state.submission.submission_id", clear_state=True)
@tracer.capture_lambda_handler
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
            for reason in existing["reasons"]:
                count("DecisionReasons", reason_code=reason)
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


@dataclass(frozen=True)
class EvidenceObject:
    key: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class Recorded:
    """A decision not yet written: the item, the audit objects it names, and its lineage log entry.

    Nothing is written until the item's conditional put wins, so a losing writer leaves no trace
    in the audit bucket, and the winner's objects, written with ``If-None-Match: *``, cannot be
    replaced by anyone afterwards.
    """

    item: dict[str, Any]
    evidence: tuple[EvidenceObject, ...]
    lineage_log: dict[str, Any]


def _evidence_object(key: str, data: bytes) -> EvidenceObject:
    return EvidenceObject(key=key, data=data, sha256=sha256_hex(data))


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
    execution = sha256_hex(str(event.get("execution_arn")).encode("utf-8"))[:32]
    return f"evidence/{execution}/{obj_key}"


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
            staged = _evidence_object(
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
    submission = state["submission"]
    sid = submission["submission_id"]
    validation = state.get("validation")
    scoring = state.get("scoring") or []
    summary, scores_doc, batch_lineage = _summarise(event.get("mode", "decide"), state)
    artefacts: dict[str, str] = {}
    evidence: list[EvidenceObject] = []
    assessment = provenance(state)
    rules = {"policy": PROVENANCE_POLICY.to_dict()}
    decision_lineage: dict[str, Any] = {
        "decision": str(summary.decision),
        "reasons": [str(r) for r in summary.reasons],
        "score": summary.score,
        "policy": summary.policy,
        "model": summary.model,
        "provenance": assessment.audit_dict() | rules,  # lineage.json outlives an erasure
    }
    if state.get("reuse"):  # earlier submissions this clip matched, and how strongly (CheckReuse)
        decision_lineage["reuse"] = state["reuse"]
    if scores_doc is not None:
        scores = _evidence_object(f"decisions/{sid}/scores.json", canonical_json(scores_doc))
        evidence.append(scores)
        artefacts |= {"scores_key": scores.key, "scores_sha256": scores.sha256}
        decision_lineage |= {
            "bucket": RESOURCES.audit_bucket,
            "scores_key": scores.key,
            "scores_sha256": scores.sha256,
        }
        if scores_doc.get("face_evidence"):
            decision_lineage["face_evidence"] = {
                k: v for k, v in scores_doc["face_evidence"].items() if k != "frames"
            }
    lineage = build_lineage(
        submission=submission,
        pseudonymous_key=pseudonymise_key(submission["key"], PSEUDONYM_MAC),
        execution_arn=event.get("execution_arn"),
        validation=validation,
        frames=_frames_lineage(state),
        scoring=batch_lineage or scoring,
        decision=decision_lineage,
        code_version=code_version(),
        parameters={"policy": summary.policy},
    )
    lineage_obj = _evidence_object(f"decisions/{sid}/lineage.json", canonical_json(lineage))
    evidence.append(lineage_obj)
    artefacts |= {"lineage_key": lineage_obj.key, "lineage_sha256": lineage_obj.sha256}
    context = DecisionContext(
        submission=submission,
        execution_arn=event.get("execution_arn"),
        recorded_by="decide",
        validation=validation,
        artefacts=artefacts,
        code_version=code_version(),
    )
    item = build_decision_item(
        summary, context, now=datetime.now(UTC), retention_days=RESOURCES.retention_days
    )
    item["provenance"] = assessment.to_dict() | rules  # beside the decision; erasure drops it
    lineage_log = {
        "stage": "decide",
        "submission_id": sid,
        "inputs": {
            "source_sha256": (validation or {}).get("sha256") or None,
            "manifest_sha256": (state.get("extraction") or {}).get("manifest_sha256"),
            "batches": [
                {k: b.get(k) for k in ("batch_index", "result_key", "result_sha256")} for b in batch_lineage
            ],
        },
        "outputs": {
            "decision": item["decision"],
            "reasons": item["reasons"],
            "audit_bucket": RESOURCES.audit_bucket,
            "lineage_key": lineage_obj.key,
            "lineage_sha256": lineage_obj.sha256,
            "scores_sha256": artefacts.get("scores_sha256"),
        },
        "policy": summary.policy,
        "model": summary.model,
        "execution_arn": event.get("execution_arn"),
    }
    return Recorded(item=item, evidence=tuple(evidence), lineage_log=lineage_log)


def _summarise(mode: str, state: dict[str, Any]) -> tuple[DecisionSummary, dict | None, list[dict]]:
    """Which path produced the outcome: failure, refusal, or scored evidence."""
    if mode == "error":
        failure = state.get("failure") or {}
        reasons = (reason_for_failure(failure.get("Error")),)
        return DecisionSummary(Decision.ERROR, reasons, policy=_policy_in_force()), None, []
    validation = state.get("validation") or {}
    if not validation.get("accepted"):
        return (
            DecisionSummary(
                Decision.INVALID,
                reasons_from([validation.get("reason") or "CORRUPT_MEDIA"]),
                policy=_policy_in_force(),
            ),
            None,
            [],
        )
    extraction = state.get("extraction") or {}
    if extraction.get("refusal"):
        reasons = reasons_from([extraction["refusal"]["reason"]])
        return DecisionSummary(Decision.INVALID, reasons, policy=_policy_in_force()), None, []
    return _scored(state, extraction)


def _scored(state: dict[str, Any], extraction: dict[str, Any]) -> tuple[DecisionSummary, dict, list[dict]]:
    evidence: list[FrameEvidence] = []
    frames: list[dict[str, Any]] = []
    failures: list[ReasonCode] = []
    models: list[dict[str, str]] = []
    batch_lineage: list[dict[str, Any]] = []
    failed_batches = 0
    for batch in state.get("scoring") or []:
        raw = STORE.get_bytes(RESOURCES.work_bucket, batch["result_key"]) if batch.get("result_key") else None
        doc = json.loads(raw) if raw is not None else None
        entry = {
            "batch_index": batch["batch_index"],
            "status": batch["status"],
            "bucket": RESOURCES.work_bucket,
            "result_key": batch.get("result_key"),
        }
        if doc is not None:
            entry["result_sha256"] = sha256_hex(raw)
            entry |= {
                k: doc.get(k)
                for k in (
                    "request_sha256",
                    "response_sha256",
                    "model",
                    "invoked_variant",
                    "latency_ms",
                    "attempts",
                    "reason",
                )
            }
        batch_lineage.append(entry)
        if batch["status"] != "SCORED" or doc is None or doc.get("status") != "SCORED":
            failed_batches += 1
            failures.extend(
                reasons_from([batch.get("reason") or (doc or {}).get("reason") or "PIPELINE_ERROR"])
            )
            continue
        models.append(doc["model"])
        for frame in doc["frames"]:
            frames.append(frame)
            evidence.append(
                FrameEvidence(
                    frame_id=frame["frame_id"], p_fake=frame.get("p_fake"), face_count=face_count(frame)
                )
            )
    policy, policy_record = _policy()
    faces = face_stage_evidence(state, policy)
    verdict = decide_outcome(
        evidence,
        frames_sampled=int(extraction.get("frames_sampled") or 0),
        policy=policy,
        failed_batches=failed_batches,
        failure_reasons=failures,
        face_evidence=faces.evidence_frames,
    )
    found = findings(state, faces=faces)
    # --- calibration: thresholds measured for another model (or none) decide nothing (MODEL_NOT_CALIBRATED)
    binding = model_binding_findings(policy.calibration, models, CONTRACT_VERSION)
    calibrated_view = apply_findings(verdict, found) if binding else None
    verdict = apply_findings(verdict, [*found, *binding])
    model = (
        models[0]
        if models and all(m == models[0] for m in models)
        else (
            {"name": "mixed", "version": ",".join(sorted({m["version"] for m in models}))} if models else None
        )
    )
    summary = DecisionSummary(
        decision=verdict.decision,
        reasons=verdict.reasons,
        score=verdict.score,
        frames_sampled=verdict.frames_sampled,
        frames_scored=verdict.frames_scored,
        frames_with_face=verdict.frames_with_face,
        policy=policy_record,
        model=model,
    )
    scores_doc = {
        "submission_id": state["submission"]["submission_id"],
        "model": model,
        "frames": frames,  # per-frame scores, faces and quality flags: for reviewers, never for clients
        "failed_batches": failed_batches,
    }
    if faces.record is not None:
        scores_doc["face_evidence"] = faces.record
    if calibrated_view is not None:  # for `kycscreen evaluate`: what these thresholds decide once bound
        scores_doc["decision_if_calibrated"] = {
            "decision": str(calibrated_view.decision),
            "reasons": [str(r) for r in calibrated_view.reasons],
        }
    return summary, scores_doc, batch_lineage


def findings(state: dict[str, Any], *, faces: FaceStageEvidence | None = None) -> list[Finding]:
    """What the stages beside the model found that bounds this decision (kyc.domain.policy.Effect).

    Each source reads its own small result from the state (large evidence stays in S3) and adds
    its findings here; none can turn a decision into a PASS.
    """
    found: list[Finding] = []
    found.extend(provenance(state).findings)
    found += reuse_findings(state.get("reuse"))  # CheckReuse: screened before under another submission
    if faces is not None:  # face stage: kyc.domain.faces
        found.extend(faces.findings)
    return found


def provenance(state: dict[str, Any]) -> ProvenanceAssessment:
    """C2PA Content Credentials and container forensics recorded by validate, read under the
    provenance rules in force (kyc.domain.provenance; docs/provenance.md)."""
    recorded = (state.get("validation") or {}).get("provenance") or {}
    return assess(
        recorded.get("c2pa"),
        recorded.get("container"),
        received_at=(state.get("submission") or {}).get("received_at"),
        policy=PROVENANCE_POLICY,
    )


@dataclass(frozen=True)
class FaceStageEvidence:
    """What the face stage contributes to a decision.

    ``evidence_frames``: ids of frames with one face passing the gates (None when the deployment
    relies on the model's faces); ``record``: what scores.json keeps, so an auditor sees every
    observation and the gate each frame failed after the work bucket has expired.
    """

    source: str
    evidence_frames: frozenset[str] | None
    findings: tuple[Finding, ...]
    record: dict[str, Any] | None


def face_stage_evidence(state: dict[str, Any], policy: DecisionPolicy) -> FaceStageEvidence:
    """Read the face stage's evidence document (checked against the hash the state carries) and
    apply the policy's face gates. No document in ``rekognition`` mode: no face evidence, no PASS."""
    if FACE_STAGE.source == "model":
        return FaceStageEvidence("model", None, (), {"source": "model"})
    pointer = state.get("faces") or {}
    key = pointer.get("evidence_key")
    if not key:
        found = face_findings([], policy)
        record = {"source": "rekognition", "evidence_key": None, "findings": [str(f.reason) for f in found]}
        return FaceStageEvidence("rekognition", frozenset(), tuple(found), record)
    raw = STORE.get_bytes(RESOURCES.work_bucket, key)
    if sha256_hex(raw) != pointer.get("evidence_sha256"):
        raise FaceEvidenceError(f"face evidence {key} does not match the hash the face stage recorded")
    document = json.loads(raw)
    gates = FaceGates.from_mapping(policy.face_gates)
    frames = [frame_faces_from_dict(f) for f in document["frames"]]
    assessments = [assess_frame(f, gates) for f in frames]
    found = face_findings(assessments, policy)
    record = {
        "source": document.get("source", "rekognition"),
        "detector": document.get("detector"),
        "bucket": RESOURCES.work_bucket,
        "evidence_key": key,
        "evidence_sha256": pointer["evidence_sha256"],
        "frames_checked": len(frames),
        "frames_with_evidence": sum(1 for a in assessments if a.evidence),
        "findings": [str(f.reason) for f in found],
        "frames": [
            raw_frame | {"face_count": a.face_count, "issues": [str(i) for i in a.issues]}
            for raw_frame, a in zip(document["frames"], assessments, strict=True)
        ],
    }
    evidence = frozenset(a.frame_id for a in assessments if a.evidence)
    return FaceStageEvidence("rekognition", evidence, tuple(found), record)


def face_count(frame: dict[str, Any]) -> int | None:
    """Faces the model saw in a frame; None when the model does not look for faces at all.

    An empty ``faces`` list alone is ambiguous (a whole-frame classifier sends none), so zero
    faces is read only from the contract's explicit ``no_face`` quality flag.
    """
    if frame.get("faces"):
        return len(frame["faces"])
    return 0 if "no_face" in (frame.get("quality") or []) else None


def _frames_lineage(state: dict[str, Any]) -> dict[str, Any] | None:
    extraction = state.get("extraction") or {}
    if not extraction.get("manifest_key"):
        return None
    manifest = STORE.get_json(RESOURCES.work_bucket, extraction["manifest_key"])
    return {
        "bucket": RESOURCES.work_bucket,
        "manifest_key": extraction["manifest_key"],
        "manifest_sha256": extraction.get("manifest_sha256"),
        "items": [
            {
                "index": f["index"],
                "pts_s": f.get("pts_s"),
                **frame_location(manifest, f),  # its batch object, offset and length
                "sha256": f["sha256"],
            }
            for f in manifest["frames"]
        ],
    }


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
    return document


def _policy_in_force() -> dict[str, Any]:
    """The policy an INVALID or ERROR record names. A broken override is recorded as such, since
    it must never stop the one decision this upload gets."""
    try:
        return _policy()[1]
    except Exception as exc:  # the ERROR path records whatever went wrong; it cannot fail on it
        logger.exception("decision policy unavailable")
        return {"version": None, "unavailable": f"{type(exc).__name__}: {exc}"[:300]}
