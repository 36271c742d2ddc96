"""Quality-gate thresholds of the face stage: a part of the decision policy (``face_gates``).

Values are in the units the face stage records (Amazon Rekognition ``DetectFaces``): confidence,
brightness and sharpness 0..100, pose angles in degrees, face size as a fraction of the frame's short
side. Kept apart from ``kyc.domain.faces`` so the policy can validate them without importing the
findings that themselves import the policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from kyc.domain.aggregate import PolicyError

__all__ = ["FaceGates"]

_RANGES: dict[str, tuple[float, float]] = {
    "min_confidence": (0.0, 100.0),
    "min_face_side": (0.0, 1.0),
    "max_yaw_deg": (0.0, 180.0),
    "max_pitch_deg": (0.0, 180.0),
    "max_roll_deg": (0.0, 180.0),
    "min_brightness": (0.0, 100.0),
    "min_sharpness": (0.0, 100.0),
    "max_failing_fraction": (0.0, 1.0),
    "min_identity_similarity": (0.0, 1.0),
}


@dataclass(frozen=True)
class FaceGates:
    """When a face counts as evidence (docs/decision-policy.md, "Face gates").

    - a detection below ``min_confidence`` is not a face;
    - one face per frame, at least ``min_face_side`` of the frame's short side, turned no more than
      the pose limits, with brightness and sharpness at least the minimums;
    - a gate's reason is raised when more than ``max_failing_fraction`` of the checked frames fail it;
    - every two evidence frames must be at least ``min_identity_similarity`` alike (kyc.domain.identity;
      the default is drawn from measured same- and different-person similarities, docs/face-stage.md).
    """

    min_confidence: float = 90.0
    min_face_side: float = 0.15
    max_yaw_deg: float = 35.0
    max_pitch_deg: float = 30.0
    max_roll_deg: float = 30.0
    min_brightness: float = 20.0
    min_sharpness: float = 10.0
    max_failing_fraction: float = 0.25
    min_identity_similarity: float = 0.78

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PolicyError(f"face_gates.{name} must be a number in [{low}, {high}], got {value!r}")
            if not low <= value <= high:
                raise PolicyError(f"face_gates.{name} must be a number in [{low}, {high}], got {value!r}")
            object.__setattr__(self, name, float(value))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object] | None) -> FaceGates:
        """Missing keys keep their defaults; unknown keys are refused (a typo must not relax a gate)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PolicyError(f"face_gates must be an object, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            allowed = ", ".join(sorted(known))
            raise PolicyError(f"unknown face_gates keys: {', '.join(unknown)} (known: {allowed})")
        return cls(**data)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
