"""A stored thing that is a byte range of a larger object (a frame inside its batch object)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
