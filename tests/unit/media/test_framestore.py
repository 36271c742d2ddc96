"""Frames stored one object per scoring batch: every frame reads back bit for bit, one GET per batch."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from kyc.domain.frame_location import frame_location, slice_range
from kyc.media.framestore import (
    FrameReader,
    batch_objects,
    frame_manifest,
)
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SampleSet, SamplingParams, sample_frames
from tests.fixtures.clips import make_clip


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSet:
    clip = make_clip(tmp_path_factory.mktemp("framestore") / "clip.mp4", seconds=2.0)
    return sample_frames(clip, SamplingParams(frame_count=20), MediaLimits(min_side=16))


def _stored(sample: SampleSet) -> tuple[dict[str, Any], dict[str, bytes]]:
    manifest = frame_manifest(sample, source_sha256="s" * 64, prefix="frames/x/")
    objects = {manifest["prefix"] + name: data for name, data in batch_objects(sample, manifest)}
    return manifest, objects


def test_every_frame_reads_back_as_sampled_with_one_get_per_batch(sample: SampleSet) -> None:
    manifest, objects = _stored(sample)
    gets: list[str] = []

    def get(key: str) -> bytes:
        gets.append(key)
        return objects[key]

    reader = FrameReader(manifest, get)
    for frame, entry in zip(sample.frames, manifest["frames"], strict=True):
        data = reader.read(entry)
        assert data == frame.data  # the oracle: the encoder's own bytes, not the manifest's hash
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert len(manifest["batches"]) >= 3  # 20 frames, at most 8 per request
    assert sorted(gets) == sorted(objects) and len(gets) == len(manifest["batches"])


def test_a_batch_holds_its_frames_in_batch_order(sample: SampleSet) -> None:
    manifest, objects = _stored(sample)
    reader = FrameReader(manifest, objects.__getitem__)
    by_index = {f.index: f.data for f in sample.frames}
    for batch in manifest["batches"]:
        got = reader.batch(batch["batch_index"])
        assert [entry["index"] for entry, _ in got] == batch["frames"]
        assert [data for _, data in got] == [by_index[i] for i in batch["frames"]]
        assert batch["bytes"] == sum(len(by_index[i]) for i in batch["frames"])


def test_a_manifest_of_one_object_per_frame_is_still_read(sample: SampleSet) -> None:
    """Executions in flight across an upgrade wrote frames one object each (no ``object`` field)."""
    manifest = sample.manifest(source_sha256="s" * 64) | {"prefix": "frames/old/"}
    objects = {
        "frames/old/" + e["file"]: f.data for e, f in zip(manifest["frames"], sample.frames, strict=True)
    }
    reader = FrameReader(manifest, objects.__getitem__)
    assert [reader.read(e) for e in manifest["frames"]] == [f.data for f in sample.frames]
    assert frame_location(manifest, manifest["frames"][0]) == {
        "key": "frames/old/" + manifest["frames"][0]["file"]
    }


def test_a_truncated_batch_object_yields_bytes_that_fail_the_hash(sample: SampleSet) -> None:
    manifest, objects = _stored(sample)
    last = manifest["frames"][-1]
    location = frame_location(manifest, last)
    truncated = objects[location["key"]][:-10]
    assert slice_range(truncated, location) == b""
    swapped = bytearray(objects[location["key"]])
    swapped[location["offset"]] ^= 0xFF
    assert hashlib.sha256(slice_range(bytes(swapped), location)).hexdigest() != last["sha256"]
