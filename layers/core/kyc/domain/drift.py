"""What the drift alarm watches: the outcome and score-band mix of decisions, against the champion's.

A regressed model shipped under a calibrated name and version is decided as if it were the champion:
nothing in a single decision is wrong, only the mix changes (more PASS, scores sliding). The decide
function emits ``Decisions{decision}`` (already) and ``DecisionScoreBand{band}`` per decision; the
``DecisionsDriftAlarm`` of template.yaml compares their shares over a window with the baseline the
operator recorded for the champion (``DriftBaselineOutcomePercent``, ``DriftBaselineScoreBandPercent``)
and pages when either departs by more than ``DriftAlarmPoints`` total-variation points with at least
``DriftMinDecisions`` decisions in the window. See docs/runbook.md section 1.22.

The band edges are fixed here, not derived from the policy's thresholds: a threshold change must not
move the bands under a recorded baseline. They sit at the default thresholds (0.2, 0.9) and split the
PASS and REVIEW zones once more, so a model whose PASS scores creep toward the threshold shows up
before any outcome changes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

SCORE_BAND_EDGES = (0.1, 0.2, 0.5, 0.9)
SCORE_BANDS = ("0-10", "10-20", "20-50", "50-90", "90-100")  # the metric's ``band`` dimension values
WATCHED_OUTCOMES = (
    "PASS",
    "REVIEW",
    "REJECT",
)  # the model's outcomes; INVALID/ERROR have alarms of their own


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

    def parameters(self) -> dict[str, str]:
        """The template parameters that carry it (``sam deploy --parameter-overrides``)."""
        return {
            "DriftBaselineOutcomePercent": ",".join(_fmt(p) for p in self.outcome_percent),
            "DriftBaselineScoreBandPercent": ",".join(_fmt(p) for p in self.band_percent),
        }


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
