"""One person throughout: the face stage's similarities between frames, read against the policy.

The face stage (functions/faces, kyc.media.face_identity) records, for the frames where it saw exactly
one face, the pairwise similarity of their identity descriptors (0..1). Here only the frames that
are face evidence (one face passing every gate) count: when the two least alike of them are below
``face_gates.min_identity_similarity`` the person changed, and every evidence frame is put on the side
of whichever of those two it resembles more, so a reviewer sees where the cut is. Pure Python.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from kyc.domain.faces import FaceEvidenceError
from kyc.domain.policy import Effect, Finding
from kyc.domain.reasons import ReasonCode

__all__ = ["IdentityCheck", "identity_check"]


@dataclass(frozen=True)
class IdentityCheck:
    threshold: float
    frames: tuple[str, ...] = ()  # the evidence frames compared
    min_similarity: float | None = None
    least_alike: tuple[str, str] | None = None
    sides: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # set when the person changed
    method: str | None = None
    findings: tuple[Finding, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return self.sides is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "threshold": self.threshold,
            "frames_compared": list(self.frames),
            "min_similarity": self.min_similarity,
            "least_alike": list(self.least_alike) if self.least_alike else None,
            "changed": self.changed,
            "side_a": list(self.sides[0]) if self.sides else None,
            "side_b": list(self.sides[1]) if self.sides else None,
        }


def _matrix(raw: Mapping[str, Any]) -> tuple[list[str], list[list[float]]]:
    try:
        ids = [str(f) for f in raw["frames"]]
        rows = [[float(v) for v in row] for row in raw["similarity"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise FaceEvidenceError(f"malformed identity evidence: {exc!r}") from exc
    if len(rows) != len(ids) or any(len(row) != len(ids) for row in rows) or len(set(ids)) != len(ids):
        raise FaceEvidenceError("identity similarity must be a square matrix over distinct frames")
    if any(not math.isfinite(v) or not 0.0 <= v <= 1.0 for row in rows for v in row):
        raise FaceEvidenceError("identity similarities must be numbers in [0, 1]")
    return ids, rows


def identity_check(
    raw: Mapping[str, Any] | None, evidence: Collection[str], threshold: float
) -> IdentityCheck:
    """Compare the evidence frames with each other. No identity record at all (a document written
    before the check existed) is ``NO_FACE_EVIDENCE``: one person throughout was not shown."""
    if raw is None:
        return IdentityCheck(threshold, findings=(Finding(ReasonCode.NO_FACE_EVIDENCE, Effect.NO_PASS),))
    ids, rows = _matrix(raw)
    keep = [i for i, frame in enumerate(ids) if frame in evidence]
    method = str(raw.get("method")) if raw.get("method") else None
    if set(evidence) - set(ids):  # an evidence frame the check could not describe: one person unshown
        unverified = Finding(ReasonCode.NO_FACE_EVIDENCE, Effect.NO_PASS)
        return IdentityCheck(threshold, tuple(ids[i] for i in keep), method=method, findings=(unverified,))
    frames = tuple(ids[i] for i in keep)
    if len(keep) < 2:
        return IdentityCheck(threshold, frames, method=method)
    low, a, b = min((rows[i][j], i, j) for n, i in enumerate(keep) for j in keep[n + 1 :])
    least = (ids[a], ids[b])
    if low >= threshold:
        return IdentityCheck(threshold, frames, low, least, method=method)
    side_a = tuple(ids[k] for k in keep if rows[k][a] >= rows[k][b])
    side_b = tuple(ids[k] for k in keep if rows[k][a] < rows[k][b])
    finding = Finding(ReasonCode.IDENTITY_CHANGED, Effect.NO_PASS)
    return IdentityCheck(threshold, frames, low, least, (side_a, side_b), method, (finding,))


def sheet_lines(identity: Mapping[str, Any] | None) -> list[str]:
    """What a reviewer's contact sheet says when the person changed (nothing otherwise): the frames
    on each side, also marked A or B under each thumbnail (kyc.media.contact_sheet)."""
    if not identity or not identity.get("changed"):
        return []
    side_a = " ".join(str(f) for f in identity.get("side_a") or [])
    side_b = " ".join(str(f) for f in identity.get("side_b") or [])
    low, threshold = identity.get("min_similarity"), identity.get("threshold")
    return [
        f"person changed: similarity {low:.2f} under {threshold:.2f}",
        f"person A frames {side_a}, person B frames {side_b}",
    ]


def frame_sides(identity: Mapping[str, Any] | None) -> dict[str, str]:
    """Frame id -> "A" or "B" when the person changed; empty otherwise."""
    if not identity or not identity.get("changed"):
        return {}
    return {str(f): "A" for f in identity.get("side_a") or []} | {
        str(f): "B" for f in identity.get("side_b") or []
    }
