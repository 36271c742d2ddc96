"""Evidence gates, then two thresholds with a REVIEW band (docs/decision-policy.md).

Fail closed: missing, partial or unusable evidence can lead to REVIEW, REJECT or ERROR, never to PASS
(unless a policy explicitly allows PASS on partial scoring). Pure Python: the decide layer has no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from types import MappingProxyType

from kyc.domain.aggregate import PolicyError, aggregate, validate_params
from kyc.domain.calibration import Calibration
from kyc.domain.face_gates import FaceGates
from kyc.domain.outcomes import Decision
from kyc.domain.reasons import ReasonCode

__all__ = [
    "DecisionPolicy",
    "Effect",
    "EvidenceError",
    "Finding",
    "FrameEvidence",
    "PolicyError",
    "Verdict",
    "apply_findings",
    "decide_outcome",
]


class EvidenceError(ValueError):
    """The evidence contradicts itself (e.g. more frames than were sampled): a pipeline bug."""


class Effect(StrEnum):
    """What a finding from outside the model's score does to the decision (strongest wins).

    - ``NO_PASS``: a PASS becomes REVIEW; a REJECT stands (e.g. media already screened elsewhere).
    - ``REVIEW``: PASS and REJECT both become REVIEW, because the score itself cannot be trusted
      either way (e.g. thresholds never calibrated for the model that answered).
    - ``REJECT``: REJECT whatever the model says, even when scoring failed, since the finding does
      not depend on the model (e.g. the file declares itself AI-generated).
    """

    NO_PASS = "NO_PASS"  # noqa: S105 - an effect, not a password
    REVIEW = "REVIEW"
    REJECT = "REJECT"


@dataclass(frozen=True)
class Finding:
    """Evidence gathered beside the model (provenance, reuse, face stage, calibration) that bounds
    the decision. Its reason is always recorded, even when the decision was already as strict."""

    reason: ReasonCode
    effect: Effect

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", ReasonCode(self.reason))
        object.__setattr__(self, "effect", Effect(self.effect))


@dataclass(frozen=True)
class FrameEvidence:
    """One sampled frame as the model saw it.

    ``p_fake`` None: not scored. ``face_count`` None: the model does not report faces.
    """

    frame_id: str
    p_fake: float | None
    face_count: int | None = None

    @property
    def usable(self) -> bool:
        """A finite probability in [0, 1]; anything else is never evidence."""
        return self.p_fake is not None and 0.0 <= self.p_fake <= 1.0  # False for NaN


def _probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0.0 <= value <= 1.0):
        raise PolicyError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _count(name: str, value: object, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(f"{name} must be an integer >= {lowest}, got {value!r}")
    if value != int(value) or value < lowest:
        raise PolicyError(f"{name} must be an integer >= {lowest}, got {value!r}")
    return int(value)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):  # "false" is truthy: refuse strings rather than guess
        raise PolicyError(f"{name} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class DecisionPolicy:
    """How scores become a decision. Validated on construction, so a bad override fails loudly.

    Defaults suit the training-free reference model: a wide REVIEW band. Real thresholds come from
    ``kycscreen evaluate`` on the customer's labelled data (``propose_thresholds``).
    """

    version: str = "2026-11-default"
    aggregator: str = "mean_logit"
    aggregator_params: Mapping[str, float] = field(default_factory=dict, hash=False)
    pass_threshold: float = 0.2  # PASS if score < pass_threshold
    reject_threshold: float = 0.9  # REJECT if score >= reject_threshold; REVIEW in between
    min_frames_scored: int = 8
    min_scored_fraction: float = 0.75
    min_face_fraction: float = 0.5
    max_multi_face_fraction: float = 0.25
    require_faces: bool = True
    allow_pass_on_partial: bool = False
    # --- calibration: the model these thresholds were measured for (None: uncalibrated, never decides)
    calibration: Calibration | None = None
    # face stage (docs/decision-policy.md, "Face gates"): thresholds in the face stage's units
    face_gates: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version.strip():
            raise PolicyError(f"version must be a non-empty string, got {self.version!r}")
        if not isinstance(self.aggregator, str):
            raise PolicyError(f"aggregator must be a string, got {self.aggregator!r}")
        params = self.aggregator_params if self.aggregator_params is not None else {}
        if not isinstance(params, Mapping):
            raise PolicyError(f"aggregator_params must be an object, got {params!r}")
        checked = validate_params(self.aggregator, params)
        set_ = object.__setattr__
        set_(self, "aggregator_params", MappingProxyType(checked))
        for name in (
            "pass_threshold",
            "reject_threshold",
            "min_scored_fraction",
            "min_face_fraction",
            "max_multi_face_fraction",
        ):
            set_(self, name, _probability(name, getattr(self, name)))
        if self.pass_threshold > self.reject_threshold:
            raise PolicyError(
                f"pass_threshold ({self.pass_threshold}) must be <= "
                f"reject_threshold ({self.reject_threshold})"
            )
        set_(self, "min_frames_scored", _count("min_frames_scored", self.min_frames_scored, 1))
        set_(self, "require_faces", _flag("require_faces", self.require_faces))
        set_(self, "allow_pass_on_partial", _flag("allow_pass_on_partial", self.allow_pass_on_partial))
        set_(self, "face_gates", MappingProxyType(FaceGates.from_mapping(self.face_gates).to_dict()))
        self._check_calibration()

    def _check_calibration(self) -> None:
        """A calibration measured other thresholds than these does not describe this policy. Only a
        lower pass threshold is allowed without recalibrating (an incident brake: fewer PASSes, so the
        measured APCER stays an upper bound); anything else was never measured."""
        if self.calibration is None:
            return
        calibration = self.calibration
        if not isinstance(calibration, Calibration):
            calibration = Calibration.from_mapping(calibration)
            object.__setattr__(self, "calibration", calibration)
        measured = (calibration.pass_threshold, calibration.reject_threshold, calibration.aggregator)
        if self.pass_threshold > measured[0] or measured[1:] != (self.reject_threshold, self.aggregator):
            raise PolicyError(
                f"calibration measured pass {measured[0]}, reject {measured[1]}, aggregator {measured[2]}; "
                f"this policy has pass {self.pass_threshold}, reject {self.reject_threshold}, aggregator "
                f"{self.aggregator}: recalibrate (kycscreen evaluate --write-policy) after changing them"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> DecisionPolicy:
        """Build from a JSON-like document (e.g. an SSM parameter); missing keys keep their defaults."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"policy must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            allowed = ", ".join(sorted(known))
            raise PolicyError(f"unknown policy keys: {', '.join(unknown)} (known: {allowed})")
        return cls(**data)  # type: ignore[arg-type]  # __post_init__ checks every value

    def to_dict(self) -> dict:
        """Plain JSON-ready values; the same shape ``from_mapping`` reads."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "aggregator_params": dict(self.aggregator_params),
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "face_gates": dict(self.face_gates),
        }


@dataclass(frozen=True)
class Verdict:
    """The decision with the evidence counts behind it; ``score`` is None when nothing was aggregated."""

    decision: Decision
    reasons: tuple[ReasonCode, ...]
    score: float | None
    frames_sampled: int
    frames_scored: int
    frames_with_face: int | None
    policy: DecisionPolicy

    def to_dict(self) -> dict:
        return {
            "decision": str(self.decision),
            "reasons": [str(r) for r in self.reasons],
            "score": self.score,
            "frames_sampled": self.frames_sampled,
            "frames_scored": self.frames_scored,
            "frames_with_face": self.frames_with_face,
            "policy": self.policy.to_dict(),
        }


def _unique(reasons: Sequence[ReasonCode]) -> tuple[ReasonCode, ...]:
    return tuple(dict.fromkeys(reasons))


def decide_outcome(
    evidence: Sequence[FrameEvidence],
    *,
    frames_sampled: int,
    policy: DecisionPolicy,
    failed_batches: int = 0,
    failure_reasons: Sequence[ReasonCode] = (),
    face_evidence: Collection[str] | None = None,
    face_checked: Collection[str] | None = None,
) -> Verdict:
    """Gate the evidence, aggregate what is usable, then place the score in the policy's bands.

    - Nothing usable and the scorer failed (failed batches, failure reasons or only unusable scores): ERROR.
    - Too few frames, too few faces, too many multi-face frames: REVIEW with the gate reasons.
    - Partial or unusable scoring: REJECT stays possible, PASS becomes REVIEW (unless allowed by policy).
    - PASS needs a face seen and scored on at least ``min_frames_scored`` frames: a low score from a
      model that never reported a face (a whole-frame classifier on a test card) is no evidence
      that a real person was judged, so it is REVIEW ``NO_FACE_EVIDENCE``. Where the face is seen:
      ``face_evidence`` names the frames in which the face stage (independent of the model) found
      one face passing its gates; None means the deployment relies on the model's own faces, and
      then the model must report faces (or explicitly none) for every scored frame.
    - Face evidence and scores cover the same frames (issue 24): with the face stage's evidence,
      ``face_checked`` names the frames it checked (None: not known, not enforced). Scored frames it
      never checked (``FaceCheckFrames`` below the frame count) count for nothing towards a PASS: they
      stay in the score and the sustained-fake rule (stricter only), and PASS also needs the score of
      the frames it vouches for alone below ``pass_threshold`` (else REVIEW ``MODEL_UNCERTAIN``). A
      frame where it saw a good face but the model abstained (null score, or ``no_face``) is
      unanswered and partial scoring, never a frame the completeness gate counts as answered.
    """
    if frames_sampled < 0 or failed_batches < 0:
        raise EvidenceError("frames_sampled and failed_batches must be >= 0")
    if len(evidence) > frames_sampled:
        raise EvidenceError(f"{len(evidence)} frames of evidence but only {frames_sampled} sampled")
    failures = _unique([ReasonCode(r) for r in failure_reasons])

    scored = [e for e in evidence if e.usable]
    unusable = sum(1 for e in evidence if e.p_fake is not None and not e.usable)
    seen = frozenset(face_evidence or ())  # frames where the face stage saw one good face

    def abstained_on_face(e: FrameEvidence) -> bool:
        return e.frame_id in seen and (e.p_fake is None or e.face_count == 0)

    abstained = [e for e in evidence if abstained_on_face(e)]  # against PASS: unanswered and partial
    faceless_unscored = sum(
        1 for e in evidence if e.p_fake is None and e.face_count == 0 and not abstained_on_face(e)
    )
    unexplained = len(abstained) + sum(
        1 for e in evidence if e.p_fake is None and e.face_count != 0 and not abstained_on_face(e)
    )
    reported = [e for e in evidence if e.face_count is not None]
    with_face = sum(1 for e in reported if e.face_count >= 1)
    multi_face = sum(1 for e in reported if e.face_count >= 2)
    frames_with_face = with_face if reported else None
    unchecked = 0
    if face_evidence is not None:
        scored_faces = sum(1 for e in scored if e.frame_id in seen and e.face_count != 0)
        if face_checked is not None:
            checked = frozenset(face_checked) | seen
            unchecked = sum(1 for e in scored if e.frame_id not in checked)
    elif any(e.face_count is None for e in scored):
        scored_faces = 0  # a model that left a scored frame's faces unreported vouches for none
    else:
        scored_faces = sum(1 for e in scored if (e.face_count or 0) >= 1)
    aggregated = [e for e in scored if not (policy.require_faces and e.face_count == 0)]
    usable_p = [float(e.p_fake) for e in aggregated]  # type: ignore[arg-type]  # usable implies not None

    def verdict(decision: Decision, reasons: Sequence[ReasonCode], score: float | None) -> Verdict:
        return Verdict(
            decision, _unique(reasons), score, frames_sampled, len(scored), frames_with_face, policy
        )

    if not scored and (failed_batches or failures or unusable):
        extra = [ReasonCode.UNUSABLE_SCORES] if unusable else []
        return verdict(Decision.ERROR, [*failures, *extra] or [ReasonCode.PIPELINE_ERROR], None)

    gates: list[ReasonCode] = []
    # Completeness: a frame counts as answered when it got a usable score or the model saw no face in it.
    answered = len(scored) - sum(1 for e in abstained if e.usable) + faceless_unscored
    if len(usable_p) < policy.min_frames_scored or answered < policy.min_scored_fraction * frames_sampled:
        gates.append(ReasonCode.INSUFFICIENT_FRAMES)
    if reported and with_face < policy.min_face_fraction * len(reported):
        gates.append(ReasonCode.NO_FACE)
    if reported and multi_face > policy.max_multi_face_fraction * len(reported):
        gates.append(ReasonCode.MULTIPLE_FACES)

    partial = bool(failed_batches or failures or unexplained or len(evidence) < frames_sampled)
    caveats = [ReasonCode.PARTIAL_SCORING] if partial else []
    if unusable:
        caveats.append(ReasonCode.UNUSABLE_SCORES)
    caveats.extend(failures)

    score = aggregate(policy.aggregator, usable_p, policy.aggregator_params) if usable_p else None
    if gates or score is None:
        return verdict(Decision.REVIEW, [*gates, *caveats] or [ReasonCode.INSUFFICIENT_FRAMES], score)
    if score >= policy.reject_threshold:
        return verdict(Decision.REJECT, [ReasonCode.HIGH_FAKE_SCORE, *caveats], score)
    if score >= policy.pass_threshold:
        return verdict(Decision.REVIEW, [ReasonCode.MODEL_UNCERTAIN, *caveats], score)
    if unusable or (partial and not policy.allow_pass_on_partial):
        return verdict(Decision.REVIEW, caveats, score)
    if scored_faces < policy.min_frames_scored:
        return verdict(Decision.REVIEW, [ReasonCode.NO_FACE_EVIDENCE, *caveats], score)
    if unchecked:  # frames no face check vouches for may make the decision stricter, never a PASS
        vouched = [float(e.p_fake) for e in aggregated if e.frame_id in seen]  # type: ignore[arg-type]
        if aggregate(policy.aggregator, vouched, policy.aggregator_params) >= policy.pass_threshold:
            return verdict(Decision.REVIEW, [ReasonCode.MODEL_UNCERTAIN, *caveats], score)
    return verdict(Decision.PASS, [ReasonCode.LOW_FAKE_SCORE, *caveats], score)


def apply_findings(verdict: Verdict, findings: Sequence[Finding]) -> Verdict:
    """Bound ``verdict`` by findings made beside the model; fail closed, so a finding only ever
    makes the decision stricter (never a PASS from a REVIEW) and its reason is always kept.

    INVALID media was never screened and stays INVALID. ERROR stays ERROR unless a ``REJECT``
    finding decides without the model. Reasons of the winning effect come first.
    """
    if not findings or verdict.decision == Decision.INVALID:
        return verdict
    strongest = {Effect.REJECT: 3, Effect.REVIEW: 2, Effect.NO_PASS: 1}
    ordered = sorted(findings, key=lambda f: -strongest[f.effect])
    top = ordered[0].effect
    decision = verdict.decision
    if top == Effect.REJECT:
        decision = Decision.REJECT
    elif decision == Decision.PASS or (top == Effect.REVIEW and decision == Decision.REJECT):
        decision = Decision.REVIEW
    if decision != verdict.decision and verdict.decision in (Decision.PASS, Decision.REJECT):
        # the score's own reason (LOW_/HIGH_FAKE_SCORE) no longer explains the outcome
        score_reasons = (ReasonCode.LOW_FAKE_SCORE, ReasonCode.HIGH_FAKE_SCORE)
        kept = [r for r in verdict.reasons if r not in score_reasons]
    else:
        kept = list(verdict.reasons)
    if top == Effect.REJECT:
        reasons = [*(f.reason for f in ordered), *kept]
    else:
        reasons = [*kept, *(f.reason for f in ordered)]
    return replace(verdict, decision=decision, reasons=_unique(reasons))
