"""Face evidence beside the model: per-frame observations, quality gates, and the findings they raise.

The face stage (functions/faces) records what a face detector independent of the customer's model
saw in each checked frame: Amazon Rekognition ``DetectFaces`` in AWS, a compatible local detector
otherwise. Here those observations meet the policy's ``face_gates`` (kyc.domain.face_gates). Pure
Python: no AWS calls, no numpy, so decide can run it and tests can drive it directly.

A frame is *face evidence* when exactly one confident face passes every gate. PASS needs at least
the policy's ``min_frames_scored`` such frames that the model also scored
(``kyc.domain.policy.decide_outcome``); each gate failed on more than ``max_failing_fraction`` of the
checked frames adds its reason with ``Effect.NO_PASS`` (docs/decision-policy.md, "Face gates").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kyc.domain.face_gates import FaceGates
from kyc.domain.policy import DecisionPolicy, Effect, Finding
from kyc.domain.reasons import ReasonCode

__all__ = [
    "FaceEvidenceError",
    "FaceObservation",
    "FrameAssessment",
    "FrameFaces",
    "assess_frame",
    "face_findings",
    "frame_faces_from_dict",
    "frames_to_check",
]

# Gates in the order their reasons are recorded.
QUALITY_REASONS = (
    ReasonCode.FACE_TOO_SMALL,
    ReasonCode.FACE_POSE,
    ReasonCode.FACE_TOO_DARK,
    ReasonCode.FACE_BLURRED,
)


class FaceEvidenceError(ValueError):
    """The face evidence document is malformed: a pipeline fault, never read as "no face"."""


@dataclass(frozen=True)
class FaceObservation:
    """One detected face, in DetectFaces units: box as ratios of the image, confidence, brightness
    and sharpness 0..100, pose in degrees."""

    left: float
    top: float
    width: float
    height: float
    confidence: float
    yaw: float
    pitch: float
    roll: float
    brightness: float
    sharpness: float


@dataclass(frozen=True)
class FrameFaces:
    """What the face stage saw in one frame (``error``: the detector refused the image, by code)."""

    frame_id: str
    image_width: int
    image_height: int
    faces: tuple[FaceObservation, ...]
    error: str | None = None


@dataclass(frozen=True)
class FrameAssessment:
    frame_id: str
    face_count: int  # confident faces only
    issues: tuple[ReasonCode, ...]

    @property
    def evidence(self) -> bool:
        return not self.issues


def _number(raw: Mapping[str, Any], key: str) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaceEvidenceError(f"face field {key} must be a finite number, got {value!r}")
    return float(value)


def frame_faces_from_dict(raw: Mapping[str, Any]) -> FrameFaces:
    """One frame of the evidence document (as functions/faces writes it), checked."""
    try:
        faces = tuple(
            FaceObservation(
                left=_number(f["box"], "left"),
                top=_number(f["box"], "top"),
                width=_number(f["box"], "width"),
                height=_number(f["box"], "height"),
                confidence=_number(f, "confidence"),
                yaw=_number(f["pose"], "yaw"),
                pitch=_number(f["pose"], "pitch"),
                roll=_number(f["pose"], "roll"),
                brightness=_number(f, "brightness"),
                sharpness=_number(f, "sharpness"),
            )
            for f in raw["faces"]
        )
        width, height = int(raw["image_width"]), int(raw["image_height"])
        frame_id = str(raw["frame_id"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FaceEvidenceError):
            raise
        raise FaceEvidenceError(f"malformed face evidence frame: {exc!r}") from exc
    if width <= 0 or height <= 0:
        raise FaceEvidenceError(f"frame {frame_id}: image size {width}x{height}")
    return FrameFaces(frame_id, width, height, faces, raw.get("error"))


def assess_frame(frame: FrameFaces, gates: FaceGates) -> FrameAssessment:
    """Which gates one frame fails. A refused image is a frame without a face."""
    confident = [f for f in frame.faces if f.confidence >= gates.min_confidence]
    if frame.error is not None or not confident:
        return FrameAssessment(frame.frame_id, 0, (ReasonCode.NO_FACE,))
    if len(confident) > 1:
        return FrameAssessment(frame.frame_id, len(confident), (ReasonCode.MULTIPLE_FACES,))
    face = confident[0]
    issues: list[ReasonCode] = []
    # The face's shorter side in pixels against the frame's shorter side: orientation-independent.
    face_side = min(face.width * frame.image_width, face.height * frame.image_height)
    if face_side < gates.min_face_side * min(frame.image_width, frame.image_height):
        issues.append(ReasonCode.FACE_TOO_SMALL)
    if (
        abs(face.yaw) > gates.max_yaw_deg
        or abs(face.pitch) > gates.max_pitch_deg
        or abs(face.roll) > gates.max_roll_deg
    ):
        issues.append(ReasonCode.FACE_POSE)
    if face.brightness < gates.min_brightness:
        issues.append(ReasonCode.FACE_TOO_DARK)
    if face.sharpness < gates.min_sharpness:
        issues.append(ReasonCode.FACE_BLURRED)
    return FrameAssessment(frame.frame_id, 1, tuple(issues))


def face_findings(assessments: Sequence[FrameAssessment], policy: DecisionPolicy) -> list[Finding]:
    """Clip-level findings: a gate's reason when too many checked frames fail it (``NO_PASS``).

    NO_FACE and MULTIPLE_FACES use the policy's ``min_face_fraction`` and
    ``max_multi_face_fraction`` (the same limits as for the model's reported faces); the quality
    gates use ``face_gates.max_failing_fraction``. No frame checked at all is ``NO_FACE_EVIDENCE``.
    """
    if not assessments:
        return [Finding(ReasonCode.NO_FACE_EVIDENCE, Effect.NO_PASS)]
    checked = len(assessments)
    gates = FaceGates.from_mapping(policy.face_gates)

    def share(reason: ReasonCode) -> float:
        return sum(1 for a in assessments if reason in a.issues) / checked

    found: list[Finding] = []
    if share(ReasonCode.NO_FACE) > 1.0 - policy.min_face_fraction:
        found.append(Finding(ReasonCode.NO_FACE, Effect.NO_PASS))
    if share(ReasonCode.MULTIPLE_FACES) > policy.max_multi_face_fraction:
        found.append(Finding(ReasonCode.MULTIPLE_FACES, Effect.NO_PASS))
    found.extend(
        Finding(reason, Effect.NO_PASS)
        for reason in QUALITY_REASONS
        if share(reason) > gates.max_failing_fraction
    )
    return found


def frames_to_check(total: int, wanted: int) -> list[int]:
    """Positions of the sampled frames the face stage checks: all (``wanted`` 0 or >= total), or
    ``wanted`` spread evenly over the timeline, first and last included."""
    if total <= 0:
        return []
    if wanted <= 0 or wanted >= total:
        return list(range(total))
    if wanted == 1:
        return [total // 2]
    return sorted({round(i * (total - 1) / (wanted - 1)) for i in range(wanted)})
