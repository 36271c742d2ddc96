"""DecisionsDriftAlarm (issue 21, drift) as template.yaml defines it, on hand-computed decision mixes.

Defaults: baseline PASS,REVIEW,REJECT = 90,8,2 %; bands 0-10,10-20,20-50,50-90,90-100 = 80,10,5,3,2 %;
fires at >= 30 points total-variation distance with >= 30 decisions in a 3600 s window. Each expected
value below is worked out by hand in the comment above it, not read back from the evaluator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyc.domain.drift import score_band
from kyc.observability import count
from kyclocal.alarms import Datapoint, breaches_at, datapoints_from_emf, load_alarms, period_value

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ("service", "kyc-screening")
WINDOW = (0.0, 3600.0)


@pytest.fixture(scope="module")
def drift():
    return load_alarms(ROOT / "template.yaml")["DecisionsDriftAlarm"]


def decisions(mix: dict[tuple[str, float], int], *, bands: bool = True) -> list[Datapoint]:
    """What decide emits for ``n`` decisions of each (outcome, score): Decisions and DecisionScoreBand."""
    points, t = [], 10.0
    for (outcome, score), n in mix.items():
        for _ in range(n):
            points.append(Datapoint("KycScreening", "Decisions", (("decision", outcome), SERVICE), t, 1.0))
            if bands:
                band = (("band", score_band(score)), SERVICE)
                points.append(Datapoint("KycScreening", "DecisionScoreBand", band, t, 1.0))
            t += 1.0
    return points


def value(alarm, points) -> float:
    return round(period_value(alarm, points, *WINDOW), 6)


def test_template_defaults_are_read_through_select_and_split(drift):
    assert (drift.period, drift.evaluation_periods, drift.threshold) == (3600, 1, 30.0)
    outcome = dict(drift.expressions)["outcome"]
    assert outcome.startswith("IF(decided >= 30, ")
    assert "decided - 90)" in outcome and "decided - 8)" in outcome and "decided - 2)" in outcome
    assert len(drift.stats) <= 10  # CloudWatch's limit of metrics in one alarm


def test_one_odd_decision_of_three_does_not_page(drift):
    # 2 PASS + 1 REJECT: 33 % REJECT against 2 % would be 31 points, but 3 < 30 decisions: reads 0
    points = decisions({("PASS", 0.05): 2, ("REJECT", 0.95): 1})
    assert value(drift, points) == 0.0
    assert not breaches_at(drift, points, 3600.0)


def test_forty_point_shift_over_fifty_decisions_pages(drift):
    # 25 PASS, 4 REVIEW, 21 REJECT = 50 %, 8 %, 42 %: |50-90| + |8-8| + |42-2| = 80, / 2 = 40 points
    mix = {("PASS", 0.05): 25, ("REVIEW", 0.3): 4, ("REJECT", 0.95): 21}
    assert value(drift, decisions(mix, bands=False)) == 40.0
    # with the bands too: 50,0,8,0,42 % against 80,10,5,3,2: (30+10+3+3+40) / 2 = 43, the larger one
    assert value(drift, decisions(mix)) == 43.0
    assert breaches_at(drift, decisions(mix), 3600.0)


def test_healthy_window_matching_the_baseline_stays_quiet(drift):
    # 45 PASS (40 at 0.05, 5 at 0.15), 4 REVIEW (2 at 0.3, 2 at 0.6), 1 REJECT: outcomes exactly 90,8,2;
    # bands 80,10,4,4,2 against 80,10,5,3,2: (0+0+1+1+0) / 2 = 1 point
    mix = {("PASS", 0.05): 40, ("PASS", 0.15): 5, ("REVIEW", 0.3): 2, ("REVIEW", 0.6): 2, ("REJECT", 0.95): 1}
    assert value(drift, decisions(mix)) == 1.0
    assert not breaches_at(drift, decisions(mix), 3600.0)


def test_scores_creeping_up_under_unchanged_outcomes_pages(drift):
    # the silent regression no outcome shows: the same 90,8,2 outcomes, PASS scores moved to 10-20:
    # bands 10,80,4,4,2 against 80,10,5,3,2: (70+70+1+1+0) / 2 = 71 points
    mix = {("PASS", 0.05): 5, ("PASS", 0.15): 40, ("REVIEW", 0.3): 2, ("REVIEW", 0.6): 2, ("REJECT", 0.95): 1}
    assert value(drift, decisions(mix)) == 71.0


def test_volume_guard_boundary_is_inclusive(drift):
    # all REJECT: |0-90| + |0-8| + |100-2| = 196, / 2 = 98 points; bands 0,0,0,0,100: (80+10+5+3+98)/2 = 98
    assert value(drift, decisions({("REJECT", 0.95): 29})) == 0.0
    assert value(drift, decisions({("REJECT", 0.95): 30})) == 98.0


def test_the_window_forgets_after_an_hour(drift):
    points = decisions({("REJECT", 0.95): 30})  # at 10..39 s
    assert breaches_at(drift, points, 3600.0)
    assert not breaches_at(drift, points, 3600.0 + 3600.0)


def test_baseline_override_moves_what_counts_as_normal():
    # the same 50,8,42 mix is the recorded baseline now: 0 points on outcomes
    alarm = load_alarms(ROOT / "template.yaml", {"DriftBaselineOutcomePercent": "50,8,42"})[
        "DecisionsDriftAlarm"
    ]
    mix = {("PASS", 0.05): 25, ("REVIEW", 0.3): 4, ("REJECT", 0.95): 21}
    assert value(alarm, decisions(mix, bands=False)) == 0.0


def test_invalid_and_error_are_outside_the_mix(drift):
    # 50 healthy decisions plus 30 ERROR: ERROR has its own alarm and does not dilute the model's mix
    mix = {("PASS", 0.05): 40, ("PASS", 0.15): 5, ("REVIEW", 0.3): 2, ("REVIEW", 0.6): 2, ("REJECT", 0.95): 1}
    errors = [Datapoint("KycScreening", "Decisions", (("decision", "ERROR"), SERVICE), 5.0, 1.0)] * 30
    assert value(drift, decisions(mix) + errors) == 1.0


def test_what_decide_emits_is_what_the_alarm_reads(drift, monkeypatch, capsys):
    # through Powertools' EMF, as the decide handler calls it: 30 PASS scored 0.15 (band 10-20)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KycScreening")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kyc-screening")
    for _ in range(30):
        count("Decisions", decision="PASS")
        count("DecisionScoreBand", band=score_band(0.15))
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    points = datapoints_from_emf(records)
    start = min(p.timestamp for p in points)
    # outcomes 100,0,0: (10+8+2)/2 = 10; bands 0,100,0,0,0: (80+90+5+3+2)/2 = 90
    assert round(period_value(drift, points, start - 1, start + 3599), 6) == 90.0
