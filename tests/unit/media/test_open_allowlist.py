"""No decoder outside the allow-list initialises while an upload is opened and probed.

The oracle is FFmpeg's own log: a decoder that opens logs under its own name (``mpeg4``,
``mjpeg``, ``aac``) at debug level. The control test proves the log shows it when nothing stops
it, so the hardened test below can fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import av
import av.logging
import pytest

from kyc.domain.reasons import ReasonCode
from kyc.media.container import allowed_decoders, open_options, open_video
from kyc.media.errors import MediaRefusedError
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams, sample_frames
from kyc.media.validation import validate_upload
from tests.fixtures.clips import make_clip

LIMITS = MediaLimits(min_side=16)
ALLOWED = set(allowed_decoders(LIMITS.allowed_codecs).split(","))
DECODERS = set()
for _name in av.codecs_available:
    with suppress(av.FFmpegError, ValueError):
        DECODERS.add(av.Codec(_name, "r").name)


def _swap_sample_entry(path: Path, old: bytes, new: bytes) -> Path:
    """Rename the video sample entry (inside ``stsd``; ``ftyp`` lists ``avc1`` as a brand too)."""
    data = path.read_bytes()
    at = data.index(old, data.index(b"stsd"))
    swapped = path.with_name(f"{path.stem}-{new.decode()}{path.suffix}")
    swapped.write_bytes(data[:at] + new + data[at + 4 :])
    return swapped


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("allowlist")
    h264_aac = make_clip(root / "aac.mp4", seconds=1.2, width=160, height=120, audio=True)
    return {
        "mpeg4_part2": make_clip(root / "mp4v.mp4", codec="mpeg4", seconds=1.2, width=160, height=120),
        "mjpeg": make_clip(
            root / "mjpeg.mov", codec="mjpeg", container="mov", seconds=1.2, width=160, height=120,
            pix_fmt="yuvj420p",
        ),
        "h264_with_aac": h264_aac,
        "vp9_with_opus": make_clip(
            root / "opus.webm", codec="vp9", container="webm", seconds=1.2, width=160, height=120, audio=True
        ),
        "h264_tagged_mp4v": _swap_sample_entry(h264_aac, b"avc1", b"mp4v"),
        "h264_tagged_zzzz": _swap_sample_entry(h264_aac, b"avc1", b"zzzz"),
    }  # fmt: skip


@contextmanager
def _ffmpeg_log() -> Iterator[list[tuple[int, str, str]]]:
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.DEBUG)
    try:
        with av.logging.Capture(True) as logs:
            yield logs
    finally:
        av.logging.set_level(previous)


def _foreign_decoders(logs: list[tuple[int, str, str]]) -> set[str]:
    """Decoders outside the allow-list that logged anything but their own refusal."""
    return {
        name
        for _level, name, message in logs
        if name in DECODERS and name not in ALLOWED and "not on whitelist" not in message
    }


@pytest.mark.parametrize(
    ("case", "foreign"), [("mpeg4_part2", "mpeg4"), ("mjpeg", "mjpeg"), ("h264_with_aac", "aac")]
)
def test_plain_open_initialises_the_foreign_decoder(
    hostile: dict[str, Path], case: str, foreign: str
) -> None:
    """Control: without codec_whitelist, probing opens the decoder and the log shows it."""
    options = {k: v for k, v in open_options(LIMITS).items() if k != "codec_whitelist"}
    with _ffmpeg_log() as logs, open(hostile[case], "rb") as handle, av.open(handle, options=options):
        pass
    assert foreign in _foreign_decoders(logs)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("mpeg4_part2", ReasonCode.UNSUPPORTED_CODEC),
        ("mjpeg", ReasonCode.UNSUPPORTED_CODEC),
        ("h264_with_aac", None),
        ("vp9_with_opus", None),
        ("h264_tagged_mp4v", ReasonCode.UNSUPPORTED_CODEC),
        ("h264_tagged_zzzz", ReasonCode.UNSUPPORTED_CODEC),
    ],
)
def test_open_video_no_decoder_outside_allow_list_initialises(
    hostile: dict[str, Path], case: str, reason: ReasonCode | None
) -> None:
    got = None
    with _ffmpeg_log() as logs:
        try:
            with open_video(hostile[case], LIMITS):
                pass
        except MediaRefusedError as exc:
            got = exc.reason
    assert got == reason
    assert _foreign_decoders(logs) == set(), [entry for entry in logs if entry[1] in DECODERS]


def test_validate_upload_unknown_codec_ids_are_unsupported_not_errors(
    hostile: dict[str, Path], tmp_path: Path
) -> None:
    webm = make_clip(tmp_path / "vp9.webm", codec="vp9", container="webm", seconds=1.2, width=160, height=120)
    renamed = tmp_path / "xy8.webm"
    renamed.write_bytes(webm.read_bytes().replace(b"V_VP9", b"V_XY8"))
    for path in (hostile["h264_tagged_zzzz"], renamed):
        report = validate_upload(path, LIMITS)
        assert (report.accepted, report.reason) == (False, ReasonCode.UNSUPPORTED_CODEC), path.name
        with pytest.raises(MediaRefusedError) as caught:
            sample_frames(path, SamplingParams(frame_count=4), LIMITS)
        assert caught.value.reason == ReasonCode.UNSUPPORTED_CODEC
