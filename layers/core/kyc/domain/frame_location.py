"""Where a sampled frame's bytes are stored: its batch object and the byte range inside it.

Pure functions over the frame manifest (kyc.media.framestore writes it), for every reader: the
stages that fetch frames, the decision's lineage that points at them, the verifier that re-hashes
them. A manifest written before batch objects (one object per frame, no ``object`` field) resolves
to the frame's own object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def frame_key(manifest: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """The object key that holds this frame's bytes (its batch object, or its own in older manifests)."""
    return manifest["prefix"] + (entry.get("object") or entry["file"])


def frame_location(manifest: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """Key, offset and length of a frame, for records that point at it (the decision's lineage)."""
    location: dict[str, Any] = {"key": frame_key(manifest, entry)}
    if entry.get("object"):
        location |= {"offset": int(entry["offset"]), "length": int(entry["length"])}
    return location


def slice_range(data: bytes, location: Mapping[str, Any]) -> bytes:
    """The bytes at ``location``'s offset and length in ``data``; all of ``data`` when it has no offset.

    A range past the end (a truncated or replaced object) yields ``b""``: the caller's hash check
    reports it, as it reports any other wrong bytes.
    """
    if "offset" not in location:
        return data
    start, length = int(location["offset"]), int(location["length"])
    if start < 0 or length < 0 or start + length > len(data):
        return b""
    return data[start : start + length]
