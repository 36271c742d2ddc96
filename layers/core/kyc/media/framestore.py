"""The stored form of a sample: the manifest the extract function writes next to the frames.

One function builds it for the extract function and for ``kycscreen extract``, so what a person
inspects locally is exactly what the pipeline stores and scores.
"""

from __future__ import annotations

from typing import Any

from kyc.domain.contract import plan_batches
from kyc.media.sampling import SampleSet


def frame_manifest(sample: SampleSet, *, source_sha256: str, prefix: str) -> dict[str, Any]:
    """The sampling manifest plus where the frames live and how they are batched for the endpoint."""
    manifest = sample.manifest(source_sha256=source_sha256)
    batches = plan_batches([len(frame.data) for frame in sample.frames])
    manifest["prefix"] = prefix
    manifest["batches"] = [
        {"batch_index": i, "frames": [sample.frames[j].index for j in members]}
        for i, members in enumerate(batches)
    ]
    return manifest
