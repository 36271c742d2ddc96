"""Limits applied to every upload before and during decoding."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ALLOWED_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})


@dataclass(frozen=True)
class MediaLimits:
    """Bounds that keep a hostile file from exhausting a Lambda; defaults suit KYC selfie clips.

    The reasoning behind each default is in docs/limits.md. Field names are stable: the settings
    loader maps ``KYC_*`` environment variables onto them.
    """

    max_bytes: int = 100 * 1024 * 1024  # KYC_MAX_UPLOAD_BYTES
    min_duration_s: float = 1.0  # KYC_MIN_DURATION_S
    max_duration_s: float = 120.0  # KYC_MAX_DURATION_S
    min_side: int = 96  # KYC_MIN_SIDE
    max_width: int = 4096  # KYC_MAX_WIDTH
    max_height: int = 4096  # KYC_MAX_HEIGHT
    max_pixels: int = 3840 * 2160  # KYC_MAX_PIXELS
    max_streams: int = 8
    allowed_codecs: frozenset[str] = field(default=DEFAULT_ALLOWED_CODECS)  # KYC_ALLOWED_CODECS
    max_decoded_frames: int = 10_000
    decode_budget_s: float = 60.0  # KYC_DECODE_BUDGET_S
    probe_bytes: int = 5 * 1024 * 1024
    analyze_duration_us: int = 5_000_000
    min_fps: float = 1.0
    max_fps: float = 240.0
    probe_frames: int = 8
    max_decode_errors: int = 16
    duration_tolerance_s: float = 0.05
    timing_tolerance_s: float = 0.5  # header duration vs the measured span: max(this, ratio x span)
    timing_tolerance_ratio: float = 0.1
    max_aspect_ratio: float = 4.0  # width:height on screen (after SAR), either way; 32:9 is 3.6
