"""Hostile files that lie about their bitstream: the sampler must decode what a full decode shows.

Oracle: a plain full decode of the same bytes (``av.open`` and decode every packet, no skipping,
no hardened open), converted to RGB by the same deterministic conversion as the sampler; the
sampler's frames come back as lossless PNG, so "the frames that play" is a pixel-equal check.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from kyc.domain.reasons import ReasonCode
from kyc.media import nal
from kyc.media.errors import MediaRefusedError
from kyc.media.frames import upright_rgb
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams, random_access_check, sample_frames
from kyc.media.validation import validate_upload
from tests.fixtures.bitstream_attacks import (
    false_keys,
    gop_clusters,
    h264_packets,
    laced_clusters,
    remux,
    set_tfdt,
    write_matroska,
)
from tests.fixtures.sampling_clips import INDEX_HEIGHT, INDEX_WIDTH, make_index_clip, read_index

LIMITS = MediaLimits(min_side=16)
TIMES = [i / 30 for i in range(90)]


def full_decode(path: Path) -> dict[float, np.ndarray]:
    """Every frame a plain full decode shows, by presentation time (s, rounded to the microsecond)."""
    shown: dict[float, np.ndarray] = {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            shown[round(float(frame.pts * frame.time_base), 6)] = upright_rgb(
                frame, rotation=0, sar=None, max_side=1024
            )
    return shown


def mismatches(path: Path, frame_count: int = 4) -> list[str]:
    """Sampled frames whose pixels differ from the full decode's frame at the same time."""
    sample = sample_frames(path, SamplingParams(frame_count=frame_count, image_format="png"), LIMITS)
    shown = full_decode(path)
    wrong = []
    for frame in sample.frames:
        image = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        expected = shown[round(sample.start_s + frame.pts_s, 6)]
        if not np.array_equal(image, expected):
            wrong.append(f"{frame.pts_s:.3f} s shows frame {read_index(image)}, plays {read_index(expected)}")
    return wrong


def claimed_keys(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [i for i, p in enumerate(container.demux(video=0)) if p.size and p.is_keyframe]


@pytest.mark.parametrize(("container", "suffix"), [("mp4", "mp4"), ("matroska", "mkv")])
@pytest.mark.parametrize("bframes", [0, 2])
def test_recovery_point_p_frames_flagged_key_sample_what_plays(
    tmp_path: Path, container: str, suffix: str, bframes: int
) -> None:
    """One IDR, then a P-picture flagged keyframe (recovery-point SEI in front) every 15 packets."""
    clean = make_index_clip(tmp_path / "clean.mp4", TIMES, bframes=bframes, gop=300)
    hostile = remux(clean, tmp_path / f"sei.{suffix}", false_keys(15, sei=True), container=container)
    assert len(claimed_keys(hostile)) == 6  # the container really claims the false keyframes
    assert mismatches(hostile) == []


@pytest.mark.parametrize(
    ("codec", "container", "suffix"),
    [
        ("libx264", "mp4", "mp4"),
        ("libx265", "mp4", "mp4"),
        ("libvpx", "webm", "webm"),
        ("libvpx-vp9", "webm", "webm"),
        ("libsvtav1", "matroska", "mkv"),
    ],
)
def test_random_access_read_from_bytes_matches_the_encoder_gop(
    tmp_path: Path, codec: str, container: str, suffix: str
) -> None:
    """A clean encode with a key picture every 15 frames: the byte-level check finds exactly those,
    and the decoder (the oracle) reports those same pictures as key frames."""
    clip = make_index_clip(tmp_path / f"gop.{suffix}", TIMES[:45], codec=codec, container=container, gop=15)
    with av.open(str(clip)) as source:
        stream = source.streams.video[0]
        check = random_access_check(stream)
        assert check is not None
        packets = [p for p in source.demux(stream) if p.size]
        found = [i for i, p in enumerate(packets) if check(p)]
    with av.open(str(clip)) as source:
        decoded_keys = sum(1 for f in source.decode(video=0) if f.key_frame)
    assert found and found[0] == 0
    assert len(found) == decoded_keys >= 3


def test_recovery_point_sei_p_frame_is_not_an_idr(tmp_path: Path) -> None:
    clean = make_index_clip(tmp_path / "clean.mp4", TIMES[:30], bframes=0, gop=300)
    hostile = remux(clean, tmp_path / "sei.mp4", false_keys(15, sei=True))
    with av.open(str(hostile)) as source:
        packets = [bytes(p) for p in source.demux(video=0) if p.size]
    assert [i for i, p in enumerate(packets) if nal.is_h264_idr(p, 4)] == [0]
    assert not nal.is_vp9_key(b"") and not nal.is_av1_key(b"\x12\x00") and not nal.is_vp8_key(b"\x00" * 9)


# --- packet times that go back over whole GOPs or fragments; frames without any time ---


def _index_packets(tmp_path: Path) -> tuple[bytes, list]:
    clean = make_index_clip(tmp_path / "gop15.mp4", TIMES, bframes=0, gop=15)
    return h264_packets(clean)


def _mkv(tmp_path: Path, name: str, clusters: list, **kwargs: object) -> Path:
    extradata, _ = _index_packets(tmp_path)
    return write_matroska(
        tmp_path / name, codec_id="V_MPEG4/ISO/AVC", codec_private=extradata,
        width=INDEX_WIDTH, height=INDEX_HEIGHT, clusters=clusters, **kwargs,
    )  # fmt: skip


def _outcome(path: Path) -> tuple[ReasonCode | None, ReasonCode | None]:
    report = validate_upload(path, LIMITS)
    try:
        sample_frames(path, SamplingParams(frame_count=8), LIMITS)
    except MediaRefusedError as exc:
        return report.reason, exc.reason
    return report.reason, None


def _oracle_times(path: Path) -> list[float | None]:
    with av.open(str(path)) as container:
        return [None if f.pts is None else float(f.pts * f.time_base) for f in container.decode(video=0)]


@pytest.mark.parametrize("cluster_times", [[0, 500, 1000, 250, 2000, 2500], [0, 500, 1000, 1500, 2000, 100]])
def test_matroska_cluster_jumping_back_a_whole_gop_is_inconsistent_timing(
    tmp_path: Path, cluster_times: list[int]
) -> None:
    _, packets = _index_packets(tmp_path)
    hostile = _mkv(tmp_path, "back.mkv", gop_clusters(packets, cluster_times))
    shown = _oracle_times(hostile)
    assert any(b < a for a, b in itertools.pairwise(shown))  # a full decode plays it backwards
    assert _outcome(hostile) == (ReasonCode.INCONSISTENT_TIMING, ReasonCode.INCONSISTENT_TIMING)
    intact = _mkv(tmp_path, "intact.mkv", gop_clusters(packets))
    assert _outcome(intact) == (None, None) and mismatches(intact, 8) == []


@pytest.mark.parametrize("fragment", [2, 4])
def test_fragmented_mp4_tfdt_jumping_back_is_inconsistent_timing(tmp_path: Path, fragment: int) -> None:
    clean = make_index_clip(tmp_path / "gop15.mp4", TIMES, bframes=2, gop=15)
    fragmented = tmp_path / "frag.mp4"
    with (
        av.open(str(clean)) as source,
        av.open(
            str(fragmented),
            "w",
            format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof"},
        ) as out,
    ):
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    assert _outcome(fragmented) == (None, None)
    hostile = tmp_path / "back.mp4"
    hostile.write_bytes(set_tfdt(fragmented.read_bytes(), fragment, 0))
    with av.open(str(hostile)) as container:
        times = [p.pts for p in container.demux(video=0) if p.size]
    assert min(times[15 * fragment :]) < max(times[: 15 * fragment])  # the file's own times go back
    assert _outcome(hostile) == (ReasonCode.INCONSISTENT_TIMING, ReasonCode.INCONSISTENT_TIMING)


def test_laced_frames_without_durations_are_refused_not_dropped(tmp_path: Path) -> None:
    _, packets = _index_packets(tmp_path)
    hostile = _mkv(tmp_path, "laced.mkv", laced_clusters(packets, 3))
    shown = _oracle_times(hostile)
    assert len(shown) == 90 and shown.count(None) == 60  # FFmpeg decodes them all; 2 in 3 have no time
    assert _outcome(hostile) == (ReasonCode.UNTIMED_FRAMES, ReasonCode.UNTIMED_FRAMES)


def test_laced_frames_with_default_duration_are_timed_and_sampled_as_played(tmp_path: Path) -> None:
    _, packets = _index_packets(tmp_path)
    timed = _mkv(tmp_path, "laced_dd.mkv", laced_clusters(packets, 3), default_duration_ns=33_333_333)
    assert None not in _oracle_times(timed)
    assert _outcome(timed) == (None, None)
    assert mismatches(timed, 8) == []


# --- decoys: a different frame held for a few milliseconds where a fixed target would land ---


def decoy_times(frames: int, fps: int, every: int, hold_ms: int) -> tuple[list[float], set[int]]:
    """A ``fps`` clip with, after every ``every``-th frame, a decoy shown for ``hold_ms`` before the next."""
    times, decoys = [], set()
    for i in range(frames):
        times.append(i / fps)
        if i % every == every // 2:
            decoys.add(len(times))
            times.append((i + 1) / fps - hold_ms / 1000)
    return times, decoys


def test_decoys_are_found_only_by_chance_and_never_stand_alone(tmp_path: Path) -> None:
    times, decoys = decoy_times(90, 30, 3, 3)  # a decoy in one frame slot of 3, on screen 3 ms of 33
    clip = make_index_clip(tmp_path / "decoys.mp4", times, bframes=0, gop=30)
    shown = full_decode(clip)
    assert len(shown) == len(times)  # a full decode plays every decoy
    hits = 0
    seeds = [f"{k:032x}" for k in range(1, 41)]
    for seed in seeds:
        sample = sample_frames(clip, SamplingParams(frame_count=16, image_format="png"), LIMITS, seed=seed)
        picked = [
            read_index(cv2.imdecode(np.frombuffer(f.data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1])
            for f in sample.frames
        ]
        on_decoy = tuple(i for i, index in enumerate(picked) if index in decoys)
        assert sample.briefly_shown == on_decoy  # every sampled decoy is flagged, nothing else is
        hits += len(on_decoy)
    share = hits / (16 * len(seeds))
    assert share < 0.1  # they hold 3 ms of every 100 ms: targets rarely land on them
    centred = sample_frames(clip, SamplingParams(frame_count=16), LIMITS, seed="00" * 16)
    assert centred.sampling_seed == "00" * 16
