"""Score bands and the recorded baseline of the drift alarm (kyc.domain.drift), by hand."""

from __future__ import annotations

import pytest

from kyc.domain.drift import SCORE_BANDS, record_baseline, score_band


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0.0, "0-10"),
        (0.0999, "0-10"),
        (0.1, "10-20"),
        (0.2, "20-50"),
        (0.5, "50-90"),
        (0.9, "90-100"),
        (1.0, "90-100"),
    ],
)
def test_score_band_edges_are_lower_inclusive(score, band):
    assert score_band(score) == band


@pytest.mark.parametrize("score", [-0.01, 1.01, float("nan")])
def test_score_outside_the_unit_interval_is_refused(score):
    with pytest.raises(ValueError):
        score_band(score)


def test_baseline_from_a_champion_record():
    # 6 PASS (3 at 0.05, 3 at 0.15), 3 REVIEW at 0.6, 1 REJECT at 0.95, 2 INVALID unscored:
    # outcomes 60,30,10 % of 10; bands 30,30,0,30,10 % of 10 scored
    record = [("PASS", 0.05)] * 3 + [("PASS", 0.15)] * 3 + [("REVIEW", 0.6)] * 3 + [("REJECT", 0.95)]
    baseline = record_baseline([*record, ("INVALID", None), ("INVALID", None)])
    assert baseline.outcome_percent == (60.0, 30.0, 10.0)
    assert baseline.band_percent == (30.0, 30.0, 0.0, 30.0, 10.0)
    assert baseline.decisions == 10
    assert baseline.parameters() == {
        "DriftBaselineOutcomePercent": "60,30,10",
        "DriftBaselineScoreBandPercent": "30,30,0,30,10",
    }
    assert len(SCORE_BANDS) == len(baseline.band_percent)


def test_thirds_are_written_to_one_decimal():
    baseline = record_baseline([("PASS", 0.05), ("REVIEW", 0.3), ("REJECT", 0.95)])
    assert baseline.parameters()["DriftBaselineOutcomePercent"] == "33.3,33.3,33.3"


def test_no_decided_decision_is_no_baseline():
    with pytest.raises(ValueError):
        record_baseline([("ERROR", None), ("INVALID", None)])
