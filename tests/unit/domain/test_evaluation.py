"""Evaluation metrics agree with scikit-learn, intervals with the Wilson formula, thresholds with targets."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from kyc.domain.evaluation import (
    EvaluationError,
    Rate,
    bootstrap_interval,
    bpcer_at_apcer,
    decision_rates,
    equal_error_rate,
    evaluate,
    propose_thresholds,
    roc_auc,
    roc_curve,
    wilson_interval,
)

SEEDS = range(8)


def _dataset(seed: int, n: int = 300, decimals: int | None = None):
    """Overlapping genuine/attack scores, two attack types; rounding creates ties."""
    rng = random.Random(seed)
    scores, labels, types = [], [], []
    for _ in range(n):
        attack = rng.random() < 0.4
        kind = rng.choice(["replay", "faceswap"]) if attack else None
        mu = {None: 0.3, "replay": 0.6, "faceswap": 0.75}[kind]
        s = min(1.0, max(0.0, rng.gauss(mu, 0.15)))
        scores.append(round(s, decimals) if decimals is not None else s)
        labels.append("attack" if attack else "genuine")
        types.append(kind)
    return scores, labels, types


def _y(labels):
    return np.array([lab == "attack" for lab in labels], dtype=int)


# --- ranking metrics vs scikit-learn ---


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_roc_auc_random_scores_matches_sklearn(seed, decimals):
    scores, labels, _ = _dataset(seed, decimals=decimals)
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(_y(labels), scores), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [None, 1])
def test_roc_curve_random_scores_matches_sklearn_points(seed, decimals):
    scores, labels, _ = _dataset(seed, decimals=decimals)
    fpr, tpr, thresholds = sk_roc_curve(_y(labels), scores, drop_intermediate=False)
    points = roc_curve(scores, labels)
    assert [p.fpr for p in points] == pytest.approx(list(fpr), abs=1e-12)
    assert [p.tpr for p in points] == pytest.approx(list(tpr), abs=1e-12)
    assert [p.threshold for p in points[1:]] == pytest.approx(list(thresholds[1:]))
    assert math.isinf(points[0].threshold)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [None, 1])
def test_equal_error_rate_matches_deepfakebench_formula_on_sklearn_roc(seed, decimals):
    scores, labels, _ = _dataset(seed, decimals=decimals)
    fpr, tpr, thresholds = sk_roc_curve(_y(labels), scores, drop_intermediate=False)
    i = int(np.nanargmin(np.abs((1 - tpr) - fpr)))
    eer, threshold = equal_error_rate(scores, labels)
    assert eer == pytest.approx(fpr[i], abs=1e-12)
    assert threshold == thresholds[i]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("max_apcer", [0.01, 0.05, 0.2])
def test_bpcer_at_apcer_single_type_matches_sklearn_operating_point(seed, max_apcer):
    scores, labels, _ = _dataset(seed, decimals=2)
    fpr, tpr, _ = sk_roc_curve(_y(labels), scores, drop_intermediate=False)
    expected = min(f for f, t in zip(fpr, tpr, strict=True) if 1 - t <= max_apcer + 1e-12)
    assert bpcer_at_apcer(scores, labels, max_apcer=max_apcer) == pytest.approx(expected, abs=1e-12)


def test_bpcer_at_apcer_uses_worst_attack_type():
    scores, labels, types = _dataset(3, decimals=2)
    pooled = bpcer_at_apcer(scores, labels, None, max_apcer=0.05)
    per_type = bpcer_at_apcer(scores, labels, types, max_apcer=0.05)
    assert per_type >= pooled  # the easier-to-detect type may not hide the harder one


def test_roc_auc_perfect_and_inverted_separation():
    labels = ["genuine"] * 3 + ["attack"] * 3
    assert roc_auc([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], labels) == 1.0
    assert roc_auc([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], labels) == 0.0
    assert roc_auc([0.5] * 6, labels) == 0.5


def test_roc_curve_single_class_raises():
    with pytest.raises(EvaluationError):
        roc_curve([0.1, 0.2], ["genuine", "genuine"])


# --- Wilson intervals ---


def test_wilson_interval_zero_of_ten_upper_bound_known_value():
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)


def test_wilson_interval_half_is_symmetric_known_value():
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


def test_wilson_interval_matches_closed_form():
    z = 1.959963984540054
    k, n = 3, 250
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson_interval(k, n) == (pytest.approx(centre - half), pytest.approx(centre + half))


def test_wilson_interval_no_data_is_uninformative():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert Rate.of(0, 0).value is None


def test_wilson_interval_more_errors_than_total_raises():
    with pytest.raises(EvaluationError):
        wilson_interval(11, 10)


# --- threshold proposal ---


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("alpha", "beta"), [(0.0, 0.0), (0.01, 0.005), (0.05, 0.05), (0.1, 0.01), (0.3, 0.3)]
)
def test_propose_thresholds_meets_targets_on_source_data(seed, alpha, beta):
    scores, labels, types = _dataset(seed, decimals=2 if seed % 2 else None)
    t_pass, t_reject, feasible = propose_thresholds(scores, labels, types, max_apcer=alpha, max_bpcer=beta)
    assert 0.0 <= t_pass <= t_reject <= 1.0
    report = evaluate(scores, labels, types, pass_threshold=t_pass, reject_threshold=t_reject)
    assert all(rate.value <= alpha for rate in report.apcer_by_type.values())
    assert report.bpcer.value <= beta
    assert feasible


@pytest.mark.parametrize("seed", SEEDS)
def test_propose_thresholds_review_band_edges_are_tightest_possible(seed):
    scores, labels, types = _dataset(seed, decimals=2)
    alpha, beta = 0.05, 0.02
    t_pass, t_reject, _ = propose_thresholds(scores, labels, types, max_apcer=alpha, max_bpcer=beta)
    assert t_pass < t_reject  # these overlapping classes need a REVIEW band
    # a pass threshold any higher lets too many attacks of some type through
    higher = math.nextafter(t_pass, math.inf)
    worst = max(
        sum(s < higher for s, k in zip(scores, types, strict=True) if k == kind)
        / sum(k == kind for k in types)
        for kind in ("replay", "faceswap")
    )
    assert worst > alpha
    # a reject threshold any lower auto-rejects too many genuine applicants
    genuine = [s for s, lab in zip(scores, labels, strict=True) if lab == "genuine"]
    lower = math.nextafter(t_reject, -math.inf)
    assert sum(s >= lower for s in genuine) / len(genuine) > beta


def test_propose_thresholds_separable_data_single_threshold_at_midpoint():
    scores = [0.1, 0.15, 0.2, 0.8, 0.85, 0.9]
    labels = ["genuine"] * 3 + ["attack"] * 3
    proposal = propose_thresholds(scores, labels, None, max_apcer=0.0, max_bpcer=0.0, max_review_rate=0.0)
    assert proposal.feasible
    assert proposal.pass_threshold == proposal.reject_threshold == pytest.approx(0.5)


def test_propose_thresholds_overlap_exceeding_review_budget_is_infeasible():
    scores = [0.1, 0.5, 0.7, 0.3, 0.6, 0.9]
    labels = ["genuine"] * 3 + ["attack"] * 3
    t_pass, t_reject, feasible = propose_thresholds(
        scores, labels, None, max_apcer=0.0, max_bpcer=0.0, max_review_rate=0.25
    )
    assert (t_pass, feasible) == (0.3, False)  # 0.3, 0.5, 0.6, 0.7 would all go to REVIEW
    assert 0.7 < t_reject < 0.71
    assert propose_thresholds(
        scores, labels, None, max_apcer=0.0, max_bpcer=0.0, max_review_rate=0.7
    ).feasible


def test_propose_thresholds_genuine_scored_one_cannot_meet_bpcer():
    scores = [1.0, 1.0, 0.1, 0.9, 0.95]
    labels = ["genuine", "genuine", "genuine", "attack", "attack"]
    _, t_reject, feasible = propose_thresholds(scores, labels, None, max_apcer=0.0, max_bpcer=0.0)
    assert t_reject == 1.0
    assert not feasible


def test_propose_thresholds_worst_attack_type_sets_pass_threshold():
    scores = [0.1, 0.5, 0.9, 0.95, 0.3, 0.35]
    labels = ["genuine", "genuine", "attack", "attack", "attack", "attack"]
    types = [None, None, "easy", "easy", "hard", "hard"]
    t_pass, _, _ = propose_thresholds(scores, labels, types, max_apcer=0.0, max_bpcer=0.0)
    assert t_pass == 0.3


def test_propose_thresholds_missing_class_raises():
    with pytest.raises(EvaluationError):
        propose_thresholds([0.1, None], ["genuine", "attack"], None, max_apcer=0.05, max_bpcer=0.05)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_propose_thresholds_target_out_of_range_raises(bad):
    with pytest.raises(EvaluationError):
        propose_thresholds([0.1, 0.9], ["genuine", "attack"], None, max_apcer=bad, max_bpcer=0.05)


# --- operating report ---


def test_evaluate_counts_errors_reviews_and_nonresponses():
    scores = [0.05, 0.5, 0.95, None, 0.05, 0.5, 0.95, 0.95, None]
    labels = ["genuine"] * 4 + ["attack"] * 5
    types = [None] * 4 + ["replay", "replay", "swap", "swap", "swap"]
    report = evaluate(scores, labels, types, pass_threshold=0.2, reject_threshold=0.9)
    assert (report.apcer_by_type["replay"].errors, report.apcer_by_type["replay"].total) == (1, 2)
    assert (report.apcer_by_type["swap"].errors, report.apcer_by_type["swap"].total) == (0, 2)
    assert report.apcer_worst.value == 0.5
    assert (report.bpcer.errors, report.bpcer.total) == (1, 3)
    assert (report.review_rate.errors, report.review_rate.total) == (2, 7)
    assert (report.genuine_review_rate.errors, report.genuine_review_rate.total) == (1, 3)
    assert (report.attack_nonresponse.errors, report.attack_nonresponse.total) == (1, 5)
    assert (report.genuine_nonresponse.errors, report.genuine_nonresponse.total) == (1, 4)
    assert report.auc is not None
    assert report.to_dict()["bpcer"]["ci95"] == [report.bpcer.low, report.bpcer.high]


def test_evaluate_unknown_label_raises():
    with pytest.raises(EvaluationError, match="label"):
        evaluate([0.1], ["fraud"], pass_threshold=0.2, reject_threshold=0.9)


def test_evaluate_labels_are_case_insensitive():
    report = evaluate([0.1, 0.9], [" Genuine", "ATTACK"], pass_threshold=0.2, reject_threshold=0.9)
    assert report.auc == 1.0


# --- what the pipeline decided ---


def test_decision_rates_count_every_labelled_video_by_its_decision():
    decisions = ["PASS", "REVIEW", "REJECT", "INVALID", "PASS", "REVIEW", "REJECT", "PASS", None]
    labels = ["genuine"] * 4 + ["attack"] * 5
    types = [None] * 4 + ["replay", "replay", "swap", "swap", None]
    rates = decision_rates(decisions, labels, types)
    # Hand counts: genuine 1 PASS, 1 REVIEW, 1 REJECT, 1 INVALID; attacks 2 PASS, 1 REVIEW, 1 REJECT,
    # and one with no decision at all, which counts as ERROR (never silently dropped).
    assert {k: r.errors for k, r in rates.genuine.items()} == {
        "PASS": 1,
        "REVIEW": 1,
        "REJECT": 1,
        "INVALID": 1,
        "ERROR": 0,
    }
    assert {k: r.errors for k, r in rates.attack.items()} == {
        "PASS": 2,
        "REVIEW": 1,
        "REJECT": 1,
        "INVALID": 0,
        "ERROR": 1,
    }
    assert (rates.apcer.errors, rates.apcer.total) == (2, 5)
    assert {k: (r.errors, r.total) for k, r in rates.apcer_by_type.items()} == {
        "replay": (1, 2),
        "swap": (1, 2),
        "unspecified": (0, 1),
    }
    assert rates.apcer_worst.value == 0.5
    assert (rates.bpcer.errors, rates.bpcer.total) == (1, 4)
    assert (rates.review_rate.errors, rates.review_rate.total) == (2, 9)
    assert rates.to_dict()["bpcer"]["ci95"] == list(wilson_interval(1, 4))


def test_decision_rates_differ_from_score_rates_when_a_gate_decided():
    # A genuine video scored 0.05 that a gate sent to REVIEW, and an attack scored 0.95 sent to
    # REVIEW (two faces): by score one is a PASS and one a REJECT; the pipeline decided neither.
    scores, labels = [0.05, 0.95], ["genuine", "attack"]
    by_score = evaluate(scores, labels, pass_threshold=0.2, reject_threshold=0.9)
    by_decision = decision_rates(["REVIEW", "REVIEW"], labels)
    assert by_score.review_rate.errors == 0
    assert by_decision.review_rate.errors == 2
    assert by_decision.genuine["PASS"].errors == by_decision.attack["REJECT"].errors == 0


def test_decision_rates_length_mismatch_raises():
    with pytest.raises(EvaluationError):
        decision_rates(["PASS"], ["genuine", "attack"])


def test_bootstrap_interval_perfect_separation_is_a_point():
    scores, labels = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], ["genuine"] * 3 + ["attack"] * 3
    assert bootstrap_interval(roc_auc, scores, labels, resamples=200) == (1.0, 1.0)


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    rng = random.Random(3)
    scores = [rng.gauss(0, 1) for _ in range(40)] + [rng.gauss(1, 1) for _ in range(40)]
    labels = ["genuine"] * 40 + ["attack"] * 40
    first = bootstrap_interval(roc_auc, scores, labels, resamples=300, seed=7)
    assert first == bootstrap_interval(roc_auc, scores, labels, resamples=300, seed=7)
    assert first[0] < roc_auc(scores, labels) < first[1]


def test_bootstrap_auc_interval_width_matches_hanley_mcneil():
    # Independent oracle: the Hanley & McNeil (1982) standard error of the AUC.
    rng = random.Random(11)
    n = 150
    scores = [rng.gauss(0, 1) for _ in range(n)] + [rng.gauss(1.2, 1) for _ in range(n)]
    labels = ["genuine"] * n + ["attack"] * n
    a = roc_auc(scores, labels)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (n * n))
    low, high = bootstrap_interval(roc_auc, scores, labels, resamples=500)
    assert (high - low) == pytest.approx(2 * 1.959964 * se, rel=0.2)


def test_bootstrap_auc_interval_covers_the_true_auc():
    # Genuine ~ N(0, 1), attack ~ N(d, 1): the true AUC is Phi(d / sqrt(2)).
    d, n, trials = 1.0, 50, 60
    true_auc = 0.5 * (1 + math.erf(d / 2))
    rng = random.Random(5)
    covered = 0
    for trial in range(trials):
        scores = [rng.gauss(0, 1) for _ in range(n)] + [rng.gauss(d, 1) for _ in range(n)]
        low, high = bootstrap_interval(
            roc_auc, scores, ["genuine"] * n + ["attack"] * n, resamples=200, seed=trial
        )
        covered += low <= true_auc <= high
    assert covered / trials >= 0.85  # nominal 95 %; far below would mean the interval is too narrow


def test_bootstrap_quantile_matches_numpy_percentile():
    from kyc.domain.evaluation import _quantile

    rng = np.random.default_rng(0)
    values = sorted(rng.random(37).tolist())
    for q in (0.0, 0.025, 0.5, 0.975, 1.0):
        assert _quantile(values, q) == pytest.approx(np.percentile(values, 100 * q))


def test_evaluate_with_resamples_reports_intervals():
    scores, labels = [0.1, 0.4, 0.35, 0.8], ["genuine", "genuine", "attack", "attack"]
    report = evaluate(scores, labels, pass_threshold=0.2, reject_threshold=0.9, resamples=100)
    assert report.auc_ci95 is not None and report.eer_ci95 is not None
    assert report.auc_ci95[0] <= report.auc <= report.auc_ci95[1]
    assert evaluate(scores, labels, pass_threshold=0.2, reject_threshold=0.9).auc_ci95 is None


def test_decision_rates_report_apcer_per_fake_share_and_the_worst_type() -> None:
    """Partial fakes (issue 24), counted by hand: at 10 % two of three splices PASSed, at 50 % none;
    whole-clip attacks (no share) are the 100 % row."""
    from kyc.domain.evaluation import decision_rates

    decisions = ["PASS", "PASS", "REVIEW", "REJECT", "REJECT", "REVIEW", "PASS", "REJECT"]
    labels = ["attack"] * 7 + ["genuine"]
    types = [
        "splice-start",
        "splice-end",
        "splice-middle",
        "splice-start",
        "splice-end",
        "replay",
        "replay",
        None,
    ]
    shares = [0.1, 0.1, 0.1, 0.5, 0.5, None, None, None]

    rates = decision_rates(decisions, labels, types, shares)

    assert {k: (r.errors, r.total) for k, r in (rates.apcer_by_share or {}).items()} == {
        "10%": (2, 3),
        "50%": (0, 2),
        "100%": (1, 2),
    }
    assert {k: (r.errors, r.total) for k, r in rates.apcer_by_type.items()} == {
        "replay": (1, 2),
        "splice-end": (1, 2),
        "splice-middle": (0, 1),
        "splice-start": (1, 2),
    }
    assert (rates.apcer_worst.errors, rates.apcer_worst.total) == (1, 2)
