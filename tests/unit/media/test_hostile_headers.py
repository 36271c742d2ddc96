"""Smaller header lies (issue 22): sample tables that claim more than the file holds, legacy
non-UTF-8 metadata, and pixel aspect ratios that squash the picture to a line."""

from __future__ import annotations

import resource
from pathlib import Path

import av
import pytest

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError
from kyc.media.isolated import validate_isolated
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams, sample_frames
from kyc.media.sandbox import SandboxLimits
from kyc.media.validation import validate_upload
from tests.fixtures.bitstream_attacks import (
    gop_clusters,
    h264_packets,
    with_pasp,
    with_table_claim,
    write_matroska,
)
from tests.fixtures.clips import make_clip

LIMITS = MediaLimits()
SANDBOX = SandboxLimits(memory_bytes=2048 << 20, cpu_s=60, wall_s=30.0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("headers") / "clip.mp4", seconds=2.0, width=320, height=240)


@pytest.mark.parametrize(
    ("box", "sample_size"),
    [(b"stsz", 1), (b"stsz", None), (b"stts", None), (b"stsc", None), (b"stco", None), (b"trun", None)],
)
def test_sample_table_claiming_more_than_the_file_holds_is_refused_before_ffmpeg(
    tmp_path: Path, clip: Path, box: bytes, sample_size: int | None
) -> None:
    if box == b"trun":  # a fragmented copy: the claim sits in a movie fragment
        fragmented = tmp_path / "fragmented.mp4"
        with (
            av.open(str(clip)) as source,
            av.open(
                str(fragmented), "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}
            ) as out,
        ):
            stream = out.add_stream_from_template(source.streams.video[0])
            for packet in source.demux(video=0):
                if packet.size:
                    packet.stream = stream
                    out.mux(packet)
        clip = fragmented
        assert validate_upload(clip, LIMITS).accepted
    data = clip.read_bytes()
    assert len(data) < 200_000
    hostile = with_table_claim(data, box, 50_000_000, sample_size=sample_size)
    path = tmp_path / "claims.mp4"
    path.write_bytes(hostile)
    report, usage = validate_isolated(path, LIMITS, SANDBOX)
    assert report.reason is ReasonCode.CORRUPT_MEDIA and "more than the file can hold" in report.message
    # Refused by the box walk: the child never builds FFmpeg's index (it reached 645 MiB before).
    assert usage is not None and usage.max_rss_bytes < 128 << 20 + resource.getpagesize()


def test_intact_clip_tables_are_accepted(clip: Path) -> None:
    assert validate_upload(clip, LIMITS).accepted


@pytest.mark.parametrize("container", ["mp4", "matroska"])
def test_latin1_metadata_is_read_leniently(tmp_path: Path, clip: Path, container: str) -> None:
    tagged = tmp_path / f"tagged.{container}"
    with av.open(str(clip)) as source, av.open(str(tagged), "w", format=container) as out:
        out.metadata["title"] = "CafeZZ legacy tag"
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    data = tagged.read_bytes()
    assert data.count(b"CafeZZ") == 1
    tagged.write_bytes(data.replace(b"CafeZZ", b"Caf\xe9\xff\xfe"))  # Latin-1, not UTF-8
    with pytest.raises(UnicodeDecodeError):  # what a strict reader does with it
        av.open(str(tagged)).close()
    report = validate_upload(tagged, LIMITS)
    assert report.accepted, report.message
    assert len(sample_frames(tagged, SamplingParams(frame_count=4), LIMITS).frames) == 4


def _pasp(tmp_path: Path, clip: Path, h_spacing: int, v_spacing: int) -> Path:
    path = tmp_path / f"pasp_{h_spacing}_{v_spacing}.mp4"
    path.write_bytes(with_pasp(clip.read_bytes(), h_spacing, v_spacing))
    return path


def _display(tmp_path: Path, clip: Path, width: int, height: int) -> Path:
    extradata, packets = h264_packets(clip)
    return write_matroska(
        tmp_path / f"display_{width}_{height}.mkv", codec_id="V_MPEG4/ISO/AVC", codec_private=extradata,
        width=320, height=240, clusters=gop_clusters(packets), display=(width, height),
    )  # fmt: skip


@pytest.mark.parametrize(
    "build",
    [
        lambda tmp, clip: _pasp(tmp, clip, 65535, 1),
        lambda tmp, clip: _pasp(tmp, clip, 1, 65535),
        lambda tmp, clip: _display(tmp, clip, 320 * 65535, 240),
        lambda tmp, clip: _display(tmp, clip, 320, 240 * 40),
    ],
    ids=["pasp_65535_1", "pasp_1_65535", "mkv_display_wide", "mkv_display_tall"],
)
def test_extreme_pixel_aspect_ratio_is_refused(tmp_path: Path, clip: Path, build: object) -> None:
    path = build(tmp_path, clip)
    with av.open(str(path)) as container:  # a plain reader really stretches the picture that far
        stream = container.streams.video[0]
        shown = 320 * stream.sample_aspect_ratio / 240
    assert not 1 / 4 <= shown <= 4
    assert validate_upload(path, LIMITS).reason is ReasonCode.ASPECT_RATIO_INVALID
    with pytest.raises(MediaRefusedError) as refused:
        sample_frames(path, SamplingParams(frame_count=4), LIMITS)
    assert refused.value.reason is ReasonCode.ASPECT_RATIO_INVALID


def test_ordinary_anamorphic_pixels_are_squared_not_refused(tmp_path: Path, clip: Path) -> None:
    path = _pasp(tmp_path, clip, 4, 3)
    report = validate_upload(path, LIMITS)
    assert report.accepted and report.media is not None and report.media.sample_aspect_ratio == "4:3"
    frame = sample_frames(path, SamplingParams(frame_count=2), LIMITS).frames[0]
    assert (frame.width, frame.height) == (427, 240)
