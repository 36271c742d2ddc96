"""DecisionsDriftAlarm (issue 21, drift) as template.yaml defines it, on hand-computed decision mixes.

The alarm is baseline-free: decide emits, per decision and category c (3 outcomes, 5 score bands),
d_c = (1[in c] - p_c) / sd_c with sd_c = sqrt(max(p_c (1 - p_c), 0.0475)), p_c from the production
pointer's mix; the alarm takes the largest S_c^2 / n over the window and pages at 25 (z = 5) with
>= 30 decisions in 3600 s. Default (fallback) mix: PASS,REVIEW,REJECT = 90,8,2 %; bands
0-10,10-20,20-50,50-90,90-100 = 80,10,5,3,2 %. So sd: PASS 0.3, REVIEW sqrt(0.0736) = 0.271293,
REJECT (0.0196 < 0.0475) 0.217945; bands 0.4, 0.3, then 0.217945 for the three rare bands.
Each expected value below is worked out by hand in the comment above it, not read from the evaluator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyc.domain.drift import DRIFT_ALARM_Z, DriftBaseline
from kyc.observability import count
from kyclocal.alarms import Datapoint, breaches_at, datapoints_from_emf, load_alarms, period_value

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ("service", "kyc-screening")
WINDOW = (0.0, 3600.0)
DEFAULT = DriftBaseline((90.0, 8.0, 2.0), (80.0, 10.0, 5.0, 3.0, 2.0))


@pytest.fixture(scope="module")
def drift():
    return load_alarms(ROOT / "template.yaml")["DecisionsDriftAlarm"]


def decisions(mix: dict[tuple[str, float | None], int], baseline: DriftBaseline = DEFAULT) -> list[Datapoint]:
    """What decide emits for ``n`` decisions of each (outcome, score) against ``baseline``."""
    points, t = [], 10.0
    for (outcome, score), n in mix.items():
        outcomes, bands = baseline.deviations(outcome, score)
        for _ in range(n):
            for name, d in outcomes.items():
                dims = (("outcome", name), SERVICE)
                points.append(Datapoint("KycScreening", "DriftOutcomeDeviation", dims, t, d))
            for name, d in bands.items():
                points.append(
                    Datapoint("KycScreening", "DriftBandDeviation", (("band", name), SERVICE), t, d)
                )
            t += 1.0
    return points


def value(alarm, points) -> float:
    return round(period_value(alarm, points, *WINDOW), 4)


def test_the_alarm_knows_no_baseline_and_pages_at_z_5(drift):
    assert (drift.period, drift.evaluation_periods, drift.threshold) == (3600, 1, DRIFT_ALARM_Z**2)
    assert DRIFT_ALARM_Z**2 == 25.0
    text = " ".join(e for _, e in drift.expressions)
    assert ">= 30" in text and "90" not in text  # the volume guard is there, the baseline is not
    assert len(drift.stats) <= 10  # CloudWatch's limit of metrics in one alarm


def test_the_per_decision_deviation_is_the_hand_computed_one():
    outcomes, bands = DEFAULT.deviations("REJECT", 0.95)
    # REJECT: (1 - 0.02) / 0.217945 = 4.4965; PASS: -0.9 / 0.3 = -3; REVIEW: -0.08 / 0.271293 = -0.29488
    assert outcomes == pytest.approx({"PASS": -3.0, "REVIEW": -0.29488, "REJECT": 4.4965}, abs=1e-4)
    # band 90-100: 0.98 / 0.217945 = 4.4965; 0-10: -0.8 / 0.4 = -2
    assert bands["90-100"] == pytest.approx(4.4965, abs=1e-4) and bands["0-10"] == pytest.approx(-2.0)
    assert DEFAULT.deviations("ERROR", None) == ({}, {})  # INVALID/ERROR have alarms of their own


def test_healthy_window_matching_the_baseline_stays_quiet(drift):
    # 45 PASS (40 at 0.05, 5 at 0.15), 4 REVIEW (2 at 0.3, 2 at 0.6), 1 REJECT at 0.95 = 90,8,2 exactly:
    # every outcome sum is 0 (PASS: 45 * 0.1/0.3 - 5 * 0.9/0.3 = 15 - 15). Bands 80,10,4,4,2:
    # 20-50: (2 * 0.95 - 48 * 0.05) / 0.217945 = -2.29416, squared / 50 = 0.10526 (50-90 likewise +)
    mix = {("PASS", 0.05): 40, ("PASS", 0.15): 5, ("REVIEW", 0.3): 2, ("REVIEW", 0.6): 2, ("REJECT", 0.95): 1}
    assert value(drift, decisions(mix)) == pytest.approx(0.1053, abs=1e-4)
    assert not breaches_at(drift, decisions(mix), 3600.0)


def test_forty_point_shift_over_fifty_decisions_pages(drift):
    # 25 PASS, 4 REVIEW, 21 REJECT: REJECT sum (21 * 0.98 - 29 * 0.02) / 0.217945 = 20 / 0.217945 = 91.766,
    # squared 8421.05, / 50 = 168.42 (PASS: -20 / 0.3 = -66.67 -> 88.9, smaller)
    mix = {("PASS", 0.05): 25, ("REVIEW", 0.3): 4, ("REJECT", 0.95): 21}
    assert value(drift, decisions(mix)) == pytest.approx(168.42, abs=0.01)
    assert breaches_at(drift, decisions(mix), 3600.0)


def test_volume_guard_boundary_is_inclusive(drift):
    # 30 REJECT: S^2 / n = 30 * 0.98^2 / 0.0475 = 28.812 / 0.0475 = 606.568 (band 90-100 the same)
    assert value(drift, decisions({("REJECT", 0.95): 29})) == 0.0
    assert value(drift, decisions({("REJECT", 0.95): 30})) == pytest.approx(606.57, abs=0.01)


def test_a_regression_confined_to_the_fakes_pages_once_the_window_holds_225_decisions(drift):
    # The review's case: the 10 % of traffic that was REVIEW/REJECT (the fakes, bands 20-100) now PASSes
    # scored under 0.1; genuine traffic unchanged. Mix 100,0,0; bands 90,10,0,0,0. Per decision the PASS
    # deviation is 0.1 / 0.3 = 1/3, so S^2 / n = n / 9: 3.33 at the guard (30), 25 at n = 225.
    def regressed(n: int) -> dict[tuple[str, float], int]:
        return {("PASS", 0.05): n * 9 // 10, ("PASS", 0.15): n // 10}

    assert value(drift, decisions(regressed(30))) == pytest.approx(30 / 9, abs=1e-4)
    # n = 210: 210 / 9 = 23.33; the largest band (0-10: (189 * 0.5 - 21 * 2)^2 / 210 = 13.125) is lower
    assert value(drift, decisions(regressed(210))) == pytest.approx(210 / 9, abs=1e-4)
    assert not breaches_at(drift, decisions(regressed(210)), 3600.0)
    assert value(drift, decisions(regressed(270))) == pytest.approx(30.0, abs=1e-4)  # 270 / 9
    assert breaches_at(drift, decisions(regressed(270)), 3600.0)


def test_the_same_window_under_the_pointer_s_own_baseline_is_quiet(drift):
    # A champion whose own mix is 50,8,42 (bands 50,0,8,0,42) decides 25 PASS at 0.05, 4 REVIEW at 0.3,
    # 21 REJECT at 0.95: every sum is 0 (PASS 25 * 0.5 - 25 * 0.5; REVIEW 4 * 0.92 - 46 * 0.08; REJECT
    # 21 * 0.58 - 29 * 0.42; an empty band's d is 0). The alarm is unchanged: only the pointer moved.
    champion = DriftBaseline((50.0, 8.0, 42.0), (50.0, 0.0, 8.0, 0.0, 42.0))
    mix = {("PASS", 0.05): 25, ("REVIEW", 0.3): 4, ("REJECT", 0.95): 21}
    assert value(drift, decisions(mix, champion)) == 0.0
    assert value(drift, decisions(mix)) > 25  # the same decisions against the fallback mix page


def test_the_window_forgets_after_an_hour(drift):
    points = decisions({("REJECT", 0.95): 30})  # at 10..39 s
    assert breaches_at(drift, points, 3600.0)
    assert not breaches_at(drift, points, 3600.0 + 3600.0)


def test_invalid_and_error_are_outside_the_mix(drift):
    mix = {("PASS", 0.05): 40, ("PASS", 0.15): 5, ("REVIEW", 0.3): 2, ("REVIEW", 0.6): 2, ("REJECT", 0.95): 1}
    errors = decisions({("ERROR", None): 30, ("INVALID", None): 30})
    assert errors == []
    assert value(drift, decisions(mix) + errors) == pytest.approx(0.1053, abs=1e-4)


def test_what_decide_emits_is_what_the_alarm_reads(drift, monkeypatch, capsys):
    # through Powertools' EMF, as the decide handler calls it: 30 REJECT scored 0.95 -> 606.57 (above)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KycScreening")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kyc-screening")
    outcomes, bands = DEFAULT.deviations("REJECT", 0.95)
    for _ in range(30):
        for outcome, d in outcomes.items():
            count("DriftOutcomeDeviation", value=d, unit="None", outcome=outcome)
        for band, d in bands.items():
            count("DriftBandDeviation", value=d, unit="None", band=band)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    points = datapoints_from_emf(records)
    start = min(p.timestamp for p in points)
    assert round(period_value(drift, points, start - 1, start + 3599), 2) == pytest.approx(606.57, abs=0.01)


def test_after_promote_the_alarm_judges_the_new_champion_and_after_rollback_the_old(drift):
    # Pointer history as SSM keeps it: v1 the champion's plain policy (no baseline: the template's
    # DriftBaseline* defaults apply), v2 the promotion (the candidate's re-screen mix 50,8,42), v3 the
    # rollback (v1's value again). The candidate's own traffic (25 PASS, 4 REVIEW, 21 REJECT) reads
    # 0 under v2 (computed above) and 168.42 under v1 and v3 (the forty-point shift above).
    from kyc.domain.promotion import pointer_document, pointer_drift_baseline

    sha = "ab" * 32
    v1 = {"version": "champion-1", "pass_threshold": 0.3, "reject_threshold": 0.8}
    candidate_policy = {"version": "cand-2", "pass_threshold": 0.5, "reject_threshold": 0.5}
    candidate_policy["calibration"] = {"model": {"artefact_sha256": sha}}
    v2 = pointer_document(
        candidate_policy,
        endpoint_name="kyc-v2",
        variant="AllTraffic",
        artefact_sha256=sha,
        model_package_arn="arn:aws:sagemaker:eu-west-1:123456789012:model-package/kyc/2",
        drift_baseline={"outcome_percent": [50, 8, 42], "band_percent": [50, 0, 8, 0, 42], "decisions": 50},
    )
    v3 = dict(v1)
    mix = {("PASS", 0.05): 25, ("REVIEW", 0.3): 4, ("REJECT", 0.95): 21}
    read = [value(drift, decisions(mix, pointer_drift_baseline(doc, DEFAULT))) for doc in (v1, v2, v3)]
    assert read == [pytest.approx(168.42, abs=0.01), 0.0, pytest.approx(168.42, abs=0.01)]
