"""The decision record: what is stored per submission and what is told downstream.

The DynamoDB item holds the decision and its provenance; per-frame scores live in the audit
bucket. The downstream event carries ids, decision and reasons, never raw scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kyc.domain.outcomes import Decision
from kyc.domain.reasons import ReasonCode

RECORD_VERSION = "1"


def contact_sheet_key(submission_id: str) -> str:
    """Where a REVIEW's contact sheet lives in the review bucket: never in the write-once audit
    bucket, because it shows the applicant's face and must go on erasure and on its own expiry."""
    return f"reviews/{submission_id}/contact-sheet.png"


@dataclass(frozen=True)
class DecisionSummary:
    """The outcome of one submission, whichever path produced it."""

    decision: Decision
    reasons: tuple[ReasonCode, ...]
    score: float | None = None
    frames_sampled: int = 0
    frames_scored: int = 0
    frames_with_face: int | None = None
    policy: Mapping[str, Any] | None = None
    model: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DecisionContext:
    """Where the decision came from: the source object, the media, the run."""

    submission: Mapping[str, Any]
    execution_arn: str | None
    recorded_by: str
    validation: Mapping[str, Any] | None = None
    artefacts: Mapping[str, str] = field(default_factory=dict)
    code_version: Mapping[str, str] = field(default_factory=dict)


def build_decision_item(
    summary: DecisionSummary, context: DecisionContext, *, now: datetime, retention_days: int
) -> dict[str, Any]:
    """The one DynamoDB item of a submission (its TTL is the decision's retention)."""
    sub = context.submission
    validation = context.validation or {}
    return {
        "submission_id": sub["submission_id"],
        "record_version": RECORD_VERSION,
        "decision": str(summary.decision),
        "reasons": [str(r) for r in summary.reasons],
        "score": summary.score,
        "policy": dict(summary.policy) if summary.policy else None,
        "model": dict(summary.model) if summary.model else None,
        "frames_sampled": summary.frames_sampled,
        "frames_scored": summary.frames_scored,
        "frames_with_face": summary.frames_with_face,
        "source": {
            "bucket": sub.get("bucket"),
            "key": sub.get("key"),
            "version_id": sub.get("version_id"),
            "etag": sub.get("etag"),
            "size": validation.get("size", sub.get("size")),
            "sha256": validation.get("sha256") or None,
        },
        "media": validation.get("media"),
        "client_reference": sub.get("client_reference") or None,
        "execution_arn": context.execution_arn,
        "received_at": sub.get("received_at"),
        "decided_at": now.astimezone(UTC).isoformat(timespec="milliseconds"),
        "expires_at": int((now + timedelta(days=retention_days)).timestamp()),
        "artefacts": dict(context.artefacts) or None,
        "code_version": dict(context.code_version) or None,
        "recorded_by": context.recorded_by,
    }


def decision_event_detail(item: Mapping[str, Any]) -> dict[str, Any]:
    """What downstream systems learn: ids, decision and reasons; raw scores stay with reviewers.

    ``event_id`` is the submission id: one decision per submission, so a consumer that sees the
    same ``event_id`` twice (EventBridge delivers at least once) drops the copy.
    """
    return {
        "event_id": item["submission_id"],
        "submission_id": item["submission_id"],
        "client_reference": item.get("client_reference"),
        "decision": item["decision"],
        "reasons": list(item.get("reasons") or []),
        "policy_version": (item.get("policy") or {}).get("version"),
        "decided_at": item.get("decided_at"),
    }


def reasons_from(codes: Sequence[str | None]) -> tuple[ReasonCode, ...]:
    """Known codes in order, without duplicates; unknown strings become PIPELINE_ERROR."""
    out: list[ReasonCode] = []
    for code in codes:
        if not code:
            continue
        reason = ReasonCode(code) if code in ReasonCode.__members__ else ReasonCode.PIPELINE_ERROR
        if reason not in out:
            out.append(reason)
    return tuple(out)
