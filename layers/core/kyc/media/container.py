"""The one way the pipeline opens untrusted video: sniffed, forced demuxer, no protocols.

FFmpeg's autodetection will follow HLS playlists and ffconcat scripts to other files, so the
demuxer is chosen here from the file's own signature and forced, and the bytes are handed over
as a Python file object with an empty protocol whitelist (see docs/limits.md). The safety
checks every consumer needs (one video stream, codec allow-list, size caps, the decoder pixel
cap) live here too, so the sampler is as safe as validation even if it is handed other bytes.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import av

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError, out_of_memory
from kyc.media.limits import MediaLimits
from kyc.media.signature import SNIFF_BYTES, Family, sniff

# FFmpeg demuxer names we allow, keyed by what the signature sniffing found.
MOV_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"
MATROSKA_DEMUXER = "matroska,webm"
_DEMUXERS = {Family.ISOBMFF: "mov", Family.MATROSKA: "matroska"}
# Errors PyAV raises for bytes FFmpeg cannot make sense of.
MEDIA_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, EOFError, OverflowError)


def sniff_demuxer(head: bytes) -> str:
    """Pick the demuxer from the first bytes; refuse anything that is not ISO-BMFF or Matroska."""
    return _DEMUXERS[sniff(head)]


@functools.lru_cache(maxsize=8)
def allowed_decoders(allowed_codecs: frozenset[str]) -> str:
    """FFmpeg decoder names for the allowed codecs: each codec's own decoder and its ``lib*`` twins.

    ``codec_whitelist`` matches decoder names (``libdav1d``), not codec names (``av1``), so the
    allow-list is translated here. Hardware decoders (``*_cuvid``, ``*_qsv``...) are left out.
    """
    names = set()
    for name in av.codecs_available:
        try:
            codec = av.Codec(name, "r")
        except (av.FFmpegError, ValueError):
            continue
        native_or_lib = codec.name == codec.canonical_name or codec.name.startswith("lib")
        if codec.type == "video" and codec.canonical_name in allowed_codecs and native_or_lib:
            names.add(codec.name)
    return ",".join(sorted(names)) or "none"


def open_options(limits: MediaLimits) -> dict[str, str]:
    """Demuxer options: no protocols, allow-listed formats and decoders, no external refs, bounded probe.

    ``codec_whitelist`` reaches the decoders ``avformat_find_stream_info`` opens while probing,
    so no decoder outside the allow-list (MPEG-4 Part 2, MJPEG, any audio decoder) ever sees a
    byte of the upload, even before the application-level codec check runs.
    """
    return {
        "protocol_whitelist": "",
        "format_whitelist": f"{MOV_DEMUXER},{MATROSKA_DEMUXER}",
        "codec_whitelist": allowed_decoders(limits.allowed_codecs),
        "enable_drefs": "0",
        "use_absolute_path": "0",
        "max_streams": str(limits.max_streams + 1),  # one over, so the app-level check names it
        "probesize": str(limits.probe_bytes),
        "analyzeduration": str(limits.analyze_duration_us),
    }


def codec_name(stream: av.VideoStream) -> str:
    """The codec's canonical name (``av1``), not the decoder's (``libdav1d``).

    A sample entry or CodecID FFmpeg does not know (``avc1`` renamed ``zzzz``) leaves the stream
    without a codec context: that is an unsupported codec, not a pipeline failure.
    """
    context = stream.codec_context
    codec = None if context is None else context.codec
    if codec is None:
        raise MediaRefusedError(ReasonCode.UNSUPPORTED_CODEC, "the video codec is not recognised")
    return codec.canonical_name


@contextmanager
def open_video(
    path: str | os.PathLike[str], limits: MediaLimits
) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
    """Open ``path`` through the hardened path and yield the container and its one video stream.

    Raises MediaRefusedError when the file cannot be opened safely or its video stream is
    outside the allow-list or the size caps. The decoder's pixel cap is set on the codec
    context before any frame is decoded.
    """
    with open(path, "rb") as handle:
        demuxer = sniff_demuxer(handle.read(SNIFF_BYTES))
        handle.seek(0)
        try:
            container = av.open(
                handle,
                mode="r",
                format=demuxer,
                container_options=open_options(limits),
                stream_options=[_decoder_options(limits)] * (limits.max_streams + 1),
                # Legacy Latin-1 tags from real devices: FFmpeg plays the file, so read them leniently.
                metadata_errors="replace",
            )
        except MemoryError as exc:
            raise out_of_memory(exc) from exc
        except (*MEDIA_ERRORS, OSError, ValueError) as exc:
            raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the container could not be parsed") from exc
        try:
            stream = select_video_stream(container, limits)
            check_video_stream(stream, limits)
            decode_guard(stream, limits)
            yield container, stream
        finally:
            container.close()


def select_video_stream(container: av.container.InputContainer, limits: MediaLimits) -> av.VideoStream:
    """Exactly one video stream (cover art excluded), and no more streams than the limit."""
    if len(container.streams) > limits.max_streams:
        raise MediaRefusedError(ReasonCode.TOO_MANY_STREAMS, f"the file has {len(container.streams)} streams")
    videos = [s for s in container.streams.video if not _is_attached_picture(s)]
    if not videos:
        raise MediaRefusedError(ReasonCode.NO_VIDEO_STREAM, "the file has no video stream")
    if len(videos) > 1:
        raise MediaRefusedError(ReasonCode.MULTIPLE_VIDEO_STREAMS, "the file has several video streams")
    return videos[0]


def check_video_stream(stream: av.VideoStream, limits: MediaLimits) -> None:
    """Codec allow-list and upper size caps, enforced in application code (FFmpeg's are advisory)."""
    name = codec_name(stream)
    if name not in limits.allowed_codecs:
        raise MediaRefusedError(ReasonCode.UNSUPPORTED_CODEC, f"video codec {name!r} is not accepted")
    width, height = stream.codec_context.width, stream.codec_context.height
    if not within_size_caps(width, height, limits):
        raise MediaRefusedError(ReasonCode.RESOLUTION_TOO_LARGE, f"{width}x{height} exceeds the size limits")


def sample_aspect_ratio(stream: av.VideoStream) -> Fraction | None:
    """The container's SAR wins over the bitstream's, as in FFmpeg's own guess."""
    for ratio in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if ratio and ratio > 0:
            return Fraction(ratio)
    return None


def check_aspect_ratio(stream: av.VideoStream, limits: MediaLimits) -> Fraction | None:
    """The stream's SAR; refuses (ASPECT_RATIO_INVALID) a picture wider or taller than
    ``limits.max_aspect_ratio`` to one once its pixels are squared: a ``pasp`` of 65535:1 would
    hand the model 1024x1 images, in which no face can be seen."""
    sar = sample_aspect_ratio(stream)
    width, height = stream.codec_context.width, stream.codec_context.height
    if width > 0 and height > 0:
        aspect = width * (sar or 1) / height
        if not 1 / limits.max_aspect_ratio <= aspect <= limits.max_aspect_ratio:
            shown = f"SAR {sar}" if sar else "square pixels"
            message = f"{width}x{height} with {shown} is {float(aspect):.3g}:1 on screen"
            raise MediaRefusedError(ReasonCode.ASPECT_RATIO_INVALID, message)
    return sar


def within_size_caps(width: int, height: int, limits: MediaLimits) -> bool:
    return width <= limits.max_width and height <= limits.max_height and width * height <= limits.max_pixels


def decode_guard(stream: av.VideoStream, limits: MediaLimits) -> None:
    """Set the decoder's pixel cap; must run before the first decode (later it is ignored)."""
    stream.codec_context.options = _decoder_options(limits)


def _decoder_options(limits: MediaLimits) -> dict[str, str]:
    return {"max_pixels": str(limits.max_pixels), "codec_whitelist": allowed_decoders(limits.allowed_codecs)}


def guarded_decode(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    limits: MediaLimits,
    *,
    max_frames: int | None = None,
    budget_s: float | None = None,
) -> Iterator[av.VideoFrame]:
    """Decode ``stream`` under a frame cap and a wall-clock budget; skip undecodable packets.

    Raises MediaRefusedError(DECODE_BUDGET_EXCEEDED) when either bound is hit, CORRUPT_MEDIA when
    more than ``limits.max_decode_errors`` packets fail, and RESOLUTION_TOO_LARGE when a decoded
    frame is bigger than the caps (a bitstream that contradicts its container).
    """
    frame_cap = limits.max_decoded_frames if max_frames is None else max_frames
    deadline = time.monotonic() + (limits.decode_budget_s if budget_s is None else budget_s)
    decoded = errors = 0
    for packet in container.demux(stream):
        if time.monotonic() > deadline:
            raise MediaRefusedError(ReasonCode.DECODE_BUDGET_EXCEEDED, "decoding took longer than the budget")
        try:
            frames = packet.decode()
        except MemoryError as exc:
            raise out_of_memory(exc) from exc
        except (*MEDIA_ERRORS, ValueError) as exc:
            errors += 1
            if errors > limits.max_decode_errors:
                raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "too many packets fail to decode") from exc
            continue
        for frame in frames:
            if not within_size_caps(frame.width, frame.height, limits):
                raise MediaRefusedError(
                    ReasonCode.RESOLUTION_TOO_LARGE, f"a decoded frame is {frame.width}x{frame.height}"
                )
            decoded += 1
            if decoded > frame_cap:
                raise MediaRefusedError(ReasonCode.DECODE_BUDGET_EXCEEDED, "more frames than the decode cap")
            yield frame


def _is_attached_picture(stream: av.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)
