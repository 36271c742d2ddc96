"""Sampled frames are the frames the plan chose, upright and in true colour."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kyc.media import sampling
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams, SamplingParamsError, sample_frames, write_frames
from tests.fixtures.sampling_clips import (
    BARS,
    make_colour_bars,
    make_index_clip,
    make_marker_clip,
    marker_image,
    read_index,
)
from tests.fixtures.timeline_oracle import coverage_problems, displayed_times

LIMITS = MediaLimits(min_side=16)


def _rgb(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _offset(seed: str, k: int, margin: float) -> float:
    """Where in bin ``k`` the target lies, written out from docs/sampling.md."""
    digest = hmac.new(bytes.fromhex(seed), b"kyc.sampling/1:" + k.to_bytes(4, "big"), "sha256").digest()
    return margin + int.from_bytes(digest[:8], "big") / 2**64 * (1 - 2 * margin)


def _by_hand(shown: list[float], frame_s: float, count: int, sample: sampling.SampleSet) -> list[int]:
    """Frames on screen at one target per bin over [first frame, last frame + one frame interval],
    each at the recorded seed's offset in its bin.

    Written out here from the specification (docs/sampling.md), not taken from the sampler. The
    span is the sampler's measured one once checked against the full decode's to the millisecond:
    a jittered target may fall within a rounding error of a frame boundary.
    """
    start, end = shown[0], shown[-1] + frame_s
    assert sample.duration_s == pytest.approx(end - start, abs=2e-3)
    assert sample.typical_frame_s == pytest.approx(min(b - a for a, b in itertools.pairwise(shown)), abs=2e-3)
    end = start + sample.duration_s
    seed, step = sample.sampling_seed, sample.duration_s / count
    margin = min(0.25, sample.typical_frame_s / (2 * step))
    chosen: list[int] = []
    for k in range(count):
        target = start + (k + _offset(seed, k, margin)) * step
        index = max(i for i, t in enumerate(shown) if t <= target + 1e-9) if target >= shown[0] else 0
        if chosen and index <= chosen[-1]:  # taken: the next frame, if it starts inside this bin
            following = chosen[-1] + 1
            if following < len(shown) and shown[following] < start + (k + 1) * step - 1e-9:
                index = following
        if not chosen or index > chosen[-1]:
            chosen.append(index)
    return chosen


@pytest.mark.parametrize(
    ("name", "times", "bframes", "gop", "frame_s"),
    [
        ("cfr_bframes", [i / 30 for i in range(90)], 3, 12, 1 / 30),
        ("cfr_long_gop", [i / 30 for i in range(150)], 2, 60, 1 / 30),
        ("vfr", [i * 0.02 + (0.4 if i > 40 else 0) + (i % 3) * 0.005 for i in range(100)], 3, 10, None),
        ("short", [i / 10 for i in range(12)], 0, 5, 1 / 10),
    ],
)
def test_sample_frames_index_clip_yields_the_frames_on_screen_at_even_times(
    tmp_path: Path, name: str, times: list[float], bframes: int, gop: int, frame_s: float | None
) -> None:
    clip = make_index_clip(tmp_path / f"{name}.mp4", times, bframes=bframes, gop=gop)
    shown = displayed_times(clip)  # the reference: a plain full decode
    assert [t - shown[0] for t in shown] == pytest.approx([t - times[0] for t in times], abs=2e-3)
    sample = sample_frames(clip, SamplingParams(frame_count=32), LIMITS)
    got = [read_index(_rgb(f.data)) for f in sample.frames]
    sampled = [sample.start_s + f.pts_s for f in sample.frames]
    assert sampled == pytest.approx([shown[i] for i in got], abs=1e-5)  # image and timestamp agree
    assert coverage_problems(sampled, shown, 32) == []
    if frame_s is not None:  # constant rate: the exact frames are known by hand
        assert got == _by_hand(shown, frame_s, 32, sample)
    assert sample.short_clip == (len(got) < 32)


def _seeds_whose_targets_share_a_frame(frames: int, count: int, wanted: int) -> list[str]:
    """Seeds under which two of the jittered targets (docs/sampling.md, by hand) fall on one frame
    of a ``frames``-frame, 10 fps clip: the samples that shrank before targets moved off taken frames."""
    step, margin = frames / 10 / count, min(0.25, 0.1 / (2 * frames / 10 / count))
    found = []
    for n in range(20_000):
        seed = hashlib.sha256(f"short {frames} {n}".encode()).hexdigest()[:32]
        on = [int((k + _offset(seed, k, margin)) * step * 10 + 1e-9) for k in range(count)]
        if len(set(on)) < count:
            found.append(seed)
            if len(found) == wanted:
                break
    return found


@pytest.mark.parametrize("frames", [10, 12, 15])
def test_a_short_clip_sampled_at_8_yields_8_frames_whatever_the_seed(tmp_path: Path, frames: int) -> None:
    """Bins shorter than two frames: before targets moved off taken frames, a 10-frame clip lost a
    frame in 17 % of samples (REVIEW INSUFFICIENT_FRAMES at a frame count of 8). The seeds are those
    under which two targets share a frame."""
    times = [i / 10 for i in range(frames)]
    clip = make_index_clip(tmp_path / "short.mp4", times, bframes=0, gop=5)
    shown = displayed_times(clip)
    seeds = _seeds_whose_targets_share_a_frame(frames, 8, wanted=6)
    assert seeds
    for seed in seeds:
        sample = sample_frames(clip, SamplingParams(frame_count=8), LIMITS, seed=seed)
        got = [read_index(_rgb(f.data)) for f in sample.frames]
        assert len(got) == len(set(got)) == 8 and not sample.short_clip, (seed, got)
        assert got == _by_hand(shown, 0.1, 8, sample)


def test_sample_frames_long_gop_clip_decodes_fewer_frames_than_it_holds(tmp_path: Path) -> None:
    clip = make_index_clip(tmp_path / "sparse.mp4", [i / 30 for i in range(300)], bframes=2, gop=30)
    sample = sample_frames(clip, SamplingParams(frame_count=4), LIMITS)
    assert len(sample.frames) == 4
    assert sample.decoded_frames < 300 * 0.75


def test_sample_frames_keyframes_only_returns_keyframes(tmp_path: Path) -> None:
    clip = make_index_clip(tmp_path / "keys.mp4", [i / 30 for i in range(120)], bframes=2, gop=15)
    sample = sample_frames(clip, SamplingParams(frame_count=32, keyframes_only=True), LIMITS)
    got = [read_index(_rgb(f.data)) for f in sample.frames]
    assert got == sorted(set(got))
    assert all(index % 15 == 0 for index in got) and all(f.keyframe for f in sample.frames)
    assert len(got) == 8 and sample.short_clip


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_sample_frames_rotated_marker_clip_comes_out_upright(tmp_path: Path, rotation: int) -> None:
    clip = make_marker_clip(tmp_path / f"rot{rotation}.mp4", rotation)
    sample = sample_frames(clip, SamplingParams(frame_count=4, image_format="png"), LIMITS)
    truth = marker_image()
    assert sample.rotation == rotation
    for frame in sample.frames:
        image = _rgb(frame.data)
        assert image.shape == truth.shape
        assert np.abs(image.astype(int) - truth).mean() < 3


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
@pytest.mark.parametrize("full_range", [False, True])
@pytest.mark.parametrize("bit_depth", [8, 10])
def test_sample_frames_colour_bars_match_true_rgb(
    tmp_path: Path, matrix: str, full_range: bool, bit_depth: int
) -> None:
    clip = make_colour_bars(tmp_path / "bars.mp4", matrix=matrix, full_range=full_range, bit_depth=bit_depth)
    sample = sample_frames(clip, SamplingParams(frame_count=2, image_format="png"), LIMITS)
    image = _rgb(sample.frames[0].data)
    centres = [image[32, i * 32 + 16].astype(int) for i in range(len(BARS))]
    errors = [np.abs(c - np.array(rgb)).max() for c, rgb in zip(centres, BARS, strict=True)]
    assert max(errors) <= 2, errors


def test_write_frames_manifest_hashes_match_stored_files(tmp_path: Path) -> None:
    clip = make_index_clip(tmp_path / "clip.mp4", [i / 30 for i in range(60)], bframes=2, gop=12)
    sample = sample_frames(clip, SamplingParams(frame_count=8), LIMITS)
    manifest_path = write_frames(sample, tmp_path / "out", source_sha256="ab" * 32)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source_sha256"] == "ab" * 32 and manifest["sampled"] == 8 and manifest["requested"] == 8
    assert "data" not in json.dumps(manifest)
    for entry in manifest["frames"]:
        data = (manifest_path.parent / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    assert sorted(p.name for p in manifest_path.parent.iterdir()) == sorted(
        [e["file"] for e in manifest["frames"]] + ["manifest.json"]
    )


def test_sample_frames_same_clip_twice_same_bytes(tmp_path: Path) -> None:
    clip = make_index_clip(tmp_path / "clip.mp4", [i / 30 for i in range(60)])
    first = sample_frames(clip, SamplingParams(frame_count=6), LIMITS)
    second = sample_frames(clip, SamplingParams(frame_count=6), LIMITS, seed=first.sampling_seed)
    assert [f.sha256 for f in first.frames] == [f.sha256 for f in second.frames]
    assert first.manifest(source_sha256="")["sampling_seed"] == first.sampling_seed


def test_sample_frames_large_frame_resized_to_max_side_without_upscaling(tmp_path: Path) -> None:
    clip = make_marker_clip(tmp_path / "small.mp4", 90)
    assert {
        (f.width, f.height) for f in sample_frames(clip, SamplingParams(frame_count=2), LIMITS).frames
    } == {(320, 192)}
    small = sample_frames(clip, SamplingParams(frame_count=2, max_side=160), LIMITS)
    assert {(f.width, f.height) for f in small.frames} == {(160, 96)}


@pytest.mark.parametrize(
    "params", [{"frame_count": 0}, {"max_side": 4}, {"image_format": "gif"}, {"jpeg_quality": 101}]
)
def test_sampling_params_out_of_range_raise(params: dict) -> None:
    with pytest.raises(SamplingParamsError):
        SamplingParams(**params)


def test_sample_frames_non_reference_pictures_left_undecoded_same_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_index_clip(tmp_path / "bpyramid.mp4", [i / 30 for i in range(120)], bframes=3, gop=24)
    skipping = sample_frames(clip, SamplingParams(frame_count=32), LIMITS)
    monkeypatch.setattr(sampling, "_disposable_check", lambda stream: None)
    decoding_all = sample_frames(clip, SamplingParams(frame_count=32), LIMITS, seed=skipping.sampling_seed)

    assert [f.sha256 for f in skipping.frames] == [f.sha256 for f in decoding_all.frames]
    shown = displayed_times(clip)
    assert [read_index(_rgb(f.data)) for f in skipping.frames] == _by_hand(shown, 1 / 30, 32, skipping)
    assert skipping.decoded_frames < decoding_all.decoded_frames
