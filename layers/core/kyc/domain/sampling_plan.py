"""Which moments of a clip the model sees: one secret-jittered target per equal bin, and the frame on
screen at each.

Pure (no PyAV): the media layer feeds decoded frame times into a ``FrameSelector`` and the
tests check it against ``frames_on_screen``, the same rule written over a whole list. Times are
seconds on the clip's own clock; the caller picks the origin (the first displayed frame).

Targets at fixed fractions of the span can be predicted by the applicant, who can then hold a
different frame for a few milliseconds around each one. So each target lies at an offset within
its bin drawn from a per-submission seed the applicant never sees (``bin_offsets``); the seed is
recorded with the sample, which makes the sample reproducible (docs/sampling.md).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from kyc.domain.policy import Effect, Finding
from kyc.domain.reasons import ReasonCode

T = TypeVar("T")
JITTER_DOMAIN = b"kyc.sampling/1:"  # HMAC message prefix: changing it changes every sample
# A sampled frame shown for less than this fraction of the clip's typical frame duration is a
# finding: it must not stand for its bin alone.
SHORT_FRAME_RATIO = 0.5
_TIME_SLACK_S = 1e-5
STILL_S = 0.25  # a frame held longer is a still, not the camera's cadence (4 fps)


class SamplingPlanError(ValueError):
    """The plan cannot be made (no positive duration, no frames requested)."""


@dataclass(frozen=True)
class SamplingPlan:
    """``requested`` target times, one inside each of ``requested`` equal bins over
    ``[start_s, start_s + duration_s)``: at the bin's centre without a seed, at a secret offset with one.
    """

    requested: int
    start_s: float
    duration_s: float
    targets_s: tuple[float, ...]


def plan_sampling(
    duration_s: float,
    count: int,
    *,
    start_s: float = 0.0,
    seed: bytes | None = None,
    min_gap_s: float = 0.0,
    shown_s: Sequence[float] = (),
) -> SamplingPlan:
    """Plan ``count`` targets over ``duration_s`` seconds from ``start_s``, one in each equal bin.

    Target ``i`` is ``start_s + (i + m + u_i * (1 - 2m)) * step`` with ``step = duration_s / count``,
    ``u_i = bin_offsets(seed, count)[i]`` (0.5 without a seed) and the margin
    ``m = min(0.25, min_gap_s / (2 * step))``: targets in neighbouring bins stay at least
    ``min_gap_s`` (one typical frame) apart, so they do not land on one frame and shrink the sample.

    With ``shown_s`` (every shown frame's start, from the packets), a target that would still land on
    the frame an earlier target took moves to the next frame that starts inside its own bin
    (``spread_over_frames``): a clip with at least one frame start per bin yields ``count`` frames.
    """
    if count < 1:
        raise SamplingPlanError(f"frame count must be at least 1, not {count}")
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise SamplingPlanError(f"duration must be positive and finite, not {duration_s}")
    step = duration_s / count
    margin = min(0.25, max(0.0, min_gap_s) / (2 * step)) if math.isfinite(min_gap_s) else 0.25
    offsets = (0.5,) * count if seed is None else bin_offsets(seed, count)
    targets = tuple(start_s + (i + margin + u * (1 - 2 * margin)) * step for i, u in enumerate(offsets))
    if shown_s:
        targets = spread_over_frames(targets, shown_s, start_s=start_s, step_s=step)
    return SamplingPlan(requested=count, start_s=start_s, duration_s=duration_s, targets_s=targets)


def spread_over_frames(
    targets_s: Sequence[float], shown_s: Sequence[float], *, start_s: float, step_s: float
) -> tuple[float, ...]:
    """Move each target that would land on an already-taken frame to the next frame starting in its bin.

    Where bins are shorter than two frames (a 1 s, 10 fps clip sampled at 8), two jittered targets
    can fall on one frame, the sample shrinks below the frame count and an honest short clip is
    REVIEW ``INSUFFICIENT_FRAMES`` by chance. The moved target lies midway through the next frame
    (up to its bin's end), so float rounding of decoded times cannot put it on a neighbour.

    Why it gives the applicant nothing: a target only moves forward, inside its own bin, onto a
    frame no target has taken; no frame is taken twice, so no frame's weight grows, and the sample
    covers more of the clip, not less. A bin holding no new frame start keeps its collision
    (the clip has fewer frames there than targets). ``shown_s`` must be sorted and distinct.
    """
    spread: list[float] = []
    last = -1
    for i, target in enumerate(targets_s):
        at = max(bisect_right(shown_s, target) - 1, 0)
        if at <= last:
            following = last + 1
            bin_end = start_s + (i + 1) * step_s
            if following < len(shown_s) and shown_s[following] < bin_end:
                until = shown_s[following + 1] if following + 1 < len(shown_s) else bin_end
                target = (shown_s[following] + min(until, bin_end)) / 2
                at = following
        spread.append(target)
        last = max(last, at)
    return tuple(spread)


def bin_offsets(seed: bytes, count: int) -> tuple[float, ...]:
    """Where in each bin the target lies, in [0, 1): ``HMAC-SHA256(seed, JITTER_DOMAIN || i as 4 bytes)``,
    first 8 bytes big-endian over 2**64. Unpredictable without the seed, identical with it."""
    if len(seed) < 16:
        raise SamplingPlanError("the sampling seed must hold at least 128 bits")
    return tuple(
        int.from_bytes(
            hmac.new(seed, JITTER_DOMAIN + i.to_bytes(4, "big"), hashlib.sha256).digest()[:8], "big"
        )
        / 2**64
        for i in range(count)
    )


def typical_frame_s(shown_s: Sequence[float]) -> float:
    """The clip's typical frame duration: the median of the intervals between distinct shown times,
    weighted by screen time, over the intervals of a moving picture (at most ``STILL_S``); 0 for
    one frame.

    Weighted, because a plain median is the attacker's to move: insert two short frames beside
    every genuine one and the "typical" frame is short, so the decoys no longer look brief. Brief
    frames hold little screen time, so they cannot shift this median without holding the screen.
    Stills (a variable-frame-rate camera holding a picture for a second) are left out, or they
    would make every ordinary frame look brief.
    """
    intervals = sorted(b - a for a, b in itertools.pairwise(sorted(set(shown_s))))
    moving = [i for i in intervals if i <= STILL_S] or intervals
    half, held = sum(moving) / 2, 0.0
    for interval in moving:
        held += interval
        if held >= half:
            return interval
    return 0.0


def briefly_shown(sampled_s: Sequence[float], shown_s: Sequence[float]) -> tuple[int, ...]:
    """Positions in ``sampled_s`` of frames on screen for less than ``SHORT_FRAME_RATIO`` of the
    typical frame duration (the interval to the next shown time; the last frame is never brief).

    ``shown_s`` are the times of every shown frame (from the packets, not only the decoded ones).
    """
    ordered = sorted(set(shown_s))
    limit = SHORT_FRAME_RATIO * typical_frame_s(ordered)
    brief = []
    for position, time_s in enumerate(sampled_s):
        # Sampled times are rounded to the microsecond in the manifest: the next shown time is the
        # first one past that rounding, never the frame itself.
        after = bisect_right(ordered, time_s + _TIME_SLACK_S)
        if after < len(ordered) and ordered[after] - time_s < limit:
            brief.append(position)
    return tuple(brief)


def timing_findings(briefly_shown_frames: int | None) -> list[Finding]:
    """A sample holding a frame shown for a fraction of a frame is no evidence for a PASS: the
    applicant may have placed it where a target could land (SHORT_FRAME_SAMPLED, NO_PASS)."""
    return [Finding(ReasonCode.SHORT_FRAME_SAMPLED, Effect.NO_PASS)] if briefly_shown_frames else []


def frames_on_screen(frame_times_s: Sequence[float], targets_s: Sequence[float]) -> tuple[int, ...]:
    """Indices of the frames on screen at each target, without duplicates, in time order.

    The frame on screen at ``t`` is the last one whose presentation time is <= ``t`` (the first
    frame for a target before it). ``frame_times_s`` must be strictly increasing.
    """
    if not frame_times_s:
        return ()
    chosen: list[int] = []
    for target in targets_s:
        index = max(bisect_right(frame_times_s, target) - 1, 0)
        if not chosen or index > chosen[-1]:
            chosen.append(index)
    return tuple(chosen)


class FrameSelector(Generic[T]):
    """Streaming form of ``frames_on_screen``: offer frames in time order, collect the chosen ones.

    A frame is only known to be on screen at a target once a later frame (or the end of the
    stream) shows that nothing else came before the target, so one frame is held back. Frames
    that do not advance time are ignored (broken timestamps must not produce duplicates).
    """

    def __init__(self, targets_s: Sequence[float]) -> None:
        self._targets = tuple(targets_s)
        self._next = 0
        self._pending: tuple[float, T] | None = None
        self._pending_chosen = False

    @property
    def done(self) -> bool:
        """Every target has its frame: nothing later in the stream can change the sample."""
        return self._next >= len(self._targets)

    @property
    def next_target_s(self) -> float | None:
        return None if self.done else self._targets[self._next]

    def offer(self, time_s: float, item: T) -> list[T]:
        """Offer the next frame; return the items this arrival makes final (0, 1 or 2 of them)."""
        if self._pending is not None and time_s <= self._pending[0]:
            return []
        chosen: list[T] = []
        chosen_now = False
        while not self.done and time_s > self._targets[self._next]:
            if self._pending is None:
                chosen_now = True  # a target before the first frame: the first frame stands in
            elif not self._pending_chosen:
                chosen.append(self._pending[1])
                self._pending_chosen = True
            self._next += 1
        if chosen_now:
            chosen.append(item)
        self._pending, self._pending_chosen = (time_s, item), chosen_now
        return chosen

    def finish(self) -> list[T]:
        """End of stream: the last frame stays on screen for any targets still open."""
        if self.done or self._pending is None:
            self._next = len(self._targets)
            return []
        self._next = len(self._targets)
        if self._pending_chosen:
            return []
        self._pending_chosen = True
        return [self._pending[1]]


def coverage_gap(
    sampled_s: Sequence[float], start_s: float, duration_s: float, requested: int, frame_s: float
) -> str | None:
    """Why a sample does not cover ``[start_s, start_s + duration_s)``, or None when it does.

    The rule (docs/sampling.md): with ``bin = duration / requested`` and ``frame_s`` the longest
    interval between frames, the first sample is within one bin of the start, the last within
    one bin plus one frame of the end, and no two samples are more than 2 bins plus one frame
    apart (two targets jittered to the far ends of neighbouring bins). A sample that breaks it
    left part of the clip unseen (frames that do not decode).
    """
    if not sampled_s:
        return "nothing was sampled"
    bin_s, slack = duration_s / requested, 1e-3
    if sampled_s[0] - start_s > bin_s + frame_s + slack:
        return f"nothing sampled in the first {sampled_s[0] - start_s:.3f} s"
    end = start_s + duration_s
    if end - sampled_s[-1] > bin_s + frame_s + slack:
        return f"nothing sampled in the last {end - sampled_s[-1]:.3f} s"
    gaps = [b - a for a, b in itertools.pairwise(sampled_s)]
    if gaps and max(gaps) > 2 * bin_s + frame_s + slack:
        return f"a {max(gaps):.3f} s stretch has no sampled frame"
    return None
