"""The assembly of one decision from the workflow's evidence (docs/decision-policy.md).

The decide handler reads the bytes (scoring batches, the face stage's document, the frame
manifest) and writes the record; everything in between happens here, in pure Python: which path
produced the outcome (failure, refusal, scored evidence), the findings made beside the model, the
calibration binding, and the record with the audit objects it names by hash.

Findings come from ``FINDING_PRODUCERS``: one function per stage beside the model, each reading
its own small result. A new stage adds its producer to that tuple; none can turn a decision into
a PASS (``kyc.domain.policy.apply_findings``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kyc.domain.binding import calibration_binding
from kyc.domain.face_gates import FaceGates
from kyc.domain.faces import FaceEvidenceError, assess_frame, face_findings, frame_faces_from_dict
from kyc.domain.failures import reason_for_failure
from kyc.domain.frame_location import frame_location
from kyc.domain.lineage import build_lineage, canonical_json, sha256_hex
from kyc.domain.outcomes import Decision
from kyc.domain.policy import DecisionPolicy, Finding, FrameEvidence, apply_findings, decide_outcome
from kyc.domain.provenance import ProvenanceAssessment, ProvenancePolicy, assess
from kyc.domain.reasons import ReasonCode
from kyc.domain.record import DecisionContext, DecisionSummary, build_decision_item, reasons_from
from kyc.domain.reuse import reuse_findings
from kyc.domain.same_person import identity_check
from kyc.domain.sampling_plan import timing_findings

__all__ = [
    "FINDING_PRODUCERS",
    "DecisionInputs",
    "EvidenceObject",
    "FaceStageEvidence",
    "Recorded",
    "ScoredBatch",
    "build_record",
    "evidence_object",
    "face_count",
    "face_stage_evidence",
    "findings",
    "frames_lineage",
    "provenance",
    "scored_summary",
    "unscored_summary",
]


@dataclass(frozen=True)
class EvidenceObject:
    key: str
    data: bytes
    sha256: str


def evidence_object(key: str, data: bytes) -> EvidenceObject:
    return EvidenceObject(key=key, data=data, sha256=sha256_hex(data))


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


@dataclass(frozen=True)
class ScoredBatch:
    """One scoring batch as the state names it (``pointer``) and its result document's bytes
    (None when the batch wrote none)."""

    pointer: Mapping[str, Any]
    raw: bytes | None


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
    checked_frames: frozenset[str] | None = None  # every frame the stage checked (None: model source)


@dataclass(frozen=True)
class DecisionInputs:
    """What a finding producer may read: the workflow state, the face stage's evidence and the
    provenance rules in force."""

    state: Mapping[str, Any]
    faces: FaceStageEvidence | None
    provenance_policy: ProvenancePolicy


def provenance(state: Mapping[str, Any], policy: ProvenancePolicy) -> ProvenanceAssessment:
    """C2PA Content Credentials and container forensics recorded by validate, read under the
    provenance rules in force (kyc.domain.provenance; docs/provenance.md)."""
    recorded = (state.get("validation") or {}).get("provenance") or {}
    return assess(
        recorded.get("c2pa"),
        recorded.get("container"),
        received_at=(state.get("submission") or {}).get("received_at"),
        policy=policy,
    )


def _provenance_findings(inputs: DecisionInputs) -> Iterable[Finding]:
    return provenance(inputs.state, inputs.provenance_policy).findings


def _reuse_findings(inputs: DecisionInputs) -> Iterable[Finding]:
    return reuse_findings(inputs.state.get("reuse"))  # CheckReuse: screened before under another submission


def _face_stage_findings(inputs: DecisionInputs) -> Iterable[Finding]:
    return inputs.faces.findings if inputs.faces is not None else ()  # kyc.domain.faces


def _sampling_findings(inputs: DecisionInputs) -> Iterable[Finding]:
    # a frame shown for a fraction of a frame was sampled (kyc.domain.sampling_plan; docs/sampling.md)
    return timing_findings((inputs.state.get("extraction") or {}).get("briefly_shown"))


FindingProducer = Callable[[DecisionInputs], Iterable[Finding]]

# Every stage beside the model that bounds a decision, in the order its reasons are recorded.
FINDING_PRODUCERS: tuple[FindingProducer, ...] = (
    _provenance_findings,
    _reuse_findings,
    _face_stage_findings,
    _sampling_findings,
)


def findings(
    inputs: DecisionInputs, producers: Sequence[FindingProducer] = FINDING_PRODUCERS
) -> list[Finding]:
    """What the stages beside the model found that bounds this decision (kyc.domain.policy.Effect).

    Each producer reads its own small result from the state (large evidence stays in S3); none
    can turn a decision into a PASS.
    """
    found: list[Finding] = []
    for produce in producers:
        found.extend(produce(inputs))
    return found


def face_count(frame: Mapping[str, Any]) -> int | None:
    """Faces the model saw in a frame; None when the model does not look for faces at all.

    An empty ``faces`` list alone is ambiguous (a whole-frame classifier sends none), so zero
    faces is read only from the contract's explicit ``no_face`` quality flag.
    """
    if frame.get("faces"):
        return len(frame["faces"])
    return 0 if "no_face" in (frame.get("quality") or []) else None


def face_stage_evidence(
    *,
    source: str,
    pointer: Mapping[str, Any] | None,
    document_raw: bytes | None,
    policy: DecisionPolicy,
    bucket: str | None,
) -> FaceStageEvidence:
    """Check the face stage's evidence document against the hash the state carries and apply the
    policy's face gates and the one-person check. ``source`` ``model``: the deployment relies on the
    model's faces. No document in ``local`` or ``rekognition`` mode: no face evidence, no PASS."""
    if source == "model":
        return FaceStageEvidence("model", None, (), {"source": "model"})
    pointer = pointer or {}
    key = pointer.get("evidence_key")
    if not key or document_raw is None:
        found = face_findings([], policy)
        record = {"source": source, "evidence_key": None, "findings": [str(f.reason) for f in found]}
        return FaceStageEvidence(source, frozenset(), tuple(found), record, frozenset())
    if sha256_hex(document_raw) != pointer.get("evidence_sha256"):
        raise FaceEvidenceError(f"face evidence {key} does not match the hash the face stage recorded")
    document = json.loads(document_raw)
    gates = FaceGates.from_mapping(policy.face_gates)
    frames = [frame_faces_from_dict(f) for f in document["frames"]]
    assessments = [assess_frame(f, gates) for f in frames]
    evidence = frozenset(a.frame_id for a in assessments if a.evidence)
    identity = identity_check(document.get("identity"), evidence, gates.min_identity_similarity)
    found = face_findings(assessments, policy) + list(identity.findings)
    record = {
        "source": document.get("source", source),
        "detector": document.get("detector"),
        "bucket": bucket,
        "evidence_key": key,
        "evidence_sha256": pointer["evidence_sha256"],
        "check_frames": document.get("check_frames"),  # FaceCheckFrames as the stage applied it
        "frames_checked": len(frames),
        "frames_with_evidence": sum(1 for a in assessments if a.evidence),
        "findings": [str(f.reason) for f in found],
        "identity": identity.to_dict(),  # one person throughout (kyc.domain.same_person)
        "frames": [
            raw_frame | {"face_count": a.face_count, "issues": [str(i) for i in a.issues]}
            for raw_frame, a in zip(document["frames"], assessments, strict=True)
        ],
    }
    checked = frozenset(f.frame_id for f in frames)
    return FaceStageEvidence(source, evidence, tuple(found), record, checked)


def unscored_summary(
    mode: str, state: Mapping[str, Any], policy_in_force: Callable[[], dict[str, Any]]
) -> DecisionSummary | None:
    """The outcome when nothing was scored: a failure (ERROR) or refused media (INVALID); None when
    the evidence is scores. ``policy_in_force`` is asked only on these paths."""
    if mode == "error":
        failure = state.get("failure") or {}
        reasons = (reason_for_failure(failure.get("Error")),)
        return DecisionSummary(Decision.ERROR, reasons, policy=policy_in_force())
    validation = state.get("validation") or {}
    if not validation.get("accepted"):
        return DecisionSummary(
            Decision.INVALID,
            reasons_from([validation.get("reason") or "CORRUPT_MEDIA"]),
            policy=policy_in_force(),
        )
    extraction = state.get("extraction") or {}
    if extraction.get("refusal"):
        reasons = reasons_from([extraction["refusal"]["reason"]])
        return DecisionSummary(Decision.INVALID, reasons, policy=policy_in_force())
    return None


_BATCH_LINEAGE_KEYS = (
    "request_sha256",
    "response_sha256",
    "model",
    "model_witness",  # what SageMaker and S3 said the endpoint serves (kyc.domain.model_witness)
    "invoked_variant",
    "latency_ms",
    "attempts",
    "reason",
)


def scored_summary(
    state: Mapping[str, Any],
    batches: Sequence[ScoredBatch],
    *,
    policy: DecisionPolicy,
    policy_record: Mapping[str, Any],
    faces: FaceStageEvidence,
    provenance_policy: ProvenancePolicy,
    contract_version: str,
    work_bucket: str | None,
    sampling: Mapping[str, Any],
) -> tuple[DecisionSummary, dict[str, Any], list[dict[str, Any]]]:
    """Aggregate the scored frames under ``policy``, bound the verdict by the findings and the
    calibration binding; returns the summary, the scores.json document and each batch's lineage.
    ``sampling``: the sampling settings the evidence records (``kyc.domain.binding.sampling_in_force``)."""
    evidence: list[FrameEvidence] = []
    frames: list[dict[str, Any]] = []
    failures: list[ReasonCode] = []
    models: list[dict[str, str]] = []
    witnesses: list[dict[str, Any] | None] = []
    batch_lineage: list[dict[str, Any]] = []
    failed_batches = 0
    for batch in batches:
        pointer, raw = batch.pointer, batch.raw
        doc = json.loads(raw) if raw is not None else None
        entry = {
            "batch_index": pointer["batch_index"],
            "status": pointer["status"],
            "bucket": work_bucket,
            "result_key": pointer.get("result_key"),
        }
        if doc is not None:
            entry["result_sha256"] = sha256_hex(raw)  # type: ignore[arg-type]  # doc implies raw
            entry |= {k: doc.get(k) for k in _BATCH_LINEAGE_KEYS}
        batch_lineage.append(entry)
        if pointer["status"] != "SCORED" or doc is None or doc.get("status") != "SCORED":
            failed_batches += 1
            failures.extend(
                reasons_from([pointer.get("reason") or (doc or {}).get("reason") or "PIPELINE_ERROR"])
            )
            continue
        models.append(doc["model"])
        witnesses.append(doc.get("model_witness"))
        for frame in doc["frames"]:
            frames.append(frame)
            evidence.append(
                FrameEvidence(
                    frame_id=frame["frame_id"], p_fake=frame.get("p_fake"), face_count=face_count(frame)
                )
            )
    extraction = state.get("extraction") or {}
    verdict = decide_outcome(
        evidence,
        frames_sampled=int(extraction.get("frames_sampled") or 0),
        policy=policy,
        failed_batches=failed_batches,
        failure_reasons=failures,
        face_evidence=faces.evidence_frames,
        face_checked=faces.checked_frames,
    )
    found = findings(DecisionInputs(state=state, faces=faces, provenance_policy=provenance_policy))
    # --- calibration: thresholds measured for other model bytes, policy or sampling (or none) decide
    # nothing (MODEL_NOT_CALIBRATED); the record names each field that differed
    binding = calibration_binding(
        policy.calibration, models, contract_version, policy=policy, sampling=sampling, deployment=witnesses
    )
    unbound = binding.findings if binding is not None else []
    calibrated_view = apply_findings(verdict, found) if unbound else None
    verdict = apply_findings(verdict, [*found, *unbound])
    model = _model_of(models)
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
    scores_doc: dict[str, Any] = {
        "submission_id": state["submission"]["submission_id"],
        "model": model,
        "frames": frames,  # per-frame scores, faces and quality flags: for reviewers, never for clients
        "failed_batches": failed_batches,
    }
    if faces.record is not None:
        scores_doc["face_evidence"] = faces.record
    if binding is not None:  # what `kycscreen evaluate --write-policy` binds, and what differed
        scores_doc["calibration_binding"] = binding.to_dict()
    if calibrated_view is not None:  # for `kycscreen evaluate`: what these thresholds decide once bound
        scores_doc["decision_if_calibrated"] = {
            "decision": str(calibrated_view.decision),
            "reasons": [str(r) for r in calibrated_view.reasons],
        }
    return summary, scores_doc, batch_lineage


def _model_of(models: Sequence[Mapping[str, str]]) -> Mapping[str, str] | None:
    """The model every scored batch reported, or ``mixed`` with their versions."""
    if not models:
        return None
    if all(m == models[0] for m in models):
        return models[0]
    return {"name": "mixed", "version": ",".join(sorted({m["version"] for m in models}))}


def frames_lineage(
    extraction: Mapping[str, Any], manifest: Mapping[str, Any] | None, bucket: str | None
) -> dict[str, Any] | None:
    """The sampled frames a lineage names: each frame's object key (and byte range) and hash."""
    if not extraction.get("manifest_key") or manifest is None:
        return None
    return {
        "bucket": bucket,
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


def build_record(
    *,
    event: Mapping[str, Any],
    state: Mapping[str, Any],
    summary: DecisionSummary,
    scores_doc: Mapping[str, Any] | None,
    batch_lineage: Sequence[Mapping[str, Any]],
    provenance_policy: ProvenancePolicy,
    frames: Mapping[str, Any] | None,
    pseudonymous_key: str,
    code_version: Mapping[str, str],
    audit_bucket: str | None,
    now: datetime,
    retention_days: int,
) -> Recorded:
    """The decision item, the audit objects it names by hash (scores.json, lineage.json) and the
    lineage log entry, ready for the handler's conditional put."""
    submission = state["submission"]
    sid = submission["submission_id"]
    validation = state.get("validation")
    scoring = state.get("scoring") or []
    artefacts: dict[str, str] = {}
    evidence: list[EvidenceObject] = []
    assessment = provenance(state, provenance_policy)
    rules = {"policy": provenance_policy.to_dict()}
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
        scores = evidence_object(f"decisions/{sid}/scores.json", canonical_json(scores_doc))
        evidence.append(scores)
        artefacts |= {"scores_key": scores.key, "scores_sha256": scores.sha256}
        decision_lineage |= {
            "bucket": audit_bucket,
            "scores_key": scores.key,
            "scores_sha256": scores.sha256,
        }
        if scores_doc.get("calibration_binding"):
            binding = scores_doc["calibration_binding"]
            decision_lineage["calibration_binding"] = {k: binding[k] for k in ("bound", "differs")} | {
                "artefact_sha256": binding["observed"]["artefact_sha256"],
                "witnesses": binding["observed"].get("witnesses"),  # who said which bytes
                "decides_sha256": binding["observed"]["decides_sha256"],
            }
            if binding["observed"].get("image"):  # issue 24: whether the serving image was bound
                decision_lineage["calibration_binding"]["image"] = binding["observed"]["image"]
        if scores_doc.get("shadow"):  # issue 21: the shadowed candidate's would-be decision, not this one
            decision_lineage["shadow"] = {k: v for k, v in scores_doc["shadow"].items() if k != "frames"}
        if scores_doc.get("face_evidence"):
            decision_lineage["face_evidence"] = {
                k: v for k, v in scores_doc["face_evidence"].items() if k != "frames"
            }
    lineage = build_lineage(
        submission=submission,
        pseudonymous_key=pseudonymous_key,
        execution_arn=event.get("execution_arn"),
        validation=validation,
        frames=frames,
        scoring=batch_lineage or scoring,
        decision=decision_lineage,
        code_version=code_version,
        parameters={"policy": summary.policy},
    )
    lineage_obj = evidence_object(f"decisions/{sid}/lineage.json", canonical_json(lineage))
    evidence.append(lineage_obj)
    artefacts |= {"lineage_key": lineage_obj.key, "lineage_sha256": lineage_obj.sha256}
    context = DecisionContext(
        submission=submission,
        execution_arn=event.get("execution_arn"),
        recorded_by="decide",
        validation=validation,
        artefacts=artefacts,
        code_version=code_version,
    )
    item = build_decision_item(summary, context, now=now, retention_days=retention_days)
    item["provenance"] = assessment.to_dict() | rules  # beside the decision; erasure drops it
    if "calibration_binding" in decision_lineage:  # which bound field differed, beside the decision
        item["calibration_binding"] = decision_lineage["calibration_binding"]
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
            "audit_bucket": audit_bucket,
            "lineage_key": lineage_obj.key,
            "lineage_sha256": lineage_obj.sha256,
            "scores_sha256": artefacts.get("scores_sha256"),
        },
        "policy": summary.policy,
        "model": summary.model,
        "execution_arn": event.get("execution_arn"),
    }
    if "shadow" in decision_lineage:
        lineage_log["shadow"] = decision_lineage["shadow"]
    return Recorded(item=item, evidence=tuple(evidence), lineage_log=lineage_log)
