"""The timeline that plays, measured from packet timestamps, and the header's claim beside it.

Every header field is the uploader's: ``mvhd``/``tkhd``/``mdhd`` durations and Matroska's
Segment ``Duration`` can be edited without touching a picture. What a player shows is decided by
the packets' presentation times (after the demuxer has applied any edit list), so the sampler
plans its targets from those, and a header that disagrees with them is recorded and refused.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import av

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError

# Packets a decoder may hold back to reorder (the largest H.264/HEVC DPB): a packet may be shown
# before at most this many packets that precede it in the file, never before an older one.
MAX_REORDER = 16


@dataclass
class PacketTimeline:
    """Accumulates the displayed span of one stream, packet by packet, without decoding.

    Packets the demuxer flags as discarded (decoded only to prime a later frame, outside the
    edit list) are counted but never extend the span: they are not shown.

    Every packet's time is also checked against the ones before it (``add`` raises
    INCONSISTENT_TIMING): decode order may differ from display order only by reordering, so a
    packet shown before one that is more than ``MAX_REORDER`` packets older, or before any packet
    of an earlier GOP (a keyframe flag starts a GOP here; a false flag only makes this stricter),
    goes back in time. A whole GOP or fragment whose block times or ``tfdt`` jump backwards is
    refused here, before the sampler could skip it undecoded.
    """

    time_base: Fraction | None
    packets: int = 0
    untimed: int = 0  # shown packets with no presentation time
    first: Fraction | None = None
    last_start: Fraction | None = None
    last_end: Fraction | None = None
    starts: list[Fraction] = field(default_factory=list)
    _window: deque = field(default_factory=lambda: deque(maxlen=MAX_REORDER))
    _older_max: Fraction | None = None  # latest time among packets out of the reorder window
    _gop_floor: Fraction | None = None  # latest time among packets before the current GOP

    def add(self, packet: av.Packet) -> None:
        if not packet.size:
            return
        self.packets += 1
        if packet.pts is None or not self.time_base:
            self.untimed += 0 if packet.is_discard else 1
            return
        start = packet.pts * self.time_base
        # Discarded packets are checked too: FFmpeg marks a fragment whose ``tfdt`` jumps back as
        # discarded and hides it, where another player may show it.
        self._check_order(start, bool(packet.is_keyframe))
        if packet.is_discard:
            return
        end = start + (packet.duration or 0) * self.time_base
        self.starts.append(start)
        self.first = start if self.first is None else min(self.first, start)
        self.last_start = start if self.last_start is None else max(self.last_start, start)
        self.last_end = end if self.last_end is None else max(self.last_end, end)

    def _check_order(self, start: Fraction, keyframe: bool) -> None:
        latest = max((t for t in (self._older_max, *self._window) if t is not None), default=None)
        if keyframe and latest is not None:
            self._gop_floor = latest
        floor = max((t for t in (self._older_max, self._gop_floor) if t is not None), default=None)
        if floor is not None and start < floor:
            message = f"packet times go back: {float(start):.3f} s after {float(floor):.3f} s"
            raise MediaRefusedError(ReasonCode.INCONSISTENT_TIMING, message)
        if len(self._window) == self._window.maxlen:
            oldest = self._window[0]
            self._older_max = oldest if self._older_max is None else max(self._older_max, oldest)
        self._window.append(start)

    def check_timed(self) -> None:
        """Refuse a stream in which some shown packets carry no time (Matroska lacing without any
        duration): FFmpeg decodes and a player shows them, but nothing says when, so what plays
        cannot be sampled. A stream with no time at all is DURATION_UNKNOWN (``span_s`` is None)."""
        if self.untimed and self.first is not None:
            message = f"{self.untimed} of {self.packets} frames carry no presentation time"
            raise MediaRefusedError(ReasonCode.UNTIMED_FRAMES, message)

    @property
    def start_s(self) -> float | None:
        return None if self.first is None else float(self.first)

    @property
    def longest_interval_s(self) -> float:
        """The longest time any one shown frame stays on screen (0 for a single frame)."""
        ordered = sorted(set(self.starts))
        return float(max((b - a for a, b in itertools.pairwise(ordered)), default=0))

    @property
    def span_s(self) -> float | None:
        """Seconds from the first shown frame's start to the last one's end.

        Muxers often write no (or a bogus 1 ms) duration on the last packet, so the last frame is
        given at least one mean frame interval.
        """
        if self.first is None or self.last_start is None or self.last_end is None:
            return None
        span = float(self.last_end - self.first)
        if self.packets > 1:
            span = max(span, float(self.last_start - self.first) * self.packets / (self.packets - 1))
        return span if math.isfinite(span) and span > 0 else None


def header_duration(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """What the headers claim: the track's duration, else the container's; None when absent."""
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / av.time_base
    return seconds if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


def timing_tolerance_s(measured_s: float, tolerance_s: float, tolerance_ratio: float) -> float:
    """How far a header may be from the measured span: the larger of a fixed and a relative margin."""
    return max(tolerance_s, tolerance_ratio * measured_s)


def check_header_matches(
    header_s: float | None, measured_s: float, tolerance_s: float, tolerance_ratio: float
) -> None:
    """Refuse a file whose header duration disagrees with what its packets span (INCONSISTENT_TIMING).

    No header duration (live-recorded WebM) is not a disagreement: there is nothing to lie with.
    """
    if header_s is None:
        return
    allowed = timing_tolerance_s(measured_s, tolerance_s, tolerance_ratio)
    if abs(header_s - measured_s) > allowed:
        raise MediaRefusedError(
            ReasonCode.INCONSISTENT_TIMING,
            f"the header claims {header_s:.3f} s but the frames span {measured_s:.3f} s",
        )
