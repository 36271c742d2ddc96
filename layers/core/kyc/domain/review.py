"""Human review of automated decisions: who may do what, leases, verdicts, four-eyes, the labelled set.

No AWS here. The store (``kyc.aws.dynamodb_review_store``) writes what these functions decide with
conditional writes; the API handler (``functions/api``) only translates HTTP. The rules
(docs/review.md):

- The automated decision record is never changed. A verdict is a new, append-only record; a
  correction is another record that names the one it supersedes (the current head of the case's
  chain), so the records of a case form one chain ``v000001 <- v000002 <- ...``.
- One person works a case at a time: a lease, taken with a conditional write, that expires.
- Four-eyes: a verdict that would clear a REJECT-grade finding (``genuine`` on a REJECT decision or
  on a decision carrying a REJECT-grade reason), or any verdict on a case whose reasons the review
  policy marks high-risk, takes effect only when a second person of group ``approver`` approves it.
  Nobody approves their own verdict.
- People appear as pseudonymous reviewer ids (a keyed MAC of the Cognito ``sub``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from kyc.domain.digest import canonical_bytes
from kyc.domain.identity import MacFunction
from kyc.domain.reasons import ReasonCode


class ReviewErrorCode(StrEnum):
    """Stable codes of refused review requests (docs/openapi.yaml ``ErrorCode``)."""

    INVALID_BODY = "INVALID_BODY"
    INVALID_PARAMETER = "INVALID_PARAMETER"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    NOT_REVIEWABLE = "NOT_REVIEWABLE"
    LEASE_HELD = "LEASE_HELD"
    LEASE_REQUIRED = "LEASE_REQUIRED"
    INVALID_VERDICT = "INVALID_VERDICT"
    SUPERSEDES_MISMATCH = "SUPERSEDES_MISMATCH"
    VERDICT_CONFLICT = "VERDICT_CONFLICT"
    SELF_APPROVAL = "SELF_APPROVAL"
    APPROVAL_NOT_REQUIRED = "APPROVAL_NOT_REQUIRED"
    ALREADY_APPROVED = "ALREADY_APPROVED"
    SUPERSEDED = "SUPERSEDED"


# HTTP status of each refusal: the handler's one mapping.
ERROR_STATUS: dict[ReviewErrorCode, int] = {
    ReviewErrorCode.INVALID_BODY: 400,
    ReviewErrorCode.INVALID_PARAMETER: 400,
    ReviewErrorCode.INVALID_VERDICT: 400,
    ReviewErrorCode.FORBIDDEN: 403,
    ReviewErrorCode.SELF_APPROVAL: 403,
    ReviewErrorCode.NOT_FOUND: 404,
    ReviewErrorCode.NOT_REVIEWABLE: 409,
    ReviewErrorCode.LEASE_HELD: 409,
    ReviewErrorCode.LEASE_REQUIRED: 409,
    ReviewErrorCode.SUPERSEDES_MISMATCH: 409,
    ReviewErrorCode.VERDICT_CONFLICT: 409,
    ReviewErrorCode.APPROVAL_NOT_REQUIRED: 409,
    ReviewErrorCode.ALREADY_APPROVED: 409,
    ReviewErrorCode.SUPERSEDED: 409,
}


class ReviewError(Exception):
    """A review request the rules refuse; ``code`` is stable, ``details`` machine-readable context."""

    def __init__(self, code: ReviewErrorCode, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]


# ----------------------------------------------------------------------------------------- who may do what
class Group(StrEnum):
    REVIEWER = "reviewer"
    APPROVER = "approver"
    AUDITOR = "auditor"


class Permission(StrEnum):
    READ = "read"
    CLAIM = "claim"
    RECORD_VERDICT = "record_verdict"
    APPROVE = "approve"
    EXPORT = "export"


_GRANTS: dict[Group, frozenset[Permission]] = {
    Group.REVIEWER: frozenset({Permission.READ, Permission.CLAIM, Permission.RECORD_VERDICT}),
    Group.APPROVER: frozenset(
        {Permission.READ, Permission.CLAIM, Permission.RECORD_VERDICT, Permission.APPROVE, Permission.EXPORT}
    ),
    Group.AUDITOR: frozenset({Permission.READ, Permission.EXPORT}),  # reads everything, writes nothing
}


def parse_groups(raw: Any) -> tuple[str, ...]:
    """``cognito:groups`` as any carrier shapes it: a JSON list (a verified token), or the string API
    Gateway's Cognito authorizer puts in ``requestContext.authorizer.claims`` (``"a,b"`` or ``"[a b]"``)."""
    if raw is None:
        return ()
    if isinstance(raw, list | tuple):
        return tuple(str(g) for g in raw if str(g))
    text = str(raw).strip().strip("[]")
    return tuple(part for part in text.replace(",", " ").split() if part)


def permissions(groups: Iterable[str]) -> frozenset[Permission]:
    """What the token's groups allow; unknown groups grant nothing."""
    out: set[Permission] = set()
    for name in groups:
        if name in Group.__members__.values():
            out |= _GRANTS[Group(name)]
    return frozenset(out)


@dataclass(frozen=True)
class Caller:
    """A person as the API sees them: their pseudonymous id and what their groups allow."""

    reviewer_id: str
    groups: tuple[str, ...]

    @property
    def rights(self) -> frozenset[Permission]:
        return permissions(self.groups)

    def require(self, permission: Permission) -> None:
        if permission not in self.rights:
            raise ReviewError(
                ReviewErrorCode.FORBIDDEN,
                f"your groups ({', '.join(self.groups) or 'none'}) do not allow {permission.value}",
            )


REVIEWER_ID_PREFIX = "rv-"


def reviewer_id(subject: str, mac: MacFunction) -> str:
    """The pseudonymous id of a person: 64 bits of HMAC-SHA256 (KMS) over their Cognito ``sub``.

    Stable per person (four-eyes compares them), names nobody without the key and the user pool.
    """
    if not subject:
        raise ValueError("a token without a subject")
    return REVIEWER_ID_PREFIX + mac(b"reviewer\x00" + subject.encode("utf-8")).hex()[:16]


# ----------------------------------------------------------------------------------------- the verdicts
class VerdictLabel(StrEnum):
    GENUINE = "genuine"
    ATTACK = "attack"
    INCONCLUSIVE = "inconclusive"


class AttackType(StrEnum):
    """The fixed list of attack types a reviewer may name (issue 20; the learning loop groups by them)."""

    FACE_SWAP = "face_swap"
    REENACTMENT = "reenactment"
    FULLY_SYNTHETIC = "fully_synthetic"
    REPLAY_SCREEN = "replay_screen"
    MASK = "mask"
    INJECTED_STREAM = "injected_stream"
    OTHER = "other"


class VerdictStatus(StrEnum):
    EFFECTIVE = "effective"
    AWAITING_APPROVAL = "awaiting_approval"
    SUPERSEDED = "superseded"


class CaseState(StrEnum):
    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"
    REVIEWED = "reviewed"


# Decisions a person can judge: the media was screened. INVALID and ERROR carry no judgement of a face.
REVIEWABLE_DECISIONS = frozenset({"REVIEW", "REJECT", "PASS"})
# Reasons that on their own make a decision REJECT: a genuine verdict on them clears a REJECT-grade finding.
REJECT_GRADE_REASONS = frozenset({ReasonCode.HIGH_FAKE_SCORE, ReasonCode.DECLARED_SYNTHETIC})
MAX_REASON_CHARS = 2000
MIN_REASON_CHARS = 3
VERDICT_ID_WIDTH = 6


def verdict_id(sequence: int) -> str:
    return f"v{sequence:0{VERDICT_ID_WIDTH}d}"


def verdict_sequence(vid: str) -> int:
    if len(vid) != VERDICT_ID_WIDTH + 1 or not vid.startswith("v") or not vid[1:].isdigit():
        raise ReviewError(ReviewErrorCode.INVALID_PARAMETER, "a verdict id is v followed by six digits")
    return int(vid[1:])


@dataclass(frozen=True)
class ReviewPolicy:
    """The review rules a deployment sets (template parameters ``ReviewDeadlineHours``,
    ``ReviewLeaseSeconds``, ``ReviewHighRiskReasons``)."""

    deadline: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(minutes=15)
    high_risk_reasons: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, deadline_hours: float, lease_seconds: int, high_risk: str) -> ReviewPolicy:
        reasons = frozenset(r.strip() for r in high_risk.split(",") if r.strip())
        unknown = sorted(r for r in reasons if r not in ReasonCode.__members__)
        if unknown:
            raise ValueError(f"unknown reason codes in the high-risk list: {', '.join(unknown)}")
        if deadline_hours <= 0 or lease_seconds < 60:
            raise ValueError("the review deadline must be positive and a lease at least 60 s")
        return cls(timedelta(hours=deadline_hours), timedelta(seconds=lease_seconds), reasons)


@dataclass(frozen=True)
class VerdictRequest:
    verdict: VerdictLabel
    attack_type: AttackType | None
    reason: str
    supersedes: str | None

    @classmethod
    def parse(cls, body: Any) -> VerdictRequest:
        """The request body, refused with INVALID_BODY (shape) or INVALID_VERDICT (the rules)."""
        if not isinstance(body, dict):
            raise ReviewError(ReviewErrorCode.INVALID_BODY, "the body must be a JSON object")
        extra = sorted(set(body) - {"verdict", "attack_type", "reason", "supersedes"})
        if extra:
            raise ReviewError(ReviewErrorCode.INVALID_BODY, f"unknown fields: {', '.join(extra)}")
        label = body.get("verdict")
        if label not in VerdictLabel.__members__.values():
            raise ReviewError(
                ReviewErrorCode.INVALID_VERDICT, "verdict must be genuine, attack or inconclusive"
            )
        attack = body.get("attack_type")
        if label == VerdictLabel.ATTACK:
            if attack not in AttackType.__members__.values():
                raise ReviewError(
                    ReviewErrorCode.INVALID_VERDICT,
                    f"an attack verdict names its type: one of {', '.join(a.value for a in AttackType)}",
                )
        elif attack is not None:
            raise ReviewError(
                ReviewErrorCode.INVALID_VERDICT, "only an attack verdict carries an attack_type"
            )
        reason = body.get("reason")
        if not isinstance(reason, str) or not MIN_REASON_CHARS <= len(reason.strip()) <= MAX_REASON_CHARS:
            raise ReviewError(
                ReviewErrorCode.INVALID_VERDICT,
                f"reason is required text of {MIN_REASON_CHARS}..{MAX_REASON_CHARS} characters",
            )
        supersedes = body.get("supersedes")
        if supersedes is not None:
            if not isinstance(supersedes, str):
                raise ReviewError(ReviewErrorCode.INVALID_BODY, "supersedes must be a verdict id")
            verdict_sequence(supersedes)
        return cls(
            verdict=VerdictLabel(label),
            attack_type=AttackType(attack) if attack is not None else None,
            reason=reason.strip(),
            supersedes=supersedes,
        )


@dataclass(frozen=True)
class VerdictRecord:
    """One append-only verdict record (the store writes it once, never updates it)."""

    review_id: str
    verdict_id: str
    verdict: VerdictLabel
    attack_type: AttackType | None
    reason: str
    reviewer_id: str
    recorded_at: str
    supersedes: str | None
    requires_approval: bool

    def to_item(self) -> dict[str, Any]:
        return {
            "review_id": self.review_id,
            "verdict_id": self.verdict_id,
            "verdict": self.verdict.value,
            "attack_type": self.attack_type.value if self.attack_type else None,
            "reason": self.reason,
            "reviewer_id": self.reviewer_id,
            "recorded_at": self.recorded_at,
            "supersedes": self.supersedes,
            "requires_approval": self.requires_approval,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> VerdictRecord:
        return cls(
            review_id=str(item["review_id"]),
            verdict_id=str(item["verdict_id"]),
            verdict=VerdictLabel(item["verdict"]),
            attack_type=AttackType(item["attack_type"]) if item.get("attack_type") else None,
            reason=str(item.get("reason") or ""),
            reviewer_id=str(item["reviewer_id"]),
            recorded_at=str(item["recorded_at"]),
            supersedes=item.get("supersedes") or None,
            requires_approval=bool(item.get("requires_approval")),
        )


@dataclass(frozen=True)
class ApprovalRecord:
    """The second person's confirmation of one verdict (append-only, at most one per verdict)."""

    review_id: str
    verdict_id: str
    approver_id: str
    approved_at: str
    note: str | None = None

    def to_item(self) -> dict[str, Any]:
        return {
            "review_id": self.review_id,
            "verdict_id": self.verdict_id,
            "approver_id": self.approver_id,
            "approved_at": self.approved_at,
            "note": self.note,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ApprovalRecord:
        return cls(
            review_id=str(item["review_id"]),
            verdict_id=str(item["verdict_id"]),
            approver_id=str(item["approver_id"]),
            approved_at=str(item["approved_at"]),
            note=item.get("note") or None,
        )


def requires_approval(verdict: VerdictLabel, decision: Mapping[str, Any], policy: ReviewPolicy) -> bool:
    """Four-eyes: does this verdict on this automated decision need a second person (an approver)?"""
    reasons = {str(r) for r in decision.get("reasons") or ()}
    if reasons & policy.high_risk_reasons:
        return True
    clears_reject = decision.get("decision") == "REJECT" or bool(reasons & REJECT_GRADE_REASONS)
    return verdict == VerdictLabel.GENUINE and clears_reject


def approval_needed_for(decision: Mapping[str, Any], policy: ReviewPolicy) -> list[str]:
    """The verdicts that would need an approver on this case (shown before a reviewer decides)."""
    return [label.value for label in VerdictLabel if requires_approval(label, decision, policy)]


@dataclass(frozen=True)
class CaseHistory:
    """A case's verdict chain and approvals, and what follows from them."""

    verdicts: tuple[VerdictRecord, ...] = ()
    approvals: Mapping[str, ApprovalRecord] = field(default_factory=dict)

    @classmethod
    def of(cls, verdicts: Iterable[VerdictRecord], approvals: Iterable[ApprovalRecord]) -> CaseHistory:
        ordered = tuple(sorted(verdicts, key=lambda v: verdict_sequence(v.verdict_id)))
        return cls(ordered, {a.verdict_id: a for a in approvals})

    @property
    def head(self) -> VerdictRecord | None:
        return self.verdicts[-1] if self.verdicts else None

    def next_verdict_id(self) -> str:
        return verdict_id(verdict_sequence(self.head.verdict_id) + 1 if self.head else 1)

    def _complete(self, record: VerdictRecord) -> bool:
        return not record.requires_approval or record.verdict_id in self.approvals

    @property
    def effective(self) -> VerdictRecord | None:
        """The latest verdict that has taken effect (no approval needed, or approved)."""
        for record in reversed(self.verdicts):
            if self._complete(record):
                return record
        return None

    def status(self, record: VerdictRecord) -> VerdictStatus:
        effective = self.effective
        if effective is not None and record.verdict_id == effective.verdict_id:
            return VerdictStatus.EFFECTIVE
        if self.head is not None and record.verdict_id == self.head.verdict_id:
            return VerdictStatus.AWAITING_APPROVAL  # the head, not complete
        return VerdictStatus.SUPERSEDED

    @property
    def state(self) -> CaseState:
        head = self.head
        if head is not None and not self._complete(head):
            return CaseState.AWAITING_APPROVAL
        return CaseState.REVIEWED if self.effective else CaseState.OPEN

    def people(self) -> set[str]:
        """Everyone who recorded or approved a verdict on the case."""
        return {v.reviewer_id for v in self.verdicts} | {a.approver_id for a in self.approvals.values()}

    def to_list(self) -> list[dict[str, Any]]:
        out = []
        for record in self.verdicts:
            approval = self.approvals.get(record.verdict_id)
            item = record.to_item()
            item["approval"] = (
                {
                    "approver_id": approval.approver_id,
                    "approved_at": approval.approved_at,
                    "note": approval.note,
                }
                if approval
                else None
            )
            item["status"] = self.status(record).value
            out.append(item)
        return out


def plan_verdict(
    request: VerdictRequest,
    *,
    review_id: str,
    decision: Mapping[str, Any],
    history: CaseHistory,
    caller: Caller,
    lease: Lease | None,
    policy: ReviewPolicy,
    now: datetime,
) -> VerdictRecord:
    """The record a verdict request becomes, or the rule it breaks. The store appends it with a
    conditional write on its id, so two writers of the same next id cannot both succeed."""
    caller.require(Permission.RECORD_VERDICT)
    require_reviewable(decision)
    if lease is None or not lease.held_by(caller.reviewer_id, now):
        raise ReviewError(ReviewErrorCode.LEASE_REQUIRED, "claim the case before recording a verdict")
    head = history.head
    if head is not None and request.supersedes != head.verdict_id:
        raise ReviewError(
            ReviewErrorCode.SUPERSEDES_MISMATCH,
            f"the case already has verdict {head.verdict_id}: a correction names it in supersedes",
            {"current": head.verdict_id},
        )
    if head is None and request.supersedes is not None:
        raise ReviewError(ReviewErrorCode.SUPERSEDES_MISMATCH, "the case has no verdict to supersede")
    return VerdictRecord(
        review_id=review_id,
        verdict_id=history.next_verdict_id(),
        verdict=request.verdict,
        attack_type=request.attack_type,
        reason=request.reason,
        reviewer_id=caller.reviewer_id,
        recorded_at=iso(now),
        supersedes=request.supersedes,
        requires_approval=requires_approval(request.verdict, decision, policy),
    )


def plan_approval(
    vid: str, *, history: CaseHistory, caller: Caller, note: str | None, now: datetime
) -> ApprovalRecord:
    """The four-eyes confirmation, or why it is refused: only an approver, never the verdict's author,
    only the chain's head, only once."""
    caller.require(Permission.APPROVE)
    record = next((v for v in history.verdicts if v.verdict_id == vid), None)
    if record is None:
        raise ReviewError(ReviewErrorCode.NOT_FOUND, f"no verdict {vid} on this case")
    if record.reviewer_id == caller.reviewer_id:
        raise ReviewError(ReviewErrorCode.SELF_APPROVAL, "nobody can approve their own verdict")
    if not record.requires_approval:
        raise ReviewError(
            ReviewErrorCode.APPROVAL_NOT_REQUIRED, f"verdict {vid} took effect without approval"
        )
    if vid in history.approvals:
        raise ReviewError(ReviewErrorCode.ALREADY_APPROVED, f"verdict {vid} is already approved")
    if history.head is None or history.head.verdict_id != vid:
        raise ReviewError(ReviewErrorCode.SUPERSEDED, f"verdict {vid} was superseded before approval")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_REASON_CHARS):
        raise ReviewError(
            ReviewErrorCode.INVALID_BODY, f"note is text of at most {MAX_REASON_CHARS} characters"
        )
    return ApprovalRecord(
        review_id=record.review_id,
        verdict_id=vid,
        approver_id=caller.reviewer_id,
        approved_at=iso(now),
        note=note,
    )


def evidence_key(review_id: str, kind: str, vid: str) -> str:
    """Where a verdict's or an approval's write-once document lives in the audit bucket: beside the
    decision's own evidence, so it is kept (and locked) exactly as long."""
    return f"decisions/{review_id}/reviews/{kind}-{vid}.json"


def evidence_document(kind: str, item: Mapping[str, Any]) -> bytes:
    """The record as its audit document: canonical JSON, so its hash can be recomputed by anyone."""
    return canonical_bytes({"record_kind": kind, **item})


def require_reviewable(decision: Mapping[str, Any]) -> None:
    if decision.get("erased_at"):
        raise ReviewError(
            ReviewErrorCode.NOT_REVIEWABLE, "the case was erased (GDPR Art. 17): there is nothing to review"
        )
    if decision.get("decision") not in REVIEWABLE_DECISIONS:
        raise ReviewError(
            ReviewErrorCode.NOT_REVIEWABLE,
            f"a {decision.get('decision')} decision judged no media: there is nothing to review",
        )


# ----------------------------------------------------------------------------------------- leases
@dataclass(frozen=True)
class Lease:
    """Who works a case until when. Taken by a conditional write: free, expired, or already the caller's."""

    review_id: str
    holder: str
    acquired_at: str
    expires_at: str

    def held_by(self, who: str, now: datetime) -> bool:
        return self.holder == who and not self.expired(now)

    def expired(self, now: datetime) -> bool:
        return parse_iso(self.expires_at) <= now

    def to_public(self, me: str) -> dict[str, Any]:
        return {
            "review_id": self.review_id,
            "holder": self.holder,
            "acquired_at": self.acquired_at,
            "expires_at": self.expires_at,
            "held_by_me": self.holder == me,
        }


def plan_lease(
    review_id: str, *, current: Lease | None, caller: Caller, policy: ReviewPolicy, now: datetime
) -> Lease:
    """The lease the caller gets (a renewal keeps ``acquired_at``), or LEASE_HELD naming the holder."""
    caller.require(Permission.CLAIM)
    if current is not None and not current.expired(now) and current.holder != caller.reviewer_id:
        raise ReviewError(
            ReviewErrorCode.LEASE_HELD,
            "another reviewer holds this case",
            {"holder": current.holder, "expires_at": current.expires_at},
        )
    renewing = current is not None and current.holder == caller.reviewer_id and not current.expired(now)
    return Lease(
        review_id=review_id,
        holder=caller.reviewer_id,
        acquired_at=current.acquired_at if renewing and current else iso(now),
        expires_at=iso(now + policy.lease),
    )


# ----------------------------------------------------------------------------------------- the queue
def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def score_band(score: Any, policy: Mapping[str, Any] | None) -> str:
    """Where the score fell against the recorded thresholds: the only form a score takes in the API."""
    thresholds = policy or {}
    if (
        score is None
        or thresholds.get("pass_threshold") is None
        or thresholds.get("reject_threshold") is None
    ):
        return "unscored"
    value = float(score)
    if value < float(thresholds["pass_threshold"]):
        return "below_pass"
    if value >= float(thresholds["reject_threshold"]):
        return "at_or_above_reject"
    return "between"


def timing(decision: Mapping[str, Any], policy: ReviewPolicy, now: datetime) -> dict[str, Any]:
    decided = parse_iso(str(decision["decided_at"]))
    deadline = decided + policy.deadline
    return {
        "age_seconds": max(0, int((now - decided).total_seconds())),
        "deadline_at": iso(deadline),
        "overdue": now >= deadline,
    }


def queue_item(
    decision: Mapping[str, Any],
    history: CaseHistory,
    lease: Lease | None,
    *,
    policy: ReviewPolicy,
    me: str,
    now: datetime,
) -> dict[str, Any]:
    live = lease if lease is not None and not lease.expired(now) else None
    return {
        "review_id": str(decision["submission_id"]),
        "decision": str(decision["decision"]),
        "reasons": [str(r) for r in decision.get("reasons") or ()],
        "decided_at": str(decision["decided_at"]),
        **timing(decision, policy, now),
        "state": history.state.value,
        "score_band": score_band(decision.get("score"), decision.get("policy")),
        "lease": live.to_public(me) if live else None,
    }


def in_queue(
    decision: Mapping[str, Any], history: CaseHistory, *, reasons: Sequence[str], state: str
) -> bool:
    """The queue's filters: any of ``reasons`` (none: all), and the case state (``all``: any). An erased
    case is never in the queue: its media is gone, nobody can judge it any more."""
    if decision.get("erased_at"):
        return False
    if reasons and not set(reasons) & {str(r) for r in decision.get("reasons") or ()}:
        return False
    return state == "all" or history.state.value == state


# ----------------------------------------------------------------------------------------- events, export
def reviewed_event_detail(decision: Mapping[str, Any], history: CaseHistory) -> dict[str, Any] | None:
    """``Screening Reviewed``: ids, the automated decision and the effective verdict; no reason text and
    no reviewer ids (they stay in the review API), never scores. ``event_id`` lets consumers drop copies."""
    effective = history.effective
    if effective is None:
        return None
    return {
        "event_id": f"{decision['submission_id']}:{effective.verdict_id}",
        "submission_id": decision["submission_id"],
        "client_reference": decision.get("client_reference"),
        "decision": decision.get("decision"),
        "reasons": list(decision.get("reasons") or []),
        "verdict": effective.verdict.value,
        "attack_type": effective.attack_type.value if effective.attack_type else None,
        "verdict_id": effective.verdict_id,
        "supersedes": effective.supersedes,
        "reviewed_at": effective_time(history) or effective.recorded_at,
    }


def effective_time(history: CaseHistory) -> str | None:
    """When the effective verdict took effect: its approval's time, or its own."""
    effective = history.effective
    if effective is None:
        return None
    approval = history.approvals.get(effective.verdict_id)
    return approval.approved_at if approval else effective.recorded_at


# The labelled set's columns, in order (docs/review.md). `kycscreen evaluate --media DIR` reads it.
EXPORT_COLUMNS = (
    "sha256",
    "label",
    "attack_type",
    "reviewer_count",
    "reviewed_at",
    "submission_id",
    "verdict_id",
    "decision",
    "policy_version",
    "model_version",
)


def export_row(decision: Mapping[str, Any], history: CaseHistory) -> dict[str, Any] | None:
    """One labelled row per case whose effective verdict is genuine or attack and whose bytes are known.
    None for an erased case: the applicant asked to be forgotten, their clip leaves the training set."""
    if decision.get("erased_at"):
        return None
    effective = history.effective
    sha = ((decision.get("source") or {}).get("sha256")) or None
    if effective is None or effective.verdict == VerdictLabel.INCONCLUSIVE or not sha:
        return None
    model = decision.get("model") or {}
    return {
        "sha256": str(sha),
        "label": effective.verdict.value,
        "attack_type": effective.attack_type.value if effective.attack_type else None,
        "reviewer_count": len(history.people()),
        "reviewed_at": effective_time(history),
        "submission_id": str(decision["submission_id"]),
        "verdict_id": effective.verdict_id,
        "decision": str(decision.get("decision")),
        "policy_version": (decision.get("policy") or {}).get("version"),
        "model_version": model.get("version") or model.get("name") if isinstance(model, Mapping) else None,
    }


def export_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The rows as CSV (header first); empty cells for None. No cell is read as a spreadsheet formula:
    a text value starting with = + - @ (a policy or model version is the operator's text) gets a
    leading apostrophe."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in EXPORT_COLUMNS})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
