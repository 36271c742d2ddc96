"""The drift baseline travels in the production pointer (issue 21 item 3, drift): by hand."""

from __future__ import annotations

import pytest

from kyc.domain.drift import BaselineError, DriftBaseline
from kyc.domain.policy import DecisionPolicy
from kyc.domain.promotion import (
    DRIFT_BASELINE_KEY,
    PromotionError,
    pointer_document,
    pointer_drift_baseline,
    rescreen_report,
    split_pointer,
)
from kyc.settings import drift_baseline_fallback

SHA = "ab" * 32
POLICY = {
    "version": "p-2",
    "pass_threshold": 0.2,
    "reject_threshold": 0.7,
    "calibration": {"model": {"name": "m", "version": "1", "artefact_sha256": SHA}},
}
MIX = {"outcome_percent": [60.0, 30.0, 10.0], "band_percent": [30.0, 30.0, 0.0, 30.0, 10.0], "decisions": 10}


def _pointer(baseline=MIX) -> dict:
    return pointer_document(
        POLICY,
        endpoint_name="kyc-v3",
        variant="AllTraffic",
        artefact_sha256=SHA,
        model_package_arn="arn:aws:sagemaker:eu-west-1:123456789012:model-package/kyc/3",
        drift_baseline=baseline,
    )


def test_the_pointer_carries_the_baseline_beside_the_policy_and_the_policy_stays_a_policy() -> None:
    document = _pointer()
    assert document[DRIFT_BASELINE_KEY] == MIX
    policy, deployment = split_pointer(document)
    assert DRIFT_BASELINE_KEY not in policy and deployment is not None
    DecisionPolicy.from_mapping({k: v for k, v in policy.items() if k != "calibration"})  # no unknown key
    baseline = pointer_drift_baseline(document)
    assert baseline == DriftBaseline((60.0, 30.0, 10.0), (30.0, 30.0, 0.0, 30.0, 10.0), 10)


def test_a_pointer_without_a_baseline_falls_back_to_the_template_parameters() -> None:
    fallback = drift_baseline_fallback(
        {"KYC_DRIFT_BASELINE_OUTCOME_PERCENT": "90,8,2", "KYC_DRIFT_BASELINE_BAND_PERCENT": "80,10,5,3,2"}
    )
    assert fallback == DriftBaseline((90.0, 8.0, 2.0), (80.0, 10.0, 5.0, 3.0, 2.0))
    assert pointer_drift_baseline(_pointer(None), fallback) is fallback
    assert pointer_drift_baseline(POLICY, fallback) is fallback  # a plain policy (before any promotion)
    assert pointer_drift_baseline(_pointer(), fallback) != fallback
    assert drift_baseline_fallback({}) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"outcome_percent": [60, 30], "band_percent": [30, 30, 0, 30, 10]},  # two outcomes
        {"outcome_percent": [60, 30, 20], "band_percent": [30, 30, 0, 30, 10]},  # sums to 110
        {"outcome_percent": [60, 50, -10], "band_percent": [30, 30, 0, 30, 10]},  # negative
        {"outcome_percent": ["60", 30, 10], "band_percent": [30, 30, 0, 30, 10]},  # a string
        {"outcome_percent": [60, 30, 10], "band_percent": [30, 30, 0, 30, 10], "decisions": -1},
    ],
)
def test_a_baseline_that_is_not_a_mix_is_refused(bad: dict) -> None:
    with pytest.raises(PromotionError):
        _pointer(bad)
    with pytest.raises(PromotionError):
        pointer_drift_baseline({DRIFT_BASELINE_KEY: bad})
    with pytest.raises(BaselineError):
        DriftBaseline.from_parameters("60,30,20", "30,30,0,30,10")


def test_the_rescreen_report_measures_the_candidate_s_mix_on_the_backlog() -> None:
    # 4 compared: PASS 0.05, PASS 0.15, REJECT 0.95, REVIEW 0.6 (+1 failed, not counted):
    # outcomes 50,25,25 %; bands 0-10, 10-20, 50-90, 90-100 one each = 25,25,0,25,25 %
    items = [
        {"submission_id": "a", "recorded": "PASS", "candidate": "PASS", "score": 0.05},
        {"submission_id": "b", "recorded": "REVIEW", "candidate": "PASS", "score": 0.15},
        {"submission_id": "c", "recorded": "PASS", "candidate": "REJECT", "score": 0.95},
        {"submission_id": "d", "recorded": "REVIEW", "candidate": "REVIEW", "score": 0.6},
        {"submission_id": "e", "recorded": "PASS", "candidate": None},
    ]
    report = rescreen_report(items)
    assert report["drift_baseline"] == {
        "outcome_percent": [50.0, 25.0, 25.0],
        "band_percent": [25.0, 25.0, 0.0, 25.0, 25.0],
        "decisions": 4,
    }
    assert rescreen_report([items[-1]])["drift_baseline"] is None  # nothing decided: no baseline
