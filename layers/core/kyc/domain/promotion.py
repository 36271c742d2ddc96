"""The gate between a trained candidate and the champion (docs/learning-loop.md).

A candidate model is registered for a person's approval only when, measured by the pipeline's own
decisions on the same held-out videos as the champion:

1. its APCER upper bound (95 % Wilson, worst attack type) is no higher than the champion's;
2. its BPCER (genuine videos REJECTed) is no higher than the champion's;
3. its APCER (worst type), BPCER and review rate meet the configured targets.

The review rate matters: a model that separates nothing sends every video to REVIEW, where it can
neither PASS an attack nor REJECT a genuine applicant, and would pass rules 1 to 3 without it.

Without a champion (the first model), only rule 3 applies. The gate never promotes anything: it
decides whether a person is asked. Pure Python.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GateResult", "decision_flips", "gate", "worst_apcer"]


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons)}


def worst_apcer(rates: Mapping[str, Any]) -> dict[str, Any] | None:
    """The attack type whose APCER upper bound is highest (ISO/IEC 30107-3's headline), or None."""
    by_type = [r | {"attack_type": kind} for kind, r in rates["apcer_by_type"].items() if r["total"]]
    if not by_type:
        return None
    return max(by_type, key=lambda r: (r["ci95"][1], r["value"] or 0.0))


def gate(
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    *,
    max_apcer: float,
    max_bpcer: float,
    max_review_rate: float,
) -> GateResult:
    """Apply the three rules to two ``DecisionRates.to_dict()`` reports of the same test split."""
    reasons: list[str] = []
    cand_apcer = worst_apcer(candidate)
    cand_bpcer = candidate["bpcer"]
    if cand_apcer is None or cand_bpcer["total"] == 0:
        return GateResult(False, ("the test split needs both attacks and genuine videos",))
    if cand_apcer["value"] > max_apcer:
        reasons.append(
            f"APCER[{cand_apcer['attack_type']}] {cand_apcer['value']:.4f} is above the target {max_apcer:g}"
        )
    if cand_bpcer["value"] > max_bpcer:
        reasons.append(f"BPCER {cand_bpcer['value']:.4f} is above the target {max_bpcer:g}")
    review = candidate["review_rate"]
    if review["total"] and review["value"] > max_review_rate:
        reasons.append(f"review rate {review['value']:.4f} is above the target {max_review_rate:g}")
    if champion is not None:
        champ_apcer = worst_apcer(champion)
        if champ_apcer is not None and cand_apcer["ci95"][1] > champ_apcer["ci95"][1] + 1e-12:
            reasons.append(
                f"APCER upper bound {cand_apcer['ci95'][1]:.4f} is worse than the champion's "
                f"{champ_apcer['ci95'][1]:.4f}"
            )
        champ_bpcer = champion["bpcer"]
        if champ_bpcer["total"] and cand_bpcer["value"] > champ_bpcer["value"] + 1e-12:
            reasons.append(
                f"BPCER {cand_bpcer['value']:.4f} is worse than the champion's {champ_bpcer['value']:.4f}"
            )
    return GateResult(not reasons, tuple(reasons))


def decision_flips(champion: Sequence[str | None], candidate: Sequence[str | None]) -> dict[str, int]:
    """How many videos each (champion -> candidate) decision change covers, e.g. ``PASS->REJECT``."""
    if len(champion) != len(candidate):
        raise ValueError(f"{len(champion)} champion decisions, {len(candidate)} candidate decisions")
    flips = Counter(f"{a}->{b}" for a, b in zip(champion, candidate, strict=True) if a != b)
    return dict(sorted(flips.items()))
