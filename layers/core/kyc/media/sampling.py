"""Sample the frames the model scores: evenly spaced in presentation time, decoded no more than needed.

One forward pass through the file. Packets are read a GOP at a time (a GOP starts only at a
picture the bytes prove independently decodable, never at a container key flag alone); a GOP
that holds no chosen frame is never sent to the decoder, the tail of a GOP after its last chosen
frame is dropped, and inside a GOP an H.264 picture that no other picture references is skipped unless it
is a chosen frame (all three only for closed GOPs, where that cannot corrupt a later frame). Decoding stops as
soon as every target has its frame. Only chosen frames are converted and encoded. The trade-offs
and measured figures are in docs/sampling.md.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av

from kyc.domain.reasons import ReasonCode
from kyc.domain.sampling_plan import (
    FrameSelector,
    briefly_shown,
    coverage_gap,
    plan_sampling,
    typical_frame_s,
)
from kyc.media import nal
from kyc.media.container import check_aspect_ratio, codec_name, guarded_decode, open_video
from kyc.media.errors import MediaRefusedError
from kyc.media.frames import EXTENSIONS, FrameEncodingError, encode_image, upright_rgb
from kyc.media.limits import MediaLimits
from kyc.media.probe import Orientation, display_orientation
from kyc.media.timeline import PacketTimeline, header_duration

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "kyc.frames/1"
# A GOP larger than this is fed to the decoder as it is read instead of being held for a decision.
_MAX_BUFFERED_BYTES = 32 * 1024 * 1024
# A decoded frame earlier than the measured start by more than this means the packet timestamps
# do not describe what plays (a corrupted composition-offset table): the span cannot be trusted.
_TIMING_SLACK_S = 1e-3


class SamplingParamsError(ValueError):
    """Sampling parameters out of range (a configuration error, not a media problem)."""


@dataclass(frozen=True)
class SamplingParams:
    """How many frames, how big, how encoded. JPEG quality 95 maps to mjpeg qscale 2, 4:4:4."""

    frame_count: int = 32
    max_side: int = 1024
    image_format: str = "jpeg"  # "jpeg" | "png"
    jpeg_quality: int = 95
    keyframes_only: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.frame_count <= 1000:
            raise SamplingParamsError(f"frame_count {self.frame_count} is outside 1..1000")
        if not 16 <= self.max_side <= 8192:
            raise SamplingParamsError(f"max_side {self.max_side} is outside 16..8192")
        if self.image_format not in EXTENSIONS:
            raise SamplingParamsError(f"image_format {self.image_format!r} is not jpeg or png")
        if not 1 <= self.jpeg_quality <= 100:
            raise SamplingParamsError(f"jpeg_quality {self.jpeg_quality} is outside 1..100")


@dataclass(frozen=True)
class SampledFrame:
    index: int
    pts_s: float
    keyframe: bool
    width: int
    height: int
    content_type: str
    data: bytes
    sha256: str

    def file_name(self, image_format: str) -> str:
        return f"{self.index:03d}.{EXTENSIONS[image_format]}"


@dataclass(frozen=True)
class SampleSet:
    frames: tuple[SampledFrame, ...]
    requested: int
    duration_s: float  # measured from the packets: the span the targets cover
    start_s: float  # the first shown frame's time on the file's clock; frames' pts_s count from here
    header_duration_s: float | None  # what the header claimed, kept beside the measurement
    short_clip: bool
    params: SamplingParams
    decoded_frames: int
    rotation: int
    mirrored: bool = False  # the display matrix mirrors: frames were mirrored before the rotation
    sampling_seed: str = ""  # hex; with the file's bytes and the params, it reproduces the sample
    typical_frame_s: float = 0.0  # median interval between shown frames (from every packet)
    briefly_shown: tuple[int, ...] = ()  # sampled frames shown < SHORT_FRAME_RATIO of a typical frame

    def manifest(self, *, source_sha256: str) -> dict:
        """What the extract function stores next to the images; no image bytes."""
        return {
            "schema": MANIFEST_SCHEMA,
            "source_sha256": source_sha256,
            "params": asdict(self.params),
            "requested": self.requested,
            "sampled": len(self.frames),
            "short_clip": self.short_clip,
            "duration_s": round(self.duration_s, 6),
            "start_s": round(self.start_s, 6),
            "header_duration_s": None if self.header_duration_s is None else round(self.header_duration_s, 6),
            "decoded_frames": self.decoded_frames,
            "rotation": self.rotation,
            "mirrored": self.mirrored,
            "sampling_seed": self.sampling_seed,
            "typical_frame_s": round(self.typical_frame_s, 6),
            "briefly_shown": list(self.briefly_shown),
            "frames": [
                {
                    "index": f.index,
                    "file": f.file_name(self.params.image_format),
                    "pts_s": f.pts_s,
                    "keyframe": f.keyframe,
                    "width": f.width,
                    "height": f.height,
                    "content_type": f.content_type,
                    "bytes": len(f.data),
                    "sha256": f.sha256,
                }
                for f in self.frames
            ],
        }


def sample_frames(
    path: str | os.PathLike[str], params: SamplingParams, limits: MediaLimits, *, seed: str | None = None
) -> SampleSet:
    """Decode ``path`` once and return one upright frame per bin, ``params.frame_count`` bins (fewer
    frames if short).

    The targets are planned over the span the packets measure (``measure_timeline``), never over
    a header duration, each at a secret offset in its bin drawn from ``seed`` (hex, at least 128
    bits; a fresh random one when None). The seed is returned in the SampleSet: the same bytes,
    params and seed give the same sample. Raises MediaRefusedError for files the hardened opener
    refuses, for decoding over ``limits.max_decoded_frames`` or ``limits.decode_budget_s``
    (DECODE_BUDGET_EXCEEDED), and when no frame decodes (CORRUPT_MEDIA).
    """
    seed = secrets.token_hex(16) if seed is None else seed
    try:
        seed_bytes = bytes.fromhex(seed)
    except ValueError as exc:
        raise SamplingParamsError("the sampling seed must be hex") from exc
    if len(seed_bytes) < 16:
        raise SamplingParamsError("the sampling seed must hold at least 128 bits")
    timeline = measure_timeline(path, limits)
    try:
        return _sample_once(path, params, limits, timeline, seed, threaded=True)
    except _FramesLostError:
        # Frame threading drops the frames still in flight when a late packet fails to decode
        # (the error surfaces at the final flush). Decoding again on one thread recovers them.
        return _sample_once(path, params, limits, timeline, seed, threaded=False)


class _FramesLostError(MediaRefusedError):
    """Part of the span got no frame while frames were decoded on several threads."""


def _sample_once(
    path: str | os.PathLike[str],
    params: SamplingParams,
    limits: MediaLimits,
    timeline: MeasuredTimeline,
    seed: str,
    *,
    threaded: bool,
) -> SampleSet:
    start_s, duration_s = timeline.start_s, timeline.duration_s
    with open_video(path, limits) as (container, stream):
        plan = plan_sampling(
            duration_s,
            params.frame_count,
            start_s=start_s,
            seed=bytes.fromhex(seed),
            min_gap_s=typical_frame_s(timeline.shown_s),
            shown_s=timeline.shown_s,
        )
        stream.thread_type = "AUTO" if threaded else "NONE"
        if params.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        selector: FrameSelector[av.VideoFrame] = FrameSelector(plan.targets_s)
        source = _PacketFilter(
            container,
            selector,
            keyframes_only=params.keyframes_only,
            targets_s=plan.targets_s,
            disposable=_disposable_check(stream),
            random_access=random_access_check(stream),
        )
        sar = check_aspect_ratio(stream, limits)
        orientation: Orientation | None = None
        frames: list[SampledFrame] = []
        decoded = 0
        last_s: float | None = None
        for frame in guarded_decode(source, stream, limits):
            decoded += 1
            if orientation is None:
                orientation = display_orientation(frame)
            time_s = _frame_time(frame)
            if time_s is None:  # never dropped silently: a player shows it, at a time nobody stated
                raise MediaRefusedError(ReasonCode.UNTIMED_FRAMES, "a decoded frame carries no time")
            _check_frame_order(time_s, last_s, start_s)
            last_s = time_s
            for chosen in selector.offer(time_s, frame):
                frames.append(_render(chosen, len(frames), start_s, orientation, sar, params))
            if selector.done:
                break
        for chosen in selector.finish():
            frames.append(_render(chosen, len(frames), start_s, orientation or Orientation(), sar, params))
    if not frames:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "no video frame decodes")
    if not params.keyframes_only:
        gap = coverage_gap(
            [start_s + f.pts_s for f in frames],
            start_s,
            duration_s,
            params.frame_count,
            timeline.longest_interval_s,
        )
        if gap is not None:
            error = _FramesLostError if threaded else MediaRefusedError
            raise error(ReasonCode.CORRUPT_MEDIA, f"part of the clip does not decode: {gap}")
    return SampleSet(
        frames=tuple(frames),
        requested=params.frame_count,
        duration_s=duration_s,
        start_s=start_s,
        header_duration_s=timeline.header_duration_s,
        short_clip=len(frames) < params.frame_count,
        params=params,
        decoded_frames=decoded,
        rotation=(orientation or Orientation()).rotation,
        mirrored=(orientation or Orientation()).mirrored,
        sampling_seed=seed,
        typical_frame_s=typical_frame_s(timeline.shown_s),
        briefly_shown=briefly_shown([start_s + f.pts_s for f in frames], timeline.shown_s),
    )


def write_frames(sample: SampleSet, out_dir: Path, *, source_sha256: str) -> Path:
    """Write ``NNN.jpg``/``NNN.png`` and ``manifest.json`` into ``out_dir``; return the manifest path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for frame in sample.frames:
        (out_dir / frame.file_name(sample.params.image_format)).write_bytes(frame.data)
    manifest_path = out_dir / MANIFEST_NAME
    manifest = sample.manifest(source_sha256=source_sha256)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest_path


class _PacketFilter:
    """Stands in for the container in ``guarded_decode``: yields only the packets worth decoding.

    Packets are pulled lazily, so each decision sees every frame decoded so far. The selector's
    view lags the decoder by its frame-thread delay, which only makes the filter skip less.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        selector: FrameSelector,
        *,
        keyframes_only: bool,
        targets_s: Sequence[float] = (),
        disposable: Callable[[av.Packet], bool] | None = None,
        random_access: Callable[[av.Packet], bool] | None = None,
    ):
        self._container = container
        self._random_access = random_access
        self._selector = selector
        self._keyframes_only = keyframes_only
        self._targets = tuple(targets_s)
        self._disposable = disposable
        self.skipped = 0

    def demux(self, stream: av.VideoStream) -> Iterator[av.Packet]:
        gop: list[av.Packet] = []
        gop_bytes = 0
        for packet in self._container.demux(stream):
            if self._selector.done:
                return
            if not packet.size:  # end of stream: release the last GOP, then let the decoder drain
                yield from self._release(gop, math.inf)
                yield packet
                return
            starts_gop = self._starts_gop(packet)
            unverifiable_key = self._random_access is None and packet.is_keyframe
            if self._keyframes_only and not (starts_gop or unverifiable_key):
                continue
            if starts_gop:
                yield from self._release(gop, float(packet.pts * packet.time_base))
                gop, gop_bytes = [], 0
            gop.append(packet)
            gop_bytes += packet.size
            if gop_bytes > _MAX_BUFFERED_BYTES:
                yield from self._release(gop, math.inf)
                gop, gop_bytes = [], 0
        yield from self._release(gop, math.inf)

    def _release(self, gop: list[av.Packet], next_key_s: float) -> Iterator[av.Packet]:
        """Feed a GOP up to the point where no target before ``next_key_s`` is left open.

        Inside a closed GOP, a picture no other picture references (H.264 ``nal_ref_idc`` 0) is
        not decoded unless it is the one on screen at a target.
        """
        closed = bool(gop) and self._starts_gop(gop[0]) and _is_closed_gop(gop)
        needed = self._on_screen(gop, next_key_s) if closed and self._disposable else None
        for at, packet in enumerate(gop):
            upcoming = self._selector.next_target_s
            if upcoming is None or (closed and upcoming >= next_key_s):
                self.skipped += len(gop) - at
                return
            if needed is not None and at not in needed and self._disposable(packet):
                self.skipped += 1
                continue
            yield packet

    def _starts_gop(self, packet: av.Packet) -> bool:
        """A packet the container flags as a keyframe and whose bytes prove it a random-access point.

        The flag alone is the uploader's claim (a recovery-point SEI makes FFmpeg flag a P-picture):
        skipping up to a false keyframe would decode what follows from stale references. Codecs
        with no byte-level rule never start a GOP here, so nothing is skipped for them.
        """
        if not packet.is_keyframe or packet.pts is None or packet.time_base is None:
            return False
        return self._random_access is not None and self._random_access(packet)

    def _on_screen(self, gop: list[av.Packet], next_key_s: float) -> set[int]:
        """Positions in ``gop`` of the frames on screen at the targets that fall inside it."""
        shown = sorted((float(p.pts * p.time_base), at) for at, p in enumerate(gop))
        times = [time_s for time_s, _ in shown]
        needed = {shown[0][1]}
        for target in self._targets:
            if times[0] <= target < next_key_s:
                needed.add(shown[bisect.bisect_right(times, target) - 1][1])
        return needed


def _disposable_check(stream: av.VideoStream) -> Callable[[av.Packet], bool] | None:
    """How to tell a droppable packet for this codec; None where no safe rule is known."""
    if codec_name(stream) != "h264":
        return None
    length_size = nal.avcc_length_size(stream.codec_context.extradata)
    return lambda packet: nal.is_disposable_h264(bytes(packet), length_size)


def random_access_check(stream: av.VideoStream) -> Callable[[av.Packet], bool] | None:
    """How to tell, from a packet's bytes, that decoding can start there; None where no rule is known.

    H.264: an IDR slice; HEVC: an IRAP picture; VP8, VP9, AV1: the frame header's key-frame bits.
    """
    name, extradata = codec_name(stream), stream.codec_context.extradata
    if name == "h264":
        size = nal.avcc_length_size(extradata)
        return lambda packet: nal.is_h264_idr(bytes(packet), size)
    if name == "hevc":
        size = nal.hvcc_length_size(extradata)
        return lambda packet: nal.is_hevc_irap(bytes(packet), size)
    readers = {"vp8": nal.is_vp8_key, "vp9": nal.is_vp9_key, "av1": nal.is_av1_key}
    reader = readers.get(name)
    return None if reader is None else lambda packet: reader(bytes(packet))


def _is_closed_gop(gop: list[av.Packet]) -> bool:
    """A random-access point first and no frame shown before it: dropping the GOP cannot damage its
    neighbours (the caller has checked the first packet's bytes)."""
    if not gop or gop[0].pts is None:
        return False
    return all(p.pts is not None and p.pts >= gop[0].pts for p in gop)


@dataclass(frozen=True)
class MeasuredTimeline:
    """Where the shown frames start and how long they span (packets), and what the header claimed."""

    start_s: float
    duration_s: float
    header_duration_s: float | None
    longest_interval_s: float = 0.0
    shown_s: tuple[float, ...] = ()  # every shown packet's time, sorted


def measure_timeline(path: str | os.PathLike[str], limits: MediaLimits) -> MeasuredTimeline:
    """A demux-only pass over every packet: the span that plays, whatever the header says.

    Raises DECODE_BUDGET_EXCEEDED past the packet cap and DURATION_UNKNOWN when the packets
    carry no usable timestamps (there is then no honest way to place the targets).
    """
    with open_video(path, limits) as (container, stream):
        header_s = header_duration(container, stream)
        timeline = PacketTimeline(stream.time_base)
        for packet in container.demux(stream):
            timeline.add(packet)
            if timeline.packets > limits.max_decoded_frames:
                raise MediaRefusedError(ReasonCode.DECODE_BUDGET_EXCEEDED, "more packets than the decode cap")
    timeline.check_timed()
    start_s, span_s = timeline.start_s, timeline.span_s
    if start_s is None or span_s is None:
        raise MediaRefusedError(ReasonCode.DURATION_UNKNOWN, "the duration cannot be determined")
    return MeasuredTimeline(
        start_s=start_s,
        duration_s=span_s,
        header_duration_s=header_s,
        longest_interval_s=timeline.longest_interval_s,
        shown_s=tuple(sorted({float(t) for t in timeline.starts})),
    )


def _check_frame_order(time_s: float, last_s: float | None, start_s: float) -> None:
    """Refuse frames the decoder puts out of the packets' time order, or before the first packet.

    The decoder emits pictures in the bitstream's display order; if their container timestamps
    run backwards (a rewritten composition-offset table), the timestamps do not describe what
    plays, and the sampler would skip the pictures whose time goes back.
    """
    if time_s < start_s - _TIMING_SLACK_S:
        message = f"a frame is shown at {time_s:.3f} s, before the first packet's time {start_s:.3f} s"
        raise MediaRefusedError(ReasonCode.INCONSISTENT_TIMING, message)
    if last_s is not None and time_s < last_s - _TIMING_SLACK_S:
        message = f"decoded frames go back in time ({last_s:.3f} s, then {time_s:.3f} s)"
        raise MediaRefusedError(ReasonCode.INCONSISTENT_TIMING, message)


def _frame_time(frame: av.VideoFrame) -> float | None:
    return None if frame.pts is None or not frame.time_base else float(frame.pts * frame.time_base)


def _render(
    frame: av.VideoFrame,
    index: int,
    start_s: float,
    orientation: Orientation,
    sar: Fraction | None,
    params: SamplingParams,
) -> SampledFrame:
    try:
        rgb = upright_rgb(
            frame,
            rotation=orientation.rotation,
            mirrored=orientation.mirrored,
            sar=sar,
            max_side=params.max_side,
        )
        image = encode_image(rgb, params.image_format, jpeg_quality=params.jpeg_quality)
    except FrameEncodingError as exc:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "a sampled frame cannot be converted") from exc
    return SampledFrame(
        index=index,
        pts_s=round(_frame_time(frame) - start_s, 6),
        keyframe=bool(frame.key_frame),
        width=image.width,
        height=image.height,
        content_type=image.content_type,
        data=image.data,
        sha256=image.sha256,
    )
