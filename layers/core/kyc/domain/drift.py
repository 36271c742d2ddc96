"""What the drift alarm watches: the outcome and score-band mix of decisions, against the champion's.

A regressed model shipped under a calibrated name and version is decided as if it were the champion:
nothing in a single decision is wrong, only the mix changes (more PASS, scores sliding).

The baseline travels with the model: promotion writes the champion's mix (measured on the backlog
re-screen of the team's own traffic) into the production pointer beside its policy, and the decide
function reads it from there (``DriftBaseline*`` template parameters when the pointer carries none).
Per decision, decide emits one standardised deviation per category c (each outcome, each score band)

    d_c = (1[decision in c] - p_c) / sqrt(max(p_c (1 - p_c), VARIANCE_FLOOR))

as ``DriftOutcomeDeviation{outcome}`` and ``DriftBandDeviation{band}`` (functions/decide). Under the
baseline each d_c has mean 0 and variance at most 1, so over a window of n decisions S_c = sum d_c
has S_c / sqrt(n) ~ N(0, 1) (at most). ``DecisionsDriftAlarm`` pages when max_c S_c^2 / n reaches
``DRIFT_ALARM_Z``^2 with at least
``DriftMinDecisions`` decisions: the alarm never knows the baseline, so a promotion or a rollback
changes what it judges against in the same write as the model. The floor keeps a rare category (a
2 % REJECT share) from paging on two odd decisions in a quiet hour; it makes the test conservative
for categories under 5 %. Figures: benchmarks/drift_alarm.py, docs/runbook.md 1.27.

The band edges are fixed here, not derived from the policy's thresholds: a threshold change must not
move the bands under a recorded baseline. They sit at the default thresholds (0.2, 0.9) and split the
PASS and REVIEW zones once more, so a model whose PASS scores creep toward the threshold shows up
before any outcome changes.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SCORE_BAND_EDGES = (0.1, 0.2, 0.5, 0.9)
SCORE_BANDS = ("0-10", "10-20", "20-50", "50-90", "90-100")  # the metric's ``band`` dimension values
WATCHED_OUTCOMES = (
    "PASS",
    "REVIEW",
    "REJECT",
)  # the model's outcomes; INVALID/ERROR have alarms of their own


VARIANCE_FLOOR = 0.05 * 0.95  # a category's variance as if its share were at least 5 %
DRIFT_ALARM_Z = 5.0  # template.yaml DecisionsDriftAlarm: Threshold = 25 = z^2


class BaselineError(ValueError):
    """A baseline document that is not a mix (wrong length, negative, not summing to 100)."""


def score_band(score: float) -> str:
    """The band of a decision score in [0, 1] (lower edge inclusive: 0.1 is in "10-20")."""
    value = float(score)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"decision score {value!r} outside [0, 1]")
    return SCORE_BANDS[bisect_right(SCORE_BAND_EDGES, value)]


@dataclass(frozen=True)
class DriftBaseline:
    """The champion's recorded mix in percent: outcomes in WATCHED_OUTCOMES order, bands in SCORE_BANDS."""

    outcome_percent: tuple[float, ...]
    band_percent: tuple[float, ...]
    decisions: int = 0  # how many decisions it was recorded from (0: written by hand)

    def to_document(self) -> dict[str, Any]:
        """What the production pointer carries under ``drift_baseline`` (kyc.domain.promotion)."""
        return {
            "outcome_percent": list(self.outcome_percent),
            "band_percent": list(self.band_percent),
            "decisions": self.decisions,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> DriftBaseline:
        """A pointer's ``drift_baseline`` block, checked: two mixes in percent that sum to 100."""
        if not isinstance(document, Mapping):
            raise BaselineError("a drift baseline must be an object")
        outcome = _mix(document.get("outcome_percent"), len(WATCHED_OUTCOMES), "outcome_percent")
        bands = _mix(document.get("band_percent"), len(SCORE_BANDS), "band_percent")
        decisions = document.get("decisions", 0)
        if not isinstance(decisions, int) or isinstance(decisions, bool) or decisions < 0:
            raise BaselineError(f"decisions must be a count, got {decisions!r}")
        return cls(outcome, bands, decisions)

    @classmethod
    def from_parameters(cls, outcome_percent: str, band_percent: str) -> DriftBaseline:
        """The ``DriftBaseline*`` template parameters (comma-separated percentages): the fallback."""
        try:
            outcome = [float(v) for v in outcome_percent.split(",")]
            bands = [float(v) for v in band_percent.split(",")]
        except ValueError as exc:
            raise BaselineError(f"baseline parameters are not numbers: {exc}") from exc
        return cls.from_document({"outcome_percent": outcome, "band_percent": bands})

    def deviations(self, outcome: str, score: float | None) -> tuple[dict[str, float], dict[str, float]]:
        """One decision's d_c: (per outcome, per score band), what decide emits for the alarm.

        Nothing for an outcome outside the mix (INVALID, ERROR: alarms of their own); bands only
        for a scored decision."""
        if outcome not in WATCHED_OUTCOMES:
            return {}, {}
        outcomes = {
            name: _deviation(name == outcome, percent)
            for name, percent in zip(WATCHED_OUTCOMES, self.outcome_percent, strict=True)
        }
        if score is None:
            return outcomes, {}
        band = score_band(score)
        bands = {
            name: _deviation(name == band, percent)
            for name, percent in zip(SCORE_BANDS, self.band_percent, strict=True)
        }
        return outcomes, bands

    def parameters(self) -> dict[str, str]:
        """The template parameters that carry it (``sam deploy --parameter-overrides``)."""
        return {
            "DriftBaselineOutcomePercent": ",".join(_fmt(p) for p in self.outcome_percent),
            "DriftBaselineScoreBandPercent": ",".join(_fmt(p) for p in self.band_percent),
        }


def _deviation(member: bool, percent: float) -> float:
    p = percent / 100.0
    return ((1.0 if member else 0.0) - p) / math.sqrt(max(p * (1.0 - p), VARIANCE_FLOOR))


def _mix(values: Any, length: int, name: str) -> tuple[float, ...]:
    if not isinstance(values, list | tuple) or len(values) != length:
        raise BaselineError(f"{name} needs {length} percentages, got {values!r}")
    mix = tuple(float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    if len(mix) != length or any(not 0.0 <= v <= 100.0 for v in mix):
        raise BaselineError(f"{name} must be {length} percentages in [0, 100], got {values!r}")
    if abs(sum(mix) - 100.0) > 0.5:  # one decimal per share, as the parameters are written
        raise BaselineError(f"{name} must sum to 100, got {sum(mix):g}")
    return mix


def _fmt(percent: float) -> str:
    return f"{percent:.1f}".rstrip("0").rstrip(".")


def record_baseline(decisions: Iterable[tuple[str, float | None]]) -> DriftBaseline:
    """The mix of a champion's decisions ``(outcome, score)``: what the alarm will compare against.

    Only watched outcomes count for the outcome shares and only scored decisions for the band
    shares, exactly as the alarm reads its metrics. An empty record cannot be a baseline.
    """
    outcomes: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    for outcome, score in decisions:
        if outcome in WATCHED_OUTCOMES:
            outcomes[outcome] += 1
        if score is not None:
            bands[score_band(score)] += 1
    decided, scored = sum(outcomes.values()), sum(bands.values())
    if not decided or not scored:
        raise ValueError("a baseline needs decided (PASS/REVIEW/REJECT) and scored decisions")
    return DriftBaseline(
        outcome_percent=tuple(100.0 * outcomes[o] / decided for o in WATCHED_OUTCOMES),
        band_percent=tuple(100.0 * bands[b] / scored for b in SCORE_BANDS),
        decisions=decided,
    )
