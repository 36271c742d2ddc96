"""Validate an untrusted upload: cheap checks first, then a bounded open, scan and decode probe.

Every refusal is a ValidationReport with a ReasonCode (decision INVALID); only programming
errors escape. The order of the checks, and so which code wins when several apply, is listed
in docs/reason-codes.md.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import asdict, dataclass

import av

from kyc.domain.reasons import ReasonCode
from kyc.media.container import MEDIA_ERRORS, check_aspect_ratio, codec_name, open_video, within_size_caps
from kyc.media.errors import MediaRefusedError, out_of_memory
from kyc.media.forensics import container_facts
from kyc.media.limits import MediaLimits
from kyc.media.probe import (
    Orientation,
    check_iso_layout,
    check_iso_truncation,
    check_matroska_segment,
    declared_video_size,
    display_orientation,
    scan_iso_bmff,
)
from kyc.media.signature import SNIFF_BYTES, Family, sniff
from kyc.media.timeline import PacketTimeline, check_header_matches, header_duration

_CHUNK = 1024 * 1024
_COLOR_RANGES = {1: "tv", 2: "pc"}
_COLOR_SPACES = {
    0: "rgb", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
    9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c",
    14: "ictcp",
}  # fmt: skip


@dataclass(frozen=True)
class MediaSummary:
    """What the upload is; recorded in the decision and lineage. ``rotation`` is clockwise to upright."""

    container: str
    codec: str
    profile: str | None
    pix_fmt: str | None
    bit_depth: int | None
    width: int
    height: int
    display_width: int
    display_height: int
    rotation: int
    sample_aspect_ratio: str | None
    fps: float | None
    duration_s: float
    frame_count: int | None
    color_range: str | None
    color_space: str | None
    has_audio: bool
    mirrored: bool = False  # the display matrix mirrors (applied before ``rotation``)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ValidationReport:
    """The validate stage's result; small and JSON-safe because it travels in Step Functions state."""

    accepted: bool
    reason: ReasonCode | None
    message: str
    sha256: str
    size_bytes: int
    media: MediaSummary | None
    forensics: dict | None = None  # container facts (kyc.media.forensics): evidence, never a refusal

    def to_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "reason": None if self.reason is None else str(self.reason),
            "message": self.message,
            "sha256": self.sha256,
            "size": self.size_bytes,
            "media": None if self.media is None else self.media.to_dict(),
            "forensics": self.forensics,
        }


def validate_upload(
    path: str | os.PathLike[str], limits: MediaLimits, *, sha256: str | None = None
) -> ValidationReport:
    """Decide whether ``path`` is a screenable selfie video; never raises for bad media.

    ``sha256`` is the digest the caller computed while downloading; when absent the file is
    hashed in the same read as the cheap checks. A file over ``max_bytes`` is not read at all, so
    its report carries the caller's digest or an empty string.
    """
    size = os.stat(path).st_size
    if size == 0:
        return _refused(ReasonCode.EMPTY_FILE, "the file is empty", sha256 or hashlib.sha256().hexdigest(), 0)
    if size > limits.max_bytes:
        message = f"the file is {size} bytes; the limit is {limits.max_bytes}"
        return _refused(ReasonCode.TOO_LARGE, message, sha256 or "", size)
    digest, head = _hash_and_head(path, sha256)
    try:
        media, forensics = _inspect(path, head, size, limits)
    except MediaRefusedError as exc:
        return _refused(exc.reason, exc.message, digest, size)
    except MemoryError as exc:
        refusal = out_of_memory(exc)
        return _refused(refusal.reason, refusal.message, digest, size)
    except MEDIA_ERRORS:
        return _refused(ReasonCode.CORRUPT_MEDIA, "the media could not be read", digest, size)
    return ValidationReport(True, None, "accepted", digest, size, media, forensics)


def _refused(reason: ReasonCode, message: str, digest: str, size: int) -> ValidationReport:
    return ValidationReport(False, reason, message, digest, size, None)


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the whole file, read in chunks."""
    return _hash_and_head(path, None)[0]


def _hash_and_head(path: str | os.PathLike[str], known: str | None) -> tuple[str, bytes]:
    """One read of the file: the first bytes for sniffing and, unless known, the SHA-256."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
        if known:
            return known, head
        hasher.update(head)
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest(), head


def _inspect(
    path: str | os.PathLike[str], head: bytes, size: int, limits: MediaLimits
) -> tuple[MediaSummary, dict]:
    family = sniff(head)
    layout = None
    if family is Family.ISOBMFF:
        with open(path, "rb") as handle:
            layout = scan_iso_bmff(handle, size)
        check_iso_layout(layout, limits.max_streams)
    with open_video(path, limits) as (container, stream):
        width, height = _check_dimensions(stream, limits, path, family)
        check_aspect_ratio(stream, limits)
        if layout is not None:
            check_iso_truncation(layout)
        else:
            with open(path, "rb") as handle:
                check_matroska_segment(handle, size)
        header = header_duration(container, stream)
        if header is not None and header > limits.max_duration_s + limits.duration_tolerance_s:
            raise MediaRefusedError(ReasonCode.DURATION_TOO_LONG, f"the header says {header:.1f} s")
        scan = _scan(container, stream, limits)
        _check_complete(scan.packets, stream.frames)
        duration = _check_duration(scan, header, limits)
        fps = _check_frame_rate(scan.packets, duration, stream, limits)
        media = _summary(container, stream, _container_name(family, head), width, height, scan, duration, fps)
        return media, container_facts(container, stream, media.codec, layout)


def _check_dimensions(
    stream: av.VideoStream, limits: MediaLimits, path: str | os.PathLike[str], family: Family
) -> tuple[int, int]:
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        # FFmpeg leaves the size unset when the pixel cap stopped its probe decode: read the claim.
        with open(path, "rb") as handle:
            declared = declared_video_size(handle, family is Family.MATROSKA)
        if declared and not within_size_caps(*declared, limits):
            message = f"the header claims {declared[0]}x{declared[1]}"
            raise MediaRefusedError(ReasonCode.RESOLUTION_TOO_LARGE, message)
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the video frame size is unknown")
    if min(width, height) < limits.min_side:
        raise MediaRefusedError(
            ReasonCode.RESOLUTION_TOO_SMALL, f"{width}x{height} is below the minimum side {limits.min_side}"
        )
    return width, height


@dataclass(frozen=True)
class _Scan:
    """One bounded demux pass: packet timing for every packet, decoding only the first few."""

    packets: int
    span_s: float | None
    frames_decoded: int
    orientation: Orientation


def _scan(container: av.container.InputContainer, stream: av.VideoStream, limits: MediaLimits) -> _Scan:
    """Count packets and measure their span; decode the first ``probe_frames`` frames.

    The demux pass is what derives the duration of a file without one (live-recorded WebM) and
    catches a header that claims less than the file holds. It is bounded by a packet cap (no
    accepted clip can hold more) and the wall-clock budget.
    """
    deadline = time.monotonic() + limits.decode_budget_s
    packet_cap = math.ceil(limits.max_duration_s * limits.max_fps) + 1
    timeline = PacketTimeline(stream.time_base)
    decoded = errors = 0
    orientation: Orientation | None = None
    for packet in container.demux(stream):
        if time.monotonic() > deadline:
            raise MediaRefusedError(ReasonCode.DECODE_BUDGET_EXCEEDED, "reading the file took too long")
        timeline.add(packet)
        if timeline.packets > packet_cap:
            raise MediaRefusedError(ReasonCode.DECODE_BUDGET_EXCEEDED, "more frames than any accepted clip")
        if decoded >= limits.probe_frames:
            continue
        try:
            frames = packet.decode()
        except MemoryError as exc:
            raise out_of_memory(exc) from exc
        except (*MEDIA_ERRORS, ValueError):
            errors += 1
            if errors > limits.max_decode_errors:
                raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the video frames do not decode") from None
            continue
        for frame in frames:
            if not within_size_caps(frame.width, frame.height, limits):
                message = f"a decoded frame is {frame.width}x{frame.height}"
                raise MediaRefusedError(ReasonCode.RESOLUTION_TOO_LARGE, message)
            if orientation is None:
                orientation = display_orientation(frame)
            decoded += 1
    if decoded == 0:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "no video frame decodes")
    timeline.check_timed()
    return _Scan(timeline.packets, timeline.span_s, decoded, orientation or Orientation())


def _check_complete(packets: int, indexed_frames: int) -> None:
    """Refuse a file whose index lists frames that are not there (an upload cut short)."""
    if indexed_frames and packets < 0.9 * indexed_frames:
        message = f"the file is truncated: {packets} of {indexed_frames} indexed frames are present"
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, message)


def _check_duration(scan: _Scan, header: float | None, limits: MediaLimits) -> float:
    """The duration is what the packets span; a header that disagrees is refused (INCONSISTENT_TIMING).

    Packets without timestamps leave nothing to measure: such a file cannot be sampled over
    what plays, so it is DURATION_UNKNOWN rather than screened on the header's word.
    """
    duration = scan.span_s
    if duration is None:
        raise MediaRefusedError(ReasonCode.DURATION_UNKNOWN, "the duration cannot be determined")
    tolerance = limits.duration_tolerance_s
    if duration > limits.max_duration_s + tolerance:
        raise MediaRefusedError(
            ReasonCode.DURATION_TOO_LONG, f"{duration:.1f} s is over {limits.max_duration_s} s"
        )
    if duration < limits.min_duration_s - tolerance:
        raise MediaRefusedError(
            ReasonCode.DURATION_TOO_SHORT, f"{duration:.2f} s is under {limits.min_duration_s} s"
        )
    check_header_matches(header, duration, limits.timing_tolerance_s, limits.timing_tolerance_ratio)
    return duration


def _check_frame_rate(packets: int, duration: float, stream: av.VideoStream, limits: MediaLimits) -> float:
    fps = packets / duration if packets > 1 else None
    if fps is None and stream.average_rate:
        fps = float(stream.average_rate)
    if fps is None or not math.isfinite(fps) or not limits.min_fps <= fps <= limits.max_fps:
        raise MediaRefusedError(
            ReasonCode.FRAME_RATE_INVALID, f"frame rate {fps} is outside the accepted range"
        )
    return round(fps, 3)


def _container_name(family: Family, head: bytes) -> str:
    if family is Family.MATROSKA:
        return "webm" if b"\x42\x82\x84webm" in head[:64] else "matroska"
    brand = head[8:12] if head[4:8] == b"ftyp" else b""
    if brand == b"qt  ":
        return "mov"
    return "3gp" if brand.startswith((b"3gp", b"3g2")) else "mp4"


def _summary(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    name: str,
    width: int,
    height: int,
    scan: _Scan,
    duration: float,
    fps: float,
) -> MediaSummary:
    context = stream.codec_context
    sar = stream.sample_aspect_ratio
    display_w = round(width * sar) if sar else width
    display_h = height
    if scan.orientation.rotation in (90, 270):
        display_w, display_h = display_h, display_w
    return MediaSummary(
        container=name,
        codec=codec_name(stream),
        profile=context.profile,
        pix_fmt=context.pix_fmt,
        bit_depth=_bit_depth(context.pix_fmt),
        width=width,
        height=height,
        display_width=display_w,
        display_height=display_h,
        rotation=scan.orientation.rotation,
        mirrored=scan.orientation.mirrored,
        sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}" if sar else None,
        fps=fps,
        duration_s=round(duration, 3),
        frame_count=scan.packets,
        color_range=_COLOR_RANGES.get(context.color_range),
        color_space=_COLOR_SPACES.get(context.colorspace),
        has_audio=bool(container.streams.audio),
    )


def _bit_depth(pix_fmt: str | None) -> int | None:
    if not pix_fmt:
        return None
    try:
        return av.VideoFormat(pix_fmt).components[0].bits
    except (ValueError, IndexError):
        return None
