"""Hostile uploads made by the tests: each is INVALID with the right code, and nothing it names is opened."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from kyc.domain.reasons import ReasonCode as R
from kyc.media.limits import MediaLimits
from kyc.media.validation import validate_upload
from tests.fixtures import hostile
from tests.fixtures.clips import make_clip

LIMITS = MediaLimits()


def _refused(path: Path) -> R | None:
    report = validate_upload(path, LIMITS)
    assert report.accepted is (report.reason is None)
    return report.reason


@pytest.mark.parametrize("relative", [True, False])
def test_validate_upload_ffconcat_script_refused_and_target_never_opened(
    tmp_path: Path, relative: bool
) -> None:
    target = tmp_path / "seg.ts"
    with hostile.watched_fifo(target) as opened:
        script = hostile.ffconcat_script(tmp_path / "clip.mp4", "seg.ts" if relative else str(target))
        assert _refused(script) == R.PLAYLIST_OR_SCRIPT
        time.sleep(0.05)
    assert opened == []


def test_validate_upload_hls_playlist_named_mp4_refused_and_segment_never_opened(tmp_path: Path) -> None:
    target = tmp_path / "segment.ts"
    with hostile.watched_fifo(target) as opened, hostile.loopback_listener() as (url, connections):
        local = hostile.hls_playlist(tmp_path / "local.mp4", f"file://{target}")
        remote = hostile.hls_playlist(tmp_path / "remote.mp4", f"{url}/seg.ts")
        assert _refused(local) == R.PLAYLIST_OR_SCRIPT
        assert _refused(remote) == R.PLAYLIST_OR_SCRIPT
        time.sleep(0.1)
    assert opened == []
    assert connections == []


def test_watched_fifo_unhardened_ffmpeg_open_is_detected(tmp_path: Path) -> None:
    """Positive control: FFmpeg's default autodetection follows a relative ffconcat script."""
    target = tmp_path / "seg.ts"
    with hostile.watched_fifo(target) as opened:
        script = hostile.ffconcat_script(tmp_path / "clip.mp4", "seg.ts")
        with pytest.raises(av.FFmpegError), av.open(str(script)) as container:
            list(container.demux())
        deadline = time.monotonic() + 2
        while not opened and time.monotonic() < deadline:
            time.sleep(0.01)
    assert opened and set(opened) == {str(target)}


def test_validate_upload_avi_carrying_hls_playlist_refused_and_file_never_opened(tmp_path: Path) -> None:
    target = tmp_path / "secret.txt"
    with hostile.watched_fifo(target) as opened:
        avi = hostile.avi_with_gab2_playlist(tmp_path / "clip.mp4", f"file://{target}")
        assert _refused(avi) == R.UNSUPPORTED_CONTAINER
        time.sleep(0.05)
    assert opened == []


def test_validate_upload_mov_external_dref_refused_and_target_never_opened(tmp_path: Path) -> None:
    target = tmp_path / "external.mov"
    with hostile.watched_fifo(target) as opened:
        mov = hostile.mov_with_external_dref(tmp_path / "clip.mov", str(target))
        assert _refused(mov) == R.EXTERNAL_REFERENCE
        time.sleep(0.05)
    assert opened == []


def _random_bytes(path: Path) -> Path:
    path.write_bytes(b"\x00\x13" + random.Random(7).randbytes(8192))
    return path


def _text(path: Path) -> Path:
    path.write_text("my selfie video, honest\n" * 20)
    return path


def _zero(path: Path) -> Path:
    path.write_bytes(b"")
    return path


CASES: dict[str, tuple[Callable[[Path], Path], R]] = {
    "huge_frame_claim": (hostile.webm_claiming_huge_frame, R.RESOLUTION_TOO_LARGE),
    "one_hour_tiny_frames": (hostile.one_hour_of_tiny_frames, R.DURATION_TOO_LONG),
    "truncated_without_moov": (hostile.mp4_without_moov, R.CORRUPT_MEDIA),
    "zero_bytes": (_zero, R.EMPTY_FILE),
    "random_bytes": (_random_bytes, R.UNRECOGNISED_FORMAT),
    "png_named_mp4": (lambda p: hostile.image(p, "PNG"), R.IMAGE_NOT_VIDEO),
    "gif_named_mp4": (lambda p: hostile.image(p, "GIF"), R.IMAGE_NOT_VIDEO),
    "jpeg_named_mp4": (lambda p: hostile.image(p, "JPEG"), R.IMAGE_NOT_VIDEO),
    "text_named_mp4": (_text, R.UNRECOGNISED_FORMAT),
    "audio_only_mp4": (hostile.audio_only_mp4, R.NO_VIDEO_STREAM),
    "two_video_streams": (hostile.two_video_streams, R.MULTIPLE_VIDEO_STREAMS),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_upload_hostile_file_refused_with_code(tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    path = make(tmp_path / "upload.mp4")
    started = time.monotonic()
    assert _refused(path) == expected
    assert time.monotonic() - started < 5


def test_validate_upload_too_large_refused_without_reading(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "big.mp4", seconds=1.2)
    report = validate_upload(path, MediaLimits(max_bytes=1000), sha256="ab" * 32)
    assert (report.reason, report.sha256) == (R.TOO_LARGE, "ab" * 32)


@pytest.mark.parametrize(
    ("codec", "container", "rotation"),
    [
        ("h264", "mp4", 90),
        ("hevc", "mov", 270),
        ("vp9", "webm", None),
        ("av1", "mkv", None),
        ("vp8", "webm", None),
    ],
)
def test_validate_upload_generated_clip_accepted_with_summary(
    tmp_path: Path, codec: str, container: str, rotation: int | None
) -> None:
    path = make_clip(
        tmp_path / f"clip.{container}", codec=codec, container=container, seconds=1.5, rotation=rotation
    )
    report = validate_upload(path, LIMITS)
    assert report.accepted, report.message
    assert report.media is not None
    assert (report.media.codec, report.media.rotation) == (codec, rotation or 0)
    assert (report.media.width, report.media.height) == (320, 240)
    assert abs(report.media.duration_s - 1.5) < 0.1


def test_validate_upload_codec_outside_configured_allow_list_refused(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "clip.mp4", seconds=1.2)
    report = validate_upload(path, MediaLimits(allowed_codecs=frozenset({"vp9"})))
    assert report.reason == R.UNSUPPORTED_CODEC
