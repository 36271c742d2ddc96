"""The sampling plan: evenly spaced targets and the frame on screen at each, in batch and streaming form."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyc.domain.sampling_plan import (
    FrameSelector,
    SamplingPlanError,
    briefly_shown,
    coverage_gap,
    frames_on_screen,
    plan_sampling,
    timing_findings,
    typical_frame_s,
)


def _stream(times: list[float], targets: tuple[float, ...]) -> list[int]:
    selector: FrameSelector[int] = FrameSelector(targets)
    chosen: list[int] = []
    for index, time_s in enumerate(times):
        chosen += selector.offer(time_s, index)
    return chosen + selector.finish()


def test_plan_sampling_ten_seconds_four_frames_bin_centres() -> None:
    plan = plan_sampling(10.0, 4, start_s=1.0)
    assert plan.targets_s == (2.25, 4.75, 7.25, 9.75)


@pytest.mark.parametrize(("duration", "count"), [(0.0, 32), (-1.0, 32), (float("nan"), 32), (5.0, 0)])
def test_plan_sampling_bad_input_raises(duration: float, count: int) -> None:
    with pytest.raises(SamplingPlanError):
        plan_sampling(duration, count)


def test_frames_on_screen_constant_rate_picks_frame_shown_at_each_target() -> None:
    times = [i / 30 for i in range(60)]  # 2 s at 30 fps
    chosen = frames_on_screen(times, plan_sampling(2.0, 4).targets_s)  # 0.25, 0.75, 1.25, 1.75
    assert chosen == (7, 22, 37, 52)


def test_frames_on_screen_fewer_frames_than_targets_no_duplicates() -> None:
    times = [0.0, 0.5, 1.0]
    assert frames_on_screen(times, plan_sampling(1.5, 32).targets_s) == (0, 1, 2)


def test_frames_on_screen_long_still_then_burst_keeps_the_still() -> None:
    times = [0.0, 3.0, 3.05, 3.1]  # VFR: one frame shown for 3 s, then a burst
    assert frames_on_screen(times, plan_sampling(4.0, 4).targets_s) == (0, 3)


def test_frame_selector_non_increasing_time_ignored() -> None:
    assert _stream([0.0, 0.5, 0.5, 0.2, 1.0], plan_sampling(1.5, 3).targets_s) == [0, 1, 4]


def test_frame_selector_done_after_last_target_resolved() -> None:
    selector: FrameSelector[int] = FrameSelector((0.5,))
    assert selector.offer(0.4, 0) == []
    assert not selector.done
    assert selector.offer(0.6, 1) == [0]
    assert selector.done and selector.next_target_s is None


@given(
    gaps=st.lists(st.floats(min_value=0.001, max_value=2.0), min_size=1, max_size=80),
    count=st.integers(min_value=1, max_value=40),
    offset=st.floats(min_value=-0.5, max_value=0.5),
)
def test_frame_selector_matches_frames_on_screen_for_any_timing(
    gaps: list[float], count: int, offset: float
) -> None:
    times = [sum(gaps[:i]) for i in range(len(gaps))]
    targets = plan_sampling(times[-1] + gaps[-1], count, start_s=offset).targets_s
    expected = frames_on_screen(times, targets)
    assert _stream(times, targets) == list(expected)
    assert len(set(expected)) == len(expected) <= count


@given(
    gaps=st.lists(st.floats(min_value=0.001, max_value=0.5), min_size=1, max_size=80),
    count=st.integers(min_value=1, max_value=40),
    seed=st.binary(min_size=16, max_size=16),
)
def test_targets_move_off_taken_frames_but_never_out_of_their_bin(
    gaps: list[float], count: int, seed: bytes
) -> None:
    times = [sum(gaps[:i]) for i in range(len(gaps))]
    duration = times[-1] + gaps[-1]
    plan = plan_sampling(duration, count, seed=seed, min_gap_s=typical_frame_s(times), shown_s=times)
    step = duration / count
    for i, target in enumerate(plan.targets_s):
        assert i * step - 1e-9 <= target < (i + 1) * step + 1e-9
    chosen = frames_on_screen(times, plan.targets_s)
    assert _stream(times, plan.targets_s) == list(chosen)
    # the oracle: bins holding a frame start, counted by hand; each can give a frame of its own
    # (the first bin always has one: the frame on screen at its target)
    bins_with_a_start = {0} | {min(int(t / step), count - 1) for t in times if t < duration}
    assert len(chosen) >= len(bins_with_a_start)
    unspread = plan_sampling(duration, count, seed=seed, min_gap_s=typical_frame_s(times))
    assert len(chosen) >= len(frames_on_screen(times, unspread.targets_s))  # never fewer than before


@pytest.mark.parametrize(
    ("sampled", "problem"),
    [
        ([0.1, 0.4, 0.7, 0.9], None),  # 4 targets over [0, 1): bins of 0.25, frames 0.1 s apart
        ([0.4, 0.7, 0.9], "first"),  # 0.4 s > one bin (0.25) + one frame (0.1) after the start
        ([0.1, 0.4, 0.6], "last"),  # 0.4 s before the end > 0.35
        ([0.1, 0.75, 0.9], "stretch"),  # a 0.65 s gap > 2 bins + one frame = 0.6
        ([0.1, 0.59, 0.9], None),  # 0.49 s: within 2 bins + one frame
        ([], "nothing"),
    ],
)
def test_coverage_gap_hand_computed(sampled: list[float], problem: str | None) -> None:
    gap = coverage_gap(sampled, 0.0, 1.0, 4, 0.1)
    assert (gap is None) if problem is None else (problem in gap)


def test_seeded_targets_one_per_bin_secret_offsets_hand_computed() -> None:
    import hashlib
    import hmac

    seed = bytes(range(16))
    plan = plan_sampling(8.0, 4, start_s=1.0, seed=seed)
    for i, target in enumerate(plan.targets_s):
        digest = hmac.new(seed, b"kyc.sampling/1:" + i.to_bytes(4, "big"), hashlib.sha256).digest()
        assert target == pytest.approx(1.0 + (i + int.from_bytes(digest[:8], "big") / 2**64) * 2.0)
        assert 1.0 + 2.0 * i <= target < 1.0 + 2.0 * (i + 1)
    spaced = plan_sampling(8.0, 4, start_s=1.0, seed=seed, min_gap_s=0.4)  # margin 0.1 of a 2 s bin
    for i, target in enumerate(spaced.targets_s):
        digest = hmac.new(seed, b"kyc.sampling/1:" + i.to_bytes(4, "big"), hashlib.sha256).digest()
        assert target == pytest.approx(
            1.0 + (i + 0.1 + 0.8 * int.from_bytes(digest[:8], "big") / 2**64) * 2.0
        )
    assert min(b - a for a, b in itertools.pairwise(spaced.targets_s)) >= 0.4
    other = plan_sampling(8.0, 4, start_s=1.0, seed=bytes(16))
    assert other.targets_s != plan.targets_s  # another submission, other moments
    assert plan_sampling(8.0, 4, start_s=1.0, seed=seed) == plan  # the recorded seed reproduces it


def test_briefly_shown_frames_hand_computed() -> None:
    shown = [0.0, 0.04, 0.08, 0.085, 0.12, 0.16]  # 0.08 is on screen for 5 ms of a typical 40 ms
    assert briefly_shown([0.0, 0.08, 0.12], shown) == (1,)
    assert briefly_shown([0.0, 0.085, 0.16], shown) == ()  # 0.085 holds 35 ms, the last never brief
    assert timing_findings(1)[0].reason == "SHORT_FRAME_SAMPLED" and timing_findings(0) == []


def test_typical_frame_is_weighted_by_screen_time_so_decoys_cannot_move_it() -> None:
    import statistics

    genuine = [i * 0.04 for i in range(10)]
    decoys = [t + d for t in genuine for d in (0.03, 0.035)]  # two 5 ms frames beside each genuine one
    shown = sorted(genuine + decoys)
    intervals = [b - a for a, b in itertools.pairwise(shown)]
    assert statistics.median(intervals) == pytest.approx(0.005)  # a plain median: decoys look typical
    assert typical_frame_s(shown) == pytest.approx(0.03)  # by screen time: the genuine frames
    assert briefly_shown(decoys[:4], shown) == (0, 1, 2, 3)


def test_typical_frame_ignores_stills_of_a_variable_rate_camera() -> None:
    frames = [i / 30 for i in range(30)]
    shown = frames + [1.0 + 1.2] + [2.2 + i / 30 for i in range(1, 30)]  # a 1.2 s still in the middle
    assert typical_frame_s(shown) == pytest.approx(1 / 30)
    assert briefly_shown(shown[:-1], shown) == ()
