"""Every real file in the shared corpus, with the decision validation must reach and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyc.domain.reasons import ReasonCode as R
from kyc.media.limits import MediaLimits
from kyc.media.validation import validate_upload

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus" / "media"
OK = None  # accepted

# file -> (expected reason or OK, why). A corpus file missing here fails the suite.
EXPECTED: dict[str, tuple[R | None, str]] = {
    "axm__bbb_176x144_128kbps_15fps_h263.3gp": (R.UNSUPPORTED_CODEC, "H.263 is not on the codec allow-list"),
    "axm__bbb_1ch_48kHz_q10_opus.webm": (R.NO_VIDEO_STREAM, "audio-only WebM"),
    "axm__bbb_960x540_60fps_vp8.webm": (OK, "real VP9 60 fps WebM with audio (misnamed vp8)"),
    "axm__bear-vp9-odd-dimensions.webm": (OK, "odd 161x121 VP9 is still above the minimum side"),
    "axm__dolbyVision-hdr.MOV": (R.DURATION_TOO_SHORT, "real HEVC 10-bit MOV but only 0.17 s"),
    "axm__h265_bframes.mp4": (OK, "HEVC with B-frames, 1 s"),
    "axm__pixel7_videoOnly_cleaned.mp4": (OK, "real phone capture, rotation 180, full range"),
    "axm__portrait_4k60.mp4": (R.DURATION_TOO_SHORT, "real 4K60 portrait clip but only 0.3 s"),
    "axm__roadtrip-vp92-10bit.webm": (OK, "VP9 profile 2, 10-bit"),
    "axm__sample.avi": (R.UNSUPPORTED_CONTAINER, "AVI is not an accepted container"),
    "axm__sample.flv": (R.UNSUPPORTED_CONTAINER, "FLV is not an accepted container"),
    "axm__sample_MP.heic": (R.IMAGE_NOT_VIDEO, "HEIF still image (heic brand)"),
    "axm__sample_android_slow_motion.mp4": (R.DURATION_TOO_SHORT, "real VFR slow-motion clip but 0.53 s"),
    "axm__sample_audio_only.mp4": (R.NO_VIDEO_STREAM, "audio-only MP4"),
    "axm__sample_av1.mkv": (OK, "AV1 10-bit in Matroska, coded portrait"),
    "axm__sample_fragmented.mp4": (OK, "fragmented MP4 (moof/mdat)"),
    "axm__sample_h262_mpeg_audio.ts": (R.UNSUPPORTED_CONTAINER, "MPEG-TS is not an accepted container"),
    "axm__sample_h264.ts": (R.UNSUPPORTED_CONTAINER, "MPEG-TS, even with H.264 inside"),
    "axm__sample_portrait.mp4": (OK, "coded portrait 720x1080"),
    "axm__sample_vvc.mp4": (R.UNSUPPORTED_CODEC, "VVC is not on the codec allow-list"),
    "axm__sample_with_htc_rotation_track_name.mkv": (OK, "H.264 + AC-3 Matroska; last packet lacks duration"),
    "axm__sample_with_invalid_nalu.mp4": (OK, "one bad NAL unit in 30 frames is tolerated"),
    "axm__water_180_mvhevc_5frames.mov": (R.DURATION_TOO_SHORT, "MV-HEVC, 5 frames, 0.06 s"),
    "libwebm__bbb_480p_vp9_opus_1second.webm": (OK, "clean VP9 + Opus, 1 s"),
    "libwebm__block_ends_beyond_cluster.mkv": (R.UNSUPPORTED_CODEC, "fuzz file; MS-MPEG4 is refused first"),
    "libwebm__invalid_vp9_bitstream-bug_1416.webm": (R.RESOLUTION_TOO_LARGE, "header claims 12336x12336"),
    "libwebm__projection_float_overflow.webm": (R.CORRUPT_MEDIA, "fuzz repro; the container does not parse"),
    "libwebm__simple_block.webm": (R.CORRUPT_MEDIA, "dummy payload declared VP8; nothing decodes"),
    "mbunny__annex-b.mp4": (R.CORRUPT_MEDIA, "truncated: 6 of 745 indexed frames present"),
    "mbunny__cursed-vfr.mp4": (OK, "strongly variable frame rate, odd size 3026x1386"),
    "mbunny__edts.mp4": (OK, "edit list and a near-square SAR"),
    "mbunny__rotate-buck-bunny.mp4": (OK, "rotation metadata, displays portrait"),
    "mbunny__sar_2x1.mp4": (OK, "non-square pixels, SAR 2:1"),
    "mbunny__transparency-faulty.webm": (OK, "VP8 1080p60; the broken alpha side channel is ignored"),
    "moviepy__bitmap.mp4": (R.RESOLUTION_TOO_SMALL, "1x1 pixel"),
    "moviepy__no_duration.webm": (OK, "WebM without Duration: derived from packets"),
    "moviepy__result.webm": (R.EMPTY_FILE, "0 bytes"),
    "moviepy__video_with_failing_audio.mp4": (OK, "H.264 + MP3 audio in MP4, 11 s"),
    "moviepy__with-attached-pic.mp3": (R.UNSUPPORTED_CONTAINER, "MP3 audio with cover art"),
    "mp4parse__amr_nb_1f.3gp": (R.NO_VIDEO_STREAM, "audio-only 3GP"),
    "mp4parse__bbb_sunflower_QCIF_30fps_h263_noaudio_1f.3gp": (R.UNSUPPORTED_CODEC, "H.263, single frame"),
    "mp4parse__bbb_sunflower_QCIF_30fps_mp4v_noaudio_1f.mp4": (
        R.UNSUPPORTED_CODEC,
        "MPEG-4 Part 2, single frame",
    ),
    "mp4parse__clusterfuzz-testcase-minimized-avif-4914209301856256.avif": (R.IMAGE_NOT_VIDEO, "AVIF brand"),
    "mp4parse__hevc_white_frame.mp4": (R.DURATION_TOO_SHORT, "single HEVC frame, 0.04 s"),
    "mp4parse__no_timescale.mp4": (
        R.CORRUPT_MEDIA,
        "display matrix decodes to INT_MIN: refused, not guessed",
    ),
    "mp4parse__short-cenc.mp4": (R.ENCRYPTED_MEDIA, "CENC: encv/enca entries, pssh, senc"),
    "mp4parse__tiny_av1.mp4": (R.RESOLUTION_TOO_SMALL, "64x64 is under the minimum side"),
    "mp4parse__video_rotation_90.mp4": (R.RESOLUTION_TOO_SMALL, "100x60 is under the minimum side"),
    "mp4parse__zero_empty_stsc.mp4": (R.CORRUPT_MEDIA, "empty sample-to-chunk table; nothing decodes"),
}

CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir()) if CORPUS.is_dir() else []


def test_corpus_table_covers_every_file_exactly() -> None:
    assert CORPUS_FILES, f"corpus not found at {CORPUS}"
    assert sorted(EXPECTED) == CORPUS_FILES


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_validate_upload_corpus_file_expected_outcome(name: str) -> None:
    assert name in EXPECTED, f"{name} has no expected outcome in the table"
    expected, why = EXPECTED[name]
    report = validate_upload(CORPUS / name, MediaLimits())
    assert report.reason == expected, f"{name}: {why}; got {report.reason}: {report.message}"
    assert report.accepted is (expected is None)
    assert (report.media is not None) is report.accepted
    assert len(report.sha256) == 64
    json.dumps(report.to_dict())


@pytest.mark.parametrize(
    ("name", "rotation", "display"),
    [
        ("axm__pixel7_videoOnly_cleaned.mp4", 180, (1920, 1080)),
        ("mbunny__rotate-buck-bunny.mp4", 90, (1080, 1920)),
        ("mbunny__sar_2x1.mp4", 0, (1280, 360)),
    ],
)
def test_validate_upload_geometry_rotation_and_sar_reported(
    name: str, rotation: int, display: tuple[int, int]
) -> None:
    media = validate_upload(CORPUS / name, MediaLimits()).media
    assert media is not None
    assert media.rotation == rotation
    assert (media.display_width, media.display_height) == display


def test_validate_upload_webm_without_duration_derives_it_from_packets() -> None:
    media = validate_upload(CORPUS / "moviepy__no_duration.webm", MediaLimits()).media
    assert media is not None
    assert 4.5 < media.duration_s < 5.5
    assert media.frame_count == 74


def test_validate_upload_ten_bit_clip_reports_bit_depth() -> None:
    media = validate_upload(CORPUS / "axm__roadtrip-vp92-10bit.webm", MediaLimits()).media
    assert media is not None
    assert (media.codec, media.bit_depth, media.container) == ("vp9", 10, "matroska")  # DocType says matroska
