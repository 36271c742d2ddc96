"""What a shadowed candidate would decide: recorded beside a decision, never decided on.

Issue 21 item 3. A candidate approved by a person is deployed on its own endpoint and named by the
shadow pointer (``/kyc/<stack>/shadow-policy``). Two users score it and ask the same question, "what
would the candidate decide on these frames under its own policy?", with ONE answer, ``shadow_verdict``:

- the backlog re-screen (``functions/rescreen``), on retained submissions;
- live shadow traffic: the score function also scores each new upload's batches on the shadow
  endpoint (``shadow_batch_key``), and decide assembles them into the ``shadow`` block of the
  audit evidence (``live_shadow``), after the champion's decision is taken.

The answer is the model-dependent part of a decision only: scores aggregated under the candidate's
policy, and REVIEW ``MODEL_NOT_CALIBRATED`` when the endpoint reports other bytes than the pointer
names, or when the deployment witness (SageMaker's and S3's account of the endpoint, not the
container's) does not name the pointer's bytes and image. A live block whose witness does not is
UNWITNESSED: recorded, and never counted as an agreement or a disagreement. The face-stage,
provenance and reuse findings do not depend on the model and are not re-run.
Pure Python: no AWS calls here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kyc.domain.decision import face_count
from kyc.domain.model_witness import witness_differs
from kyc.domain.outcomes import Decision
from kyc.domain.policy import DecisionPolicy, FrameEvidence, decide_outcome
from kyc.domain.promotion import bound_image_digest
from kyc.domain.reasons import ReasonCode

__all__ = [
    "COMPARED",
    "INCOMPLETE",
    "UNWITNESSED",
    "ShadowVerdict",
    "live_shadow",
    "shadow_batch_key",
    "shadow_result_key",
    "shadow_verdict",
]

COMPARED = "COMPARED"  # every scored batch was also scored by the shadow: a would-be decision exists
INCOMPLETE = "INCOMPLETE"  # a shadow call failed, or the pointer moved mid-submission: scores only
# the deployment witness did not name the pointer's bytes (or image) on every batch: the would-be
# decision is recorded (REVIEW MODEL_NOT_CALIBRATED unless REJECT) but counts toward no disagreement rate
UNWITNESSED = "UNWITNESSED"
# what the live block keeps of each shadow batch document (the rest stays in the work bucket's copy)
_BATCH_FIELDS = ("batch_index", "status", "reason", "latency_ms", "attempts", "response_sha256")


@dataclass(frozen=True)
class ShadowVerdict:
    decision: Decision
    reasons: tuple[str, ...]
    score: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"decision": str(self.decision), "reasons": list(self.reasons), "score": self.score}


def shadow_batch_key(submission_id: str, batch_index: int) -> str:
    """Where the score function writes a batch's shadow scores (work bucket, beside the champion's)."""
    return f"scores/{submission_id}/shadow-batch-{batch_index:03d}.json"


def shadow_result_key(submission_id: str) -> str:
    """Where decide writes the assembled live shadow result (work bucket)."""
    return f"scores/{submission_id}/shadow.json"


def shadow_verdict(
    frames: Sequence[Mapping[str, Any]],
    *,
    frames_sampled: int,
    policy_document: Mapping[str, Any],
    deployed_sha256: str | None,
    reported_sha256: str | None,
    witness_differs: Sequence[str] = (),
) -> ShadowVerdict:
    """The candidate's decision on these frames under its own policy (the model-dependent part).

    ``frames``: the contract's per-frame results (``frame_id``, ``p_fake``, ``faces``, ``quality``).
    ``policy_document``: the shadow pointer's policy (its ``calibration`` binding is checked here as
    the deployment's artefact hash against the one the endpoint reported, not field by field).
    ``witness_differs``: what the deployment witness (``kyc.domain.model_witness.witness_differs``:
    SageMaker's and S3's account of the endpoint, not the container's) found different from the
    pointer; anything there is REVIEW ``MODEL_NOT_CALIBRATED`` as a reported mismatch is."""
    policy = DecisionPolicy.from_mapping({k: v for k, v in policy_document.items() if k != "calibration"})
    evidence = [FrameEvidence(f["frame_id"], f.get("p_fake"), face_count(f)) for f in frames]
    verdict = decide_outcome(evidence, frames_sampled=frames_sampled, policy=policy)
    decision, reasons = verdict.decision, [str(r) for r in verdict.reasons]
    if (reported_sha256 != deployed_sha256 or witness_differs) and decision is not Decision.REJECT:
        decision, reasons = Decision.REVIEW, [*reasons, str(ReasonCode.MODEL_NOT_CALIBRATED)]
    return ShadowVerdict(decision, tuple(reasons), verdict.score)


def live_shadow(
    champion_batches: Sequence[Mapping[str, Any]],
    shadow_docs: Mapping[int, Mapping[str, Any] | None],
    *,
    frames_sampled: int,
    recorded_decision: str,
) -> dict[str, Any] | None:
    """The ``shadow`` block of one decision's evidence, or None when no shadow pointer was set.

    ``champion_batches``: the state's scoring pointers; only the champion's SCORED batches are
    shadowed. ``shadow_docs``: batch index -> the shadow batch document (None: none was written).
    A would-be decision needs every one of those batches scored by the same pointer version;
    otherwise the block is INCOMPLETE and says why. Nothing here changes ``recorded_decision``."""
    scored = [int(b["batch_index"]) for b in champion_batches if b.get("status") == "SCORED"]
    docs = {i: shadow_docs.get(i) for i in scored}
    present = [d for d in docs.values() if d is not None]
    if not present:
        return None
    first = present[0]
    pointer = first.get("pointer") or {}
    block: dict[str, Any] = {
        "endpoint_name": first.get("endpoint_name"),
        "pointer": {k: pointer.get(k) for k in ("parameter", "parameter_version")},
        "artefact_sha256": pointer.get("artefact_sha256"),
        "model_package_arn": pointer.get("model_package_arn"),
        "recorded_decision": recorded_decision,
        "batches": [
            {k: d.get(k) for k in _BATCH_FIELDS} if d is not None else {"batch_index": i, "status": "MISSING"}
            for i, d in sorted(docs.items())
        ],
    }
    problems = _problems(docs, pointer)
    frames = [f for d in present if d.get("status") == "SCORED" for f in d.get("frames") or ()]
    block["frames"] = [{"frame_id": f["frame_id"], "p_fake": f.get("p_fake")} for f in frames]
    if problems:
        return block | {"status": INCOMPLETE, "problems": problems, "decision": None, "agrees": None}
    models = [d.get("model") or {} for d in present]
    reported = {m.get("artefact_sha256") for m in models}
    policy = first.get("policy") or {}
    # every batch's witness must name the pointer's bytes (and the image its calibration names)
    differs = sorted(
        {
            field
            for d in present
            for field in witness_differs(
                d.get("model_witness"),
                artefact_sha256=pointer.get("artefact_sha256"),
                image_digest=bound_image_digest(policy),
            )
        }
    )
    verdict = shadow_verdict(
        frames,
        frames_sampled=frames_sampled,
        policy_document=policy,
        deployed_sha256=pointer.get("artefact_sha256"),
        reported_sha256=reported.pop() if len(reported) == 1 else None,
        witness_differs=differs,
    )
    return block | {
        "status": UNWITNESSED if differs else COMPARED,
        "model": models[0],
        "model_witness": _witness_summary(present[0].get("model_witness")),
        "witness_differs": differs,
        **verdict.to_dict(),
        # an unwitnessed candidate's verdict compares nothing: which model answered is not known
        "agrees": None if differs else str(verdict.decision) == recorded_decision,
    }


def _witness_summary(account: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the first batch's deployment witness said (every batch's was compared above)."""
    if not account:
        return None
    keys = ("source", "artefact_sha256", "unreadable", "image_digest", "endpoint_config", "endpoint_modified")
    return {k: account.get(k) for k in keys} | {
        "model_data": [m.get("model_data") for m in account.get("models") or []]
    }


def _problems(docs: Mapping[int, Mapping[str, Any] | None], pointer: Mapping[str, Any]) -> list[str]:
    out = []
    for index, doc in sorted(docs.items()):
        if doc is None:
            out.append(f"batch {index}: no shadow scores")
        elif doc.get("status") != "SCORED":
            out.append(f"batch {index}: {doc.get('reason') or doc.get('status')}")
    versions = {(d.get("pointer") or {}).get("parameter_version") for d in docs.values() if d is not None}
    if len(versions) > 1:
        out.append(f"the shadow pointer moved during the submission (versions {sorted(map(str, versions))})")
    if not isinstance(pointer.get("artefact_sha256"), str):
        out.append("the shadow pointer names no artefact")
    return out
