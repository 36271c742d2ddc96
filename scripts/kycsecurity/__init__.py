"""Security gates for `make security`: static analysis, dependency audit, secret scan.

Each check returns findings instead of printing them so the CLI (``python -m kycsecurity``) and the
pytest canaries share one definition of "a finding", and a check that cannot run says so loudly
rather than passing in silence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One problem a check reports; ``where`` is a repo-relative path (and line) or a requirement pin."""

    check: str
    where: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.rule} {self.detail}"


@dataclass(frozen=True)
class CheckResult:
    """Findings plus notes; ``degraded`` marks a check that ran with less coverage than intended."""

    name: str
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    degraded: bool = False
