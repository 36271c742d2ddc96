"""A fake stretch cannot hide in the mean (issue 24): the sustained-fake-frames rule, hand-computed cases."""

from __future__ import annotations

import math

import pytest

from kyc.domain.outcomes import Decision
from kyc.domain.policy import (
    DecisionPolicy,
    FrameEvidence,
    PolicyError,
    decide_outcome,
    sustained_fake_frames,
)
from kyc.domain.reasons import ReasonCode as R


def _frames(scores: list[float]) -> list[FrameEvidence]:
    return [FrameEvidence(f"{i:03d}", p, 1) for i, p in enumerate(scores)]


def test_the_issues_dilution_attack_no_longer_passes() -> None:
    """32 frames, 11 of them (34 %) a confident attack (0.99) amid genuine frames at 0.01. By hand:
    mean logit = (11 * 4.595 - 21 * 4.595) / 32 = -1.436, sigmoid 0.192 < 0.2: the mean PASSes it."""
    scores = [0.01] * 10 + [0.99] * 11 + [0.01] * 11
    logit = (11 * math.log(99) - 21 * math.log(99)) / 32
    assert 1 / (1 + math.exp(-logit)) < 0.2  # the oracle: the mean alone would PASS

    verdict = decide_outcome(_frames(scores), frames_sampled=32, policy=DecisionPolicy())

    assert verdict.score is not None and verdict.score < 0.2
    assert (verdict.decision, verdict.reasons) == (Decision.REVIEW, (R.SUSTAINED_FAKE_FRAMES,))


@pytest.mark.parametrize(
    ("scores", "sustained"),
    [
        ([0.01] * 32, False),
        ([0.9, 0.9] + [0.01] * 30, False),  # two in a row: the run limit is 2
        ([0.9, 0.9, 0.9] + [0.01] * 29, True),  # three in a row
        ([0.01] * 29 + [0.5, 0.5, 0.5], True),  # at the end, exactly at the frame threshold
        ([0.01] * 29 + [0.49, 0.49, 0.49], False),  # just below it
        ([0.9 if i % 8 == 0 else 0.01 for i in range(32)], False),  # 4 of 32 spread: 12.5 %, not more
        ([0.9 if i % 6 == 0 else 0.01 for i in range(32)], True),  # 6 of 32 spread: 18.75 %
    ],
)
def test_run_and_share_limits(scores: list[float], sustained: bool) -> None:
    assert sustained_fake_frames(_frames(scores), DecisionPolicy()) is sustained


def test_run_is_counted_in_time_order_not_batch_order() -> None:
    """Batches may come back in any order; frame ids are the sampled (time) order."""
    frames = _frames([0.01] * 10 + [0.9] * 3 + [0.01] * 19)
    shuffled = frames[20:] + frames[:20]
    assert sustained_fake_frames(shuffled, DecisionPolicy())


def test_a_confident_reject_stands_and_an_uncertain_clip_names_the_stretch() -> None:
    policy = DecisionPolicy()
    reject = decide_outcome(_frames([0.99] * 32), frames_sampled=32, policy=policy)
    assert (reject.decision, reject.reasons) == (Decision.REJECT, (R.HIGH_FAKE_SCORE,))
    uncertain = decide_outcome(_frames([0.3] * 20 + [0.95] * 12), frames_sampled=32, policy=policy)
    assert (uncertain.decision, uncertain.reasons) == (
        Decision.REVIEW,
        (R.MODEL_UNCERTAIN, R.SUSTAINED_FAKE_FRAMES),
    )


def test_rule_parameters_are_validated() -> None:
    with pytest.raises(PolicyError):
        DecisionPolicy(frame_fake_threshold=1.5)
    with pytest.raises(PolicyError):
        DecisionPolicy(max_fake_run_frames=-1)
    with pytest.raises(PolicyError):
        DecisionPolicy(max_fake_frame_fraction=2.0)
