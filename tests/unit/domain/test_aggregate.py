"""Aggregators: reproduce the published rules, stay inside the inputs, never reward a higher p_fake."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyc.domain.aggregate import (
    AGGREGATORS,
    AggregationError,
    PolicyError,
    aggregate,
    confident_mean,
    mean,
    mean_logit,
    top_k_mean,
    validate_params,
)

probabilities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
score_lists = st.lists(probabilities, min_size=1, max_size=64)


def _winner(pred: list[float]) -> float:
    """The DFDC winner's confident_strategy as detection.md 1.2 words it (t = 0.8)."""
    sz = len(pred)
    fakes = [p for p in pred if p > 0.8]
    if len(fakes) > sz // 2.5 and len(fakes) > 11:
        return sum(fakes) / len(fakes)
    reals = [p for p in pred if p < 0.2]
    if len(reals) > 0.9 * sz:
        return sum(reals) / len(reals)
    return sum(pred) / sz


# --- published behaviour (detection.md 1.2 table) ---


@pytest.mark.parametrize(
    ("scores", "expected_confident", "expected_logit"),
    [
        ([0.05] * 32, 0.050, 0.050),
        ([0.05] * 29 + [0.95] * 3, 0.050, 0.084),
        ([0.10] * 18 + [0.95] * 14, 0.950, 0.513),
        ([0.10] * 20 + [0.95] * 12, 0.419, 0.433),
    ],
)
def test_aggregators_reference_table_matches_detection_md(scores, expected_confident, expected_logit):
    assert confident_mean(scores) == pytest.approx(expected_confident, abs=5e-4)
    assert mean_logit(scores) == pytest.approx(expected_logit, abs=5e-4)


@given(st.lists(st.sampled_from([0.05, 0.1, 0.15, 0.5, 0.79, 0.8, 0.81, 0.95, 1.0]), min_size=1, max_size=80))
def test_confident_mean_defaults_reproduce_winner_exactly(scores):
    assert confident_mean(scores) == pytest.approx(_winner(scores), rel=1e-12, abs=1e-15)


def test_confident_mean_thirteen_of_32_fires_twelve_does_not():
    assert confident_mean([0.1] * 19 + [0.9] * 13) == pytest.approx(0.9)
    assert confident_mean([0.1] * 20 + [0.9] * 12) == pytest.approx((20 * 0.1 + 12 * 0.9) / 32)


def test_confident_mean_five_frames_defaults_never_take_fake_branch():
    # GIVEN 5 frames, 4 confidently fake: the absolute "> 11" rule cannot fire
    scores = [0.1, 0.95, 0.95, 0.95, 0.95]
    assert confident_mean(scores) == pytest.approx(sum(scores) / 5)
    # WHEN the count rule is scaled to n instead THEN the fake branch fires
    scaled = confident_mean(scores, min_fake_count=0, min_fake_fraction=0.4)
    assert scaled == pytest.approx(0.95)


def test_confident_mean_fraction_gate_is_strict_like_original():
    # 2 of 5 = floor(0.4 * 5): not more than the floor, so the fake branch does not fire
    scores = [0.1, 0.1, 0.1, 0.95, 0.95]
    assert confident_mean(scores, min_fake_count=0, min_fake_fraction=0.4) == pytest.approx(sum(scores) / 5)


def test_confident_mean_fraction_none_equals_winner_floor_for_all_sizes():
    for n in range(1, 2000):
        assert n // 2.5 == math.floor(0.4 * n)


def test_confident_mean_real_branch_ignores_glitches_only_above_ninety_percent():
    assert confident_mean([0.05] * 29 + [0.95] * 3) == pytest.approx(0.05)  # 29 > 28.8
    assert confident_mean([0.05] * 28 + [0.95] * 4) == pytest.approx((28 * 0.05 + 4 * 0.95) / 32)


def test_top_k_mean_k_larger_than_n_uses_all_frames():
    assert top_k_mean([0.2, 0.4], k=8) == pytest.approx(0.3)
    assert top_k_mean([0.1, 0.9, 0.5, 0.7], k=2) == pytest.approx(0.8)


def test_mean_logit_extremes_clipped_one_frame_cannot_decide():
    assert mean_logit([0.0] * 31 + [1.0]) < 0.01
    assert mean_logit([0.0, 0.0]) == 0.0
    assert mean_logit([1.0]) == 1.0


# --- invalid input ---


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
@pytest.mark.parametrize("bad", [[], [math.nan], [0.5, -0.1], [1.5], [math.inf]])
def test_aggregators_invalid_scores_raise(name, bad):
    with pytest.raises(AggregationError):
        AGGREGATORS[name](bad)


def test_top_k_mean_zero_k_raises():
    with pytest.raises(AggregationError):
        top_k_mean([0.5], k=0)


def test_aggregate_unknown_name_raises_policy_error():
    with pytest.raises(PolicyError, match="unknown aggregator 'median'"):
        aggregate("median", [0.5])


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mean", {"k": 3}),
        ("top_k_mean", {"k": 0}),
        ("top_k_mean", {"k": 2.5}),
        ("top_k_mean", {"k": True}),
        ("confident_mean", {"threshold": 1.5}),
        ("confident_mean", {"min_fake_count": -1}),
        ("confident_mean", {"real_fraction": math.nan}),
        ("confident_mean", {"threshold": "0.8"}),
        ("mean_logit", {"eps": 0.0}),
    ],
)
def test_validate_params_bad_parameter_raises_policy_error(name, params):
    with pytest.raises(PolicyError):
        validate_params(name, params)


def test_aggregate_params_from_json_numbers_are_applied():
    assert aggregate("top_k_mean", [0.1, 0.2, 0.9], {"k": 1.0}) == pytest.approx(0.9)
    assert validate_params("confident_mean", {"min_fake_count": 3.0, "min_fake_fraction": None}) == {
        "min_fake_count": 3,
        "min_fake_fraction": None,
    }


# --- properties ---


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
@given(scores=score_lists)
def test_aggregators_result_within_input_range(name, scores):
    result = AGGREGATORS[name](scores)
    assert min(scores) <= result <= max(scores)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
@given(value=probabilities, n=st.integers(min_value=1, max_value=40))
def test_aggregators_constant_input_returns_that_value(name, value, n):
    assert AGGREGATORS[name]([value] * n) == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize(("fn", "tolerance"), [(mean, 0.0), (top_k_mean, 0.0), (mean_logit, 1e-12)])
@given(scores=score_lists, data=st.data())
def test_monotone_aggregators_raising_a_score_never_lowers_result(fn, tolerance, scores, data):
    i = data.draw(st.integers(min_value=0, max_value=len(scores) - 1))
    raised = list(scores)
    raised[i] = data.draw(st.floats(min_value=scores[i], max_value=1.0))
    assert fn(raised) >= fn(scores) - tolerance


@given(scores=score_lists)
def test_aggregators_order_of_frames_does_not_matter(scores):
    for fn in AGGREGATORS.values():
        assert fn(list(reversed(scores))) == pytest.approx(fn(scores), abs=1e-12)


def test_confident_mean_raising_a_real_frame_can_lower_score_documented():
    # The real branch averages only the frames below 0.2: removing its highest member lowers it.
    before = [0.0] * 19 + [0.19, 0.5]
    after = [0.0] * 19 + [0.3, 0.5]
    assert confident_mean(after) < confident_mean(before)
