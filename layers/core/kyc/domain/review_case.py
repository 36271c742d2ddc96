"""What a reviewer sees of a case, assembled from the decision record, its lineage and its scores document.

No AWS here: the handler fetches the three documents and passes them in. Raw per-frame scores stay on
the contact sheet (behind KMS and a short-lived link); this view carries face evidence, provenance,
reuse matches and the score band, and marks nothing as safe to render: every string from the
applicant's file stays a plain JSON string, and the workbench shows it as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kyc.domain.review import (
    CaseHistory,
    Lease,
    ReviewPolicy,
    approval_needed_for,
    score_band,
    timing,
)

# Fields of a scores document's per-frame face evidence that are scores: never copied into the case.
_SCORE_FIELDS = frozenset({"p_fake", "score", "scores", "logit", "logits"})
MAX_FACE_FRAMES = 256


def _without_scores(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_scores(v) for k, v in value.items() if k not in _SCORE_FIELDS}
    if isinstance(value, list):
        return [_without_scores(v) for v in value]
    return value


def face_frames(scores_doc: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The face stage's evidence per sampled frame (faces seen, gates), without any score."""
    evidence = (scores_doc or {}).get("face_evidence") or {}
    frames = evidence.get("frames") or []
    return [_without_scores(f) for f in frames[:MAX_FACE_FRAMES] if isinstance(f, Mapping)]


def reuse_matches(lineage_decision: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Earlier submissions this clip matched, each with the path of that earlier case in this API."""
    reuse = lineage_decision.get("reuse") or {}
    matches = reuse.get("matches") if isinstance(reuse, Mapping) else reuse
    out = []
    for match in matches or []:
        if not isinstance(match, Mapping):
            continue
        earlier = match.get("submission_id")
        out.append(
            _without_scores(dict(match))
            | {"review_link": f"/reviews/{earlier}" if isinstance(earlier, str) and earlier else None}
        )
    return out


def case_view(
    decision: Mapping[str, Any],
    *,
    lineage: Mapping[str, Any] | None,
    scores_doc: Mapping[str, Any] | None,
    history: CaseHistory,
    lease: Lease | None,
    contact_sheet: Mapping[str, str] | None,
    policy: ReviewPolicy,
    me: str,
    now: datetime,
) -> dict[str, Any]:
    lineage_decision = (lineage or {}).get("decision") or {}
    live = lease if lease is not None and not lease.expired(now) else None
    effective = history.effective
    return {
        "review_id": str(decision["submission_id"]),
        "decision": {
            "decision": str(decision["decision"]),
            "reasons": [str(r) for r in decision.get("reasons") or ()],
            "decided_at": str(decision["decided_at"]),
            **timing(decision, policy, now),
            "score_band": score_band(decision.get("score"), decision.get("policy")),
            "frames_sampled": decision.get("frames_sampled"),
            "frames_scored": decision.get("frames_scored"),
            "frames_with_face": decision.get("frames_with_face"),
        },
        "versions": {
            "model": decision.get("model"),
            "policy_version": (decision.get("policy") or {}).get("version"),
            "code_version": decision.get("code_version"),
        },
        "contact_sheet": dict(contact_sheet) if contact_sheet else None,
        "faces": face_frames(scores_doc),
        "provenance": lineage_decision.get("provenance"),
        "reuse": reuse_matches(lineage_decision),
        "client_reference": decision.get("client_reference"),
        "media": decision.get("media"),
        "state": history.state.value,
        "lease": live.to_public(me) if live else None,
        "requires_approval_for": approval_needed_for(decision, policy),
        "effective_verdict_id": effective.verdict_id if effective else None,
        "verdicts": history.to_list(),
    }


def screening_view(
    screening: Mapping[str, Any],
    *,
    submission_id: str | None,
    decision: Mapping[str, Any] | None,
    history: CaseHistory | None,
) -> dict[str, Any]:
    """What a client backend reads of its screening: status, decision, reasons, review outcome; no scores."""
    effective = history.effective if history else None
    status = "pending" if decision is None else "reviewed" if effective else "decided"
    review = None
    if effective is not None and history is not None:
        approval = history.approvals.get(effective.verdict_id)
        review = {
            "verdict": effective.verdict.value,
            "attack_type": effective.attack_type.value if effective.attack_type else None,
            "reviewed_at": approval.approved_at if approval else effective.recorded_at,
            "verdict_id": effective.verdict_id,
        }
    return {
        "screening_id": screening["screening_id"],
        "status": status,
        "created_at": screening["created_at"],
        "upload_received": submission_id is not None,
        "client_reference": screening.get("client_reference"),
        "submission_id": submission_id,
        "decision": (
            {
                "decision": str(decision["decision"]),
                "reasons": [str(r) for r in decision.get("reasons") or ()],
                "decided_at": str(decision["decided_at"]),
                "policy_version": (decision.get("policy") or {}).get("version"),
            }
            if decision
            else None
        ),
        "review": review,
    }
