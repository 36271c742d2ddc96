"""What the scheduled verifier checks each run, and what it calls a finding (issue 23 item 6).

Two checks, the same code as the auditor's commands: every signed digest with its chain and every
version of every audit object (``kyc.domain.digest.verify_digests``, as ``kycscreen verify-digests``)
and the strict lineage of a sample of recent decisions (``kyc.domain.lineage.check_lineage``, as
``kycscreen lineage``). The sample is drawn fresh each run with a CSPRNG, so nobody can predict
which decisions escape it; PASS decisions (what a forger wants) are drawn first. No AWS here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kyc.domain.digest import DigestReport, period_time
from kyc.domain.lineage import BROKEN, LineageCheck

# What an attacker wants a forged decision to say: checked first, the rest fills the sample.
PRIORITY_DECISIONS = ("PASS",)


@dataclass(frozen=True)
class Finding:
    """One thing the verifier found wrong: which check, about what, and the check's own words."""

    check: str  # "digests" or "lineage"
    subject: str  # a digest/evidence key, or a submission id
    problem: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "subject": self.subject, "problem": self.problem}


def lineage_pool(
    items: Sequence[Mapping[str, Any]], now: datetime, lookback: timedelta, settle: timedelta
) -> list[Mapping[str, Any]]:
    """The decisions a run may sample: dated within ``[now - lookback, now - settle)`` (younger ones
    are still settling: their execution may not have left the decide state, their log records may be
    in flight; the next run takes them), and every item not dated by a string, which no date can
    hide. An item dated in the future is left to the digest check, which reports it (``future:``)."""
    since, until = period_time(now - lookback), period_time(now - settle)
    return [i for i in items if not isinstance(i.get("decided_at"), str) or since <= i["decided_at"] < until]


def sample_decisions(
    items: Sequence[Mapping[str, Any]], size: int, rng: random.Random | None = None
) -> list[str]:
    """Up to ``size`` submission ids: every priority decision first (in random order, so a cap
    leaves out an unpredictable few), then the others at random. ``rng`` defaults to the OS CSPRNG."""
    rng = rng or random.SystemRandom()
    ids = {str(i["submission_id"]): i for i in items if i.get("submission_id")}
    first = [sid for sid, i in ids.items() if i.get("decision") in PRIORITY_DECISIONS]
    rest = [sid for sid in ids if sid not in set(first)]
    rng.shuffle(first)
    rng.shuffle(rest)
    return (first + rest)[: max(0, size)]


def digest_findings(report: DigestReport, *, expected: bool) -> list[Finding]:
    """Every problem of the digest report; no digest at all where digests are expected (the stack
    has run its digest schedule) is a finding too, never "nothing to verify"."""
    findings = [Finding("digests", _subject(p), p) for p in report.problems]
    if report.digests == 0 and expected and not findings:
        findings.append(Finding("digests", "digests/", "missing: no digest in the audit bucket"))
    return findings


def lineage_findings(check: LineageCheck) -> list[Finding]:
    """The failures of one strict lineage check (an expiry or erasure is no finding)."""
    if check.status != BROKEN:
        return []
    return [Finding("lineage", check.submission_id, p) for p in check.failures] or [
        Finding("lineage", check.submission_id, "broken: lineage does not verify")
    ]


def _subject(problem: str) -> str:
    """The key or id a digest problem names (its first path-like word), else the problem's kind."""
    for word in problem.replace(",", " ").split():
        if "/" in word or word.startswith("item:"):
            return word.rstrip(":.")
    return problem.split(":", 1)[0]
