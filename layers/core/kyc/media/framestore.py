"""The stored form of a sample: the manifest, and one object per scoring batch holding its frames.

One module writes and reads frames for every stage (extract writes; faces, score, notify and the
lineage verifier read), so where frames live is decided here once. A batch object is its frames'
encoded images back to back; the manifest names, for each frame, its object, offset and length
beside its SHA-256, and every read is checked against that hash: the batch object adds no trust,
it only replaces 32 PUT and 32 GET requests per stage with one per batch (docs/cost.md).

A manifest written before batch objects (frames stored one object each, no ``object`` field) is
still read, frame by frame, so executions in flight across an upgrade finish.

``frame_manifest`` serves the extract function and ``kycscreen extract`` alike, so what a person
inspects locally is exactly what the pipeline stores and scores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kyc.domain.contract import plan_batches
from kyc.domain.frame_location import frame_location, slice_range

if TYPE_CHECKING:  # PyAV is not in the score and decide functions' layers: no import of it here
    from kyc.media.sampling import SampleSet

BATCH_CONTENT_TYPE = "application/octet-stream"

Get = Callable[[str], bytes]


def batch_object_name(batch_index: int) -> str:
    return f"batch-{batch_index:03d}.bin"


def frame_manifest(sample: SampleSet, *, source_sha256: str, prefix: str) -> dict[str, Any]:
    """The sampling manifest plus where the frames live and how they are batched for the endpoint."""
    manifest = sample.manifest(source_sha256=source_sha256)
    batches = plan_batches([len(frame.data) for frame in sample.frames])
    manifest["prefix"] = prefix
    manifest["batches"] = []
    for i, members in enumerate(batches):
        name, offset = batch_object_name(i), 0
        for j in members:
            entry = manifest["frames"][j]
            entry |= {"object": name, "offset": offset, "length": len(sample.frames[j].data)}
            offset += len(sample.frames[j].data)
        manifest["batches"].append(
            {
                "batch_index": i,
                "frames": [sample.frames[j].index for j in members],
                "object": name,
                "bytes": offset,
            }
        )
    return manifest


def batch_objects(sample: SampleSet, manifest: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """(object name, bytes) of each batch object the manifest names, in batch order."""
    by_index = {frame.index: frame for frame in sample.frames}
    return [
        (batch["object"], b"".join(by_index[i].data for i in batch["frames"]))
        for batch in manifest["batches"]
    ]


class FrameReader:
    """Frames by manifest entry, each object fetched once (thread-safe: faces reads in parallel)."""

    def __init__(self, manifest: Mapping[str, Any], get: Get) -> None:
        self._manifest = manifest
        self._get = get
        self._objects: dict[str, bytes] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def read(self, entry: Mapping[str, Any]) -> bytes:
        """The frame's bytes as stored; the caller checks them against ``entry["sha256"]``."""
        location = frame_location(self._manifest, entry)
        return slice_range(self._object(location["key"]), location)

    def batch(self, batch_index: int) -> list[tuple[Mapping[str, Any], bytes]]:
        """The entries of one scoring batch with their bytes, in batch order."""
        entries = {entry["index"]: entry for entry in self._manifest["frames"]}
        members = self._manifest["batches"][batch_index]["frames"]
        return [(entries[i], self.read(entries[i])) for i in members]

    @property
    def objects_read(self) -> int:
        return len(self._objects)

    def _object(self, key: str) -> bytes:
        with self._guard:
            if key in self._objects:
                return self._objects[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._objects:
                    return self._objects[key]
            data = self._get(key)
            with self._guard:
                self._objects[key] = data
            return data
