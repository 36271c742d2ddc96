"""Decision policy: every gate, every band, and fail-closed behaviour on missing evidence."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyc.domain.outcomes import Decision
from kyc.domain.policy import (
    DecisionPolicy,
    EvidenceError,
    FrameEvidence,
    PolicyError,
    decide_outcome,
)
from kyc.domain.reasons import ReasonCode as R

DEFAULT = DecisionPolicy()
MEAN = DecisionPolicy(aggregator="mean")


def frames(scores, faces=1):
    return [FrameEvidence(f"{i:03d}", p, faces) for i, p in enumerate(scores)]


def decide(evidence, sampled=None, policy=DEFAULT, **kwargs):
    n = len(evidence) if sampled is None else sampled
    return decide_outcome(evidence, frames_sampled=n, policy=policy, **kwargs)


# --- scored bands ---


@pytest.mark.parametrize(
    ("p", "decision", "reasons"),
    [
        (0.05, Decision.PASS, (R.LOW_FAKE_SCORE,)),
        (0.45, Decision.REVIEW, (R.MODEL_UNCERTAIN,)),  # below frame_fake_threshold: no stretch
        (0.95, Decision.REJECT, (R.HIGH_FAKE_SCORE,)),
    ],
)
def test_decide_outcome_full_evidence_maps_score_to_band(p, decision, reasons):
    verdict = decide(frames([p] * 32))
    assert (verdict.decision, verdict.reasons) == (decision, reasons)
    assert verdict.score == pytest.approx(p)
    assert (verdict.frames_sampled, verdict.frames_scored, verdict.frames_with_face) == (32, 32, 32)


def test_decide_outcome_score_equal_to_pass_threshold_is_review():
    verdict = decide(frames([0.2] * 32), policy=MEAN)
    assert verdict.score == 0.2
    assert verdict.decision is Decision.REVIEW


def test_decide_outcome_score_equal_to_reject_threshold_is_reject():
    verdict = decide(frames([0.9] * 32), policy=MEAN)
    assert verdict.score == 0.9
    assert verdict.decision is Decision.REJECT


@pytest.mark.parametrize(("p", "decision"), [(0.49, Decision.PASS), (0.5, Decision.REJECT)])
def test_decide_outcome_equal_thresholds_no_review_band(p, decision):
    policy = DecisionPolicy(aggregator="mean", pass_threshold=0.5, reject_threshold=0.5)
    assert decide(frames([p] * 32), policy=policy).decision is decision


@pytest.mark.parametrize("policy", [DEFAULT, DecisionPolicy(require_faces=False)])
def test_decide_outcome_model_without_face_counts_never_passes(policy):
    # A whole-frame classifier reports no faces: a low score on a test card is no evidence of a person.
    verdict = decide(frames([0.05] * 32, faces=None), policy=policy)
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.NO_FACE_EVIDENCE,))
    assert verdict.frames_with_face is None


def test_decide_outcome_model_without_face_counts_can_still_reject():
    verdict = decide(frames([0.95] * 32, faces=None))
    assert (verdict.decision, verdict.reasons) == (Decision.REJECT, (R.HIGH_FAKE_SCORE,))


@pytest.mark.parametrize(("with_face", "decision"), [(8, Decision.PASS), (7, Decision.REVIEW)])
def test_decide_outcome_pass_needs_min_frames_scored_with_a_face(with_face, decision):
    # 8 frames, min_frames_scored 8 (default): a frame whose model saw no face is not face evidence.
    # The face gate itself (min_face_fraction 0.5) does not trip at 7 of 8, so this is the PASS rule.
    evidence = frames([0.05] * with_face) + [FrameEvidence("x", 0.05, None)] * (8 - with_face)
    policy = DecisionPolicy(require_faces=False)
    verdict = decide(evidence, policy=policy)
    assert verdict.decision is decision
    if decision is Decision.REVIEW:
        assert verdict.reasons == (R.NO_FACE_EVIDENCE,)


# --- nothing usable ---


def test_decide_outcome_all_batches_failed_is_error_with_endpoint_reasons():
    failures = [R.ENDPOINT_THROTTLED, R.ENDPOINT_TIMEOUT, R.ENDPOINT_THROTTLED]
    verdict = decide([], sampled=32, failed_batches=4, failure_reasons=failures)
    assert verdict.decision is Decision.ERROR
    assert verdict.reasons == (R.ENDPOINT_THROTTLED, R.ENDPOINT_TIMEOUT)
    assert verdict.score is None
    assert verdict.frames_scored == 0


def test_decide_outcome_failed_batches_without_reason_is_pipeline_error():
    verdict = decide(frames([None] * 32, faces=None), failed_batches=4)
    assert (verdict.decision, verdict.reasons) == (Decision.ERROR, (R.PIPELINE_ERROR,))


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5, math.inf])
def test_decide_outcome_only_unusable_scores_is_error(bad):
    verdict = decide(frames([bad] * 32))
    assert (verdict.decision, verdict.reasons) == (Decision.ERROR, (R.UNUSABLE_SCORES,))
    assert verdict.frames_scored == 0


def test_decide_outcome_nothing_sampled_is_review_insufficient_frames():
    verdict = decide([], sampled=0)
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.INSUFFICIENT_FRAMES,))


def test_decide_outcome_no_face_anywhere_is_review_not_error():
    verdict = decide(frames([None] * 32, faces=0))
    assert verdict.decision is Decision.REVIEW
    assert verdict.reasons == (R.INSUFFICIENT_FRAMES, R.NO_FACE)
    assert verdict.frames_with_face == 0
    assert verdict.score is None


# --- evidence gates ---


def test_decide_outcome_five_frames_below_default_minimum_is_review():
    verdict = decide(frames([0.01] * 5))
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.INSUFFICIENT_FRAMES,))
    assert verdict.score == pytest.approx(0.01)  # recorded for the reviewer, not used


def test_decide_outcome_five_frames_with_matching_policy_passes():
    policy = DecisionPolicy(min_frames_scored=4)
    assert decide(frames([0.01] * 5), policy=policy).decision is Decision.PASS


def test_decide_outcome_scored_fraction_below_minimum_is_review():
    # 23 of 32 scored (< 0.75 * 32), though more than min_frames_scored
    verdict = decide(frames([0.01] * 23), sampled=32, failed_batches=1)
    assert verdict.decision is Decision.REVIEW
    assert verdict.reasons == (R.INSUFFICIENT_FRAMES, R.PARTIAL_SCORING)


def test_decide_outcome_no_face_in_most_frames_is_review_no_face():
    evidence = frames([0.01] * 15) + [FrameEvidence(f"x{i}", 0.01, 0) for i in range(17)]
    verdict = decide(evidence)
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.NO_FACE,))
    assert verdict.frames_with_face == 15


def test_decide_outcome_half_frames_with_face_passes_face_gate():
    evidence = frames([0.01] * 16) + [FrameEvidence(f"x{i}", None, 0) for i in range(16)]
    verdict = decide(evidence)
    assert (verdict.decision, verdict.reasons) == (Decision.PASS, (R.LOW_FAKE_SCORE,))


@pytest.mark.parametrize(("require", "expected"), [(True, 0.05), (False, None)])
def test_decide_outcome_faceless_frames_excluded_only_when_faces_required(require, expected):
    evidence = frames([0.05] * 24) + [FrameEvidence(f"x{i}", 0.99, 0) for i in range(8)]
    verdict = decide(evidence, policy=DecisionPolicy(aggregator="mean", require_faces=require))
    if expected is None:
        assert verdict.score == pytest.approx((24 * 0.05 + 8 * 0.99) / 32)
    else:
        assert verdict.score == pytest.approx(expected)


@pytest.mark.parametrize(("multi", "decision"), [(8, Decision.PASS), (9, Decision.REVIEW)])
def test_decide_outcome_multiple_faces_above_fraction_is_review(multi, decision):
    evidence = frames([0.01] * (32 - multi)) + frames([0.01] * multi, faces=2)
    verdict = decide(evidence)
    assert verdict.decision is decision
    assert (R.MULTIPLE_FACES in verdict.reasons) is (decision is Decision.REVIEW)


def test_decide_outcome_gate_overrides_high_score_review_not_reject():
    verdict = decide(frames([0.99] * 32, faces=3))
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.MULTIPLE_FACES,))
    assert verdict.score == pytest.approx(0.99)


def test_decide_outcome_all_gates_reported_together():
    evidence = frames([0.5] * 3, faces=2) + [FrameEvidence(f"x{i}", None, 0) for i in range(5)]
    verdict = decide(evidence, sampled=32, failed_batches=3, failure_reasons=[R.MODEL_ERROR])
    assert verdict.reasons == (
        R.INSUFFICIENT_FRAMES,
        R.NO_FACE,
        R.MULTIPLE_FACES,
        R.PARTIAL_SCORING,
        R.MODEL_ERROR,
    )


# --- partial and unusable scoring ---


def test_decide_outcome_partial_low_score_capped_at_review():
    verdict = decide(
        frames([0.01] * 24), sampled=32, failed_batches=1, failure_reasons=[R.ENDPOINT_THROTTLED]
    )
    assert verdict.decision is Decision.REVIEW
    assert verdict.reasons == (R.PARTIAL_SCORING, R.ENDPOINT_THROTTLED)


def test_decide_outcome_partial_high_score_still_rejects():
    verdict = decide(frames([0.99] * 24), sampled=32, failed_batches=1)
    assert verdict.decision is Decision.REJECT
    assert verdict.reasons == (R.HIGH_FAKE_SCORE, R.PARTIAL_SCORING)


def test_decide_outcome_partial_uncertain_is_review_with_both_reasons():
    verdict = decide(frames([0.45] * 24), sampled=32, failed_batches=1)
    assert verdict.reasons == (R.MODEL_UNCERTAIN, R.PARTIAL_SCORING)


def test_decide_outcome_partial_allowed_by_policy_passes_with_caveat():
    policy = DecisionPolicy(allow_pass_on_partial=True)
    verdict = decide(frames([0.01] * 24), sampled=32, failed_batches=1, policy=policy)
    assert (verdict.decision, verdict.reasons) == (Decision.PASS, (R.LOW_FAKE_SCORE, R.PARTIAL_SCORING))


def test_decide_outcome_unscored_frame_without_explanation_is_partial():
    evidence = [*frames([0.01] * 31), FrameEvidence("031", None, None)]
    verdict = decide(evidence)
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.PARTIAL_SCORING,))


def test_decide_outcome_missing_frames_without_failed_batch_is_partial():
    verdict = decide(frames([0.01] * 30), sampled=32)
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.PARTIAL_SCORING,))


@pytest.mark.parametrize("allow", [False, True])
def test_decide_outcome_nan_scores_never_used_and_never_pass(allow):
    evidence = [*frames([0.01] * 31), FrameEvidence("031", math.nan, 1)]
    verdict = decide(evidence, policy=DecisionPolicy(allow_pass_on_partial=allow))
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.UNUSABLE_SCORES,))
    assert verdict.score == pytest.approx(0.01)
    assert verdict.frames_scored == 31


def test_decide_outcome_nan_with_high_scores_still_rejects():
    evidence = [*frames([0.99] * 31), FrameEvidence("031", math.nan, 1)]
    verdict = decide(evidence)
    assert (verdict.decision, verdict.reasons) == (Decision.REJECT, (R.HIGH_FAKE_SCORE, R.UNUSABLE_SCORES))


def test_decide_outcome_more_evidence_than_sampled_raises():
    with pytest.raises(EvidenceError):
        decide(frames([0.1] * 5), sampled=4)


# --- properties ---

frame_st = st.builds(
    FrameEvidence,
    frame_id=st.text(min_size=1, max_size=4),
    p_fake=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1)),
    face_count=st.one_of(st.none(), st.integers(0, 3)),
)


@given(
    evidence=st.lists(frame_st, max_size=40),
    extra=st.integers(0, 8),
    failed=st.integers(1, 4),
)
def test_decide_outcome_failed_batches_never_pass_with_default_policy(evidence, extra, failed):
    verdict = decide(evidence, sampled=len(evidence) + extra, failed_batches=failed)
    assert verdict.decision is not Decision.PASS


@given(evidence=st.lists(frame_st, max_size=40), extra=st.integers(0, 8), failed=st.integers(0, 2))
def test_decide_outcome_any_evidence_verdict_is_consistent(evidence, extra, failed):
    verdict = decide(evidence, sampled=len(evidence) + extra, failed_batches=failed)
    assert verdict.reasons, "every decision carries a reason"
    assert verdict.decision is not Decision.INVALID
    if verdict.decision is Decision.PASS:
        assert verdict.reasons == (R.LOW_FAKE_SCORE,)
        assert verdict.score < DEFAULT.pass_threshold
        assert all((e.p_fake is not None and 0 <= e.p_fake <= 1) or e.face_count == 0 for e in evidence)
    if verdict.decision is Decision.REJECT:
        assert verdict.score >= DEFAULT.reject_threshold
    if verdict.score is not None:
        assert 0.0 <= verdict.score <= 1.0
    json.dumps(verdict.to_dict())


# --- policy documents ---


def test_policy_from_mapping_override_round_trips():
    doc = {
        "version": "2026-12-bank-a",
        "aggregator": "confident_mean",
        "aggregator_params": {"min_fake_count": 0, "min_fake_fraction": 0.4},
        "pass_threshold": 0.12,
        "reject_threshold": 0.7,
        "min_frames_scored": 12,
        "allow_pass_on_partial": False,
    }
    policy = DecisionPolicy.from_mapping(doc)
    assert policy.aggregator_params == {"min_fake_count": 0, "min_fake_fraction": 0.4}
    assert DecisionPolicy.from_mapping(json.loads(json.dumps(policy.to_dict()))) == policy
    assert policy.min_scored_fraction == DEFAULT.min_scored_fraction
    hash(policy)


def test_policy_from_mapping_empty_is_default():
    assert DecisionPolicy.from_mapping({}) == DEFAULT


def test_policy_default_thresholds_leave_a_review_band():
    assert 0.0 < DEFAULT.pass_threshold < 0.5 < DEFAULT.reject_threshold < 1.0


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"pass_threshold": 0.8, "reject_threshold": 0.7}, "must be <= reject_threshold"),
        ({"reject_threshold": 1.2}, "reject_threshold must be a number in \\[0, 1\\]"),
        ({"pass_threshold": math.nan}, "pass_threshold"),
        ({"pass_threshold": "0.1"}, "pass_threshold"),
        ({"aggregator": "median"}, "unknown aggregator"),
        ({"aggregator": "top_k_mean", "aggregator_params": {"k": 0}}, "'k'"),
        ({"aggregator_params": {"k": 3}}, "has no parameter 'k'"),
        ({"aggregator_params": [1, 2]}, "aggregator_params must be an object"),
        ({"min_frames_scored": 0}, "min_frames_scored"),
        ({"min_frames_scored": 7.5}, "min_frames_scored"),
        ({"require_faces": "false"}, "require_faces must be true or false"),
        ({"allow_pass_on_partial": 1}, "allow_pass_on_partial"),
        ({"version": ""}, "version"),
        ({"pass_treshold": 0.1}, "unknown policy keys: pass_treshold"),
    ],
)
def test_policy_from_mapping_invalid_document_raises_policy_error(doc, message):
    with pytest.raises(PolicyError, match=message):
        DecisionPolicy.from_mapping(doc)


def test_policy_from_mapping_not_an_object_raises_policy_error():
    with pytest.raises(PolicyError, match="JSON object"):
        DecisionPolicy.from_mapping([("pass_threshold", 0.1)])  # type: ignore[arg-type]


def test_policy_aggregator_params_are_read_only():
    policy = DecisionPolicy(aggregator="top_k_mean", aggregator_params={"k": 4})
    with pytest.raises(TypeError):
        policy.aggregator_params["k"] = 1  # type: ignore[index]


def test_verdict_to_dict_is_plain_json():
    verdict = decide(frames([0.95] * 32))
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["decision"] == "REJECT"
    assert data["reasons"] == ["HIGH_FAKE_SCORE"]
    assert data["policy"]["version"] == "2026-11-default"
    assert set(data) == {
        "decision",
        "reasons",
        "score",
        "frames_sampled",
        "frames_scored",
        "frames_with_face",
        "policy",
    }


def test_decide_path_imports_without_numpy():
    # The decide function's layer ships no numpy: aggregation and policy must stay pure Python.
    code = "import sys, kyc.domain.policy, kyc.domain.aggregate; assert 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- findings made beside the model (provenance, reuse, face stage, calibration) ---

from kyc.domain.policy import Effect, Finding, apply_findings  # noqa: E402

PASSING = frames([0.05] * 10)
REJECTING = frames([0.97] * 10)


def test_findings_none_leave_the_verdict_unchanged():
    verdict = decide(PASSING)
    assert apply_findings(verdict, []) is verdict


@pytest.mark.parametrize(
    ("evidence", "effect", "decision", "reasons"),
    [
        (PASSING, Effect.NO_PASS, Decision.REVIEW, [R.INSUFFICIENT_FRAMES]),
        (REJECTING, Effect.NO_PASS, Decision.REJECT, [R.HIGH_FAKE_SCORE, R.INSUFFICIENT_FRAMES]),
        (PASSING, Effect.REVIEW, Decision.REVIEW, [R.INSUFFICIENT_FRAMES]),
        (REJECTING, Effect.REVIEW, Decision.REVIEW, [R.INSUFFICIENT_FRAMES]),
        (PASSING, Effect.REJECT, Decision.REJECT, [R.INSUFFICIENT_FRAMES]),
        (REJECTING, Effect.REJECT, Decision.REJECT, [R.INSUFFICIENT_FRAMES, R.HIGH_FAKE_SCORE]),
    ],
)
def test_finding_effect_bounds_scored_decision(evidence, effect, decision, reasons):
    # INSUFFICIENT_FRAMES stands in for any finding's reason code
    verdict = apply_findings(decide(evidence), [Finding(R.INSUFFICIENT_FRAMES, effect)])
    assert verdict.decision == decision
    assert list(verdict.reasons) == reasons
    assert verdict.score == decide(evidence).score


def test_strongest_finding_wins_and_every_reason_is_kept():
    findings = [Finding(R.MODEL_UNCERTAIN, Effect.NO_PASS), Finding(R.NO_FACE, Effect.REJECT)]
    verdict = apply_findings(decide(PASSING), findings)
    assert verdict.decision == Decision.REJECT
    assert list(verdict.reasons) == [R.NO_FACE, R.MODEL_UNCERTAIN]


def test_reject_finding_decides_even_when_scoring_failed():
    failed = decide([], sampled=10, failed_batches=2, failure_reasons=[R.ENDPOINT_UNAVAILABLE])
    assert failed.decision == Decision.ERROR
    assert apply_findings(failed, [Finding(R.NO_FACE, Effect.NO_PASS)]).decision == Decision.ERROR
    verdict = apply_findings(failed, [Finding(R.NO_FACE, Effect.REJECT)])
    assert verdict.decision == Decision.REJECT
    assert list(verdict.reasons) == [R.NO_FACE, R.ENDPOINT_UNAVAILABLE]


@given(
    st.lists(st.floats(0, 1), min_size=0, max_size=12),
    st.lists(st.sampled_from(list(Effect)), min_size=1, max_size=3),
)
def test_findings_never_make_a_decision_more_lenient(scores, effects):
    order = {Decision.PASS: 0, Decision.REVIEW: 1, Decision.REJECT: 2, Decision.ERROR: 2}
    verdict = decide(frames(scores), sampled=12)
    bounded = apply_findings(verdict, [Finding(R.NO_FACE, e) for e in effects])
    assert bounded.decision != Decision.PASS
    assert R.NO_FACE in bounded.reasons
    if Effect.REVIEW not in effects:
        assert order[bounded.decision] >= order[verdict.decision]
