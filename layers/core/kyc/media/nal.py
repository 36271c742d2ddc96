"""H.264 NAL headers read straight from packets: which frames no other frame depends on.

A picture whose slices all carry ``nal_ref_idc == 0`` is never used to predict another picture
(ITU-T H.264 7.4.1), so the sampler may leave it undecoded when it is not a chosen frame. Anything
that does not parse cleanly is treated as a reference picture: skipping is only ever an optimisation.
"""

from __future__ import annotations

_SLICE_TYPES = (1, 5)  # coded slice of a non-IDR / IDR picture


def avcc_length_size(extradata: bytes | None) -> int | None:
    """NAL length-prefix size from an ``avcC`` record (MP4/MOV/Matroska); None for Annex-B streams."""
    if extradata and len(extradata) >= 5 and extradata[0] == 1:
        return (extradata[4] & 0x03) + 1
    return None


def is_disposable_h264(data: bytes, length_size: int | None) -> bool:
    """True when every slice in the access unit is a non-reference slice (and at least one exists)."""
    headers = _nal_headers_avcc(data, length_size) if length_size else _nal_headers_annexb(data)
    if headers is None:
        return False
    slices = [h for h in headers if h & 0x1F in _SLICE_TYPES]
    return bool(slices) and all((h >> 5) & 0x03 == 0 for h in slices)


def _nal_headers_avcc(data: bytes, length_size: int) -> list[int] | None:
    headers: list[int] = []
    at = 0
    while at < len(data):
        if at + length_size > len(data):
            return None
        size = int.from_bytes(data[at : at + length_size], "big")
        at += length_size
        if size == 0 or at + size > len(data):
            return None
        headers.append(data[at])
        at += size
    return headers


def _nal_headers_annexb(data: bytes) -> list[int] | None:
    headers: list[int] = []
    at = data.find(b"\x00\x00\x01")
    while at != -1 and at + 3 < len(data):
        headers.append(data[at + 3])
        at = data.find(b"\x00\x00\x01", at + 3)
    return headers or None
