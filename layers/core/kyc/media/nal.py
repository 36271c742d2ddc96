"""Bitstream facts read straight from packets: which frames no other frame depends on, and which
frames a decoder can really start from.

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


# --- random-access points, read from the bytes (the container's key flag is the uploader's claim) ---

_H264_IDR = 5
_HEVC_IRAP = range(16, 24)  # BLA_W_LP .. RSV_IRAP_VCL23 (ITU-T H.265 7.4.2.2)
_HEVC_VCL = range(0, 32)


def hvcc_length_size(extradata: bytes | None) -> int | None:
    """NAL length-prefix size from an ``hvcC`` record; None for Annex-B streams."""
    if extradata and len(extradata) >= 23 and extradata[0] == 1:
        return (extradata[21] & 0x03) + 1
    return None


def is_h264_idr(data: bytes, length_size: int | None) -> bool:
    """True when the access unit's first coded slice is an IDR slice (``nal_unit_type`` 5).

    A recovery-point SEI makes FFmpeg's parser flag a P-picture as a keyframe; only an IDR
    empties the reference buffer, so only an IDR is a point the decoder can start from.
    """
    headers = _nal_headers_avcc(data, length_size) if length_size else _nal_headers_annexb(data)
    slices = [h & 0x1F for h in headers or () if h & 0x1F in _SLICE_TYPES]
    return bool(slices) and slices[0] == _H264_IDR


def is_hevc_irap(data: bytes, length_size: int | None) -> bool:
    """True when the access unit's first VCL NAL unit is an IRAP picture (``nal_unit_type`` 16..23)."""
    headers = _nal_headers_avcc(data, length_size) if length_size else _nal_headers_annexb(data)
    types = [(h >> 1) & 0x3F for h in headers or ()]
    vcl = [t for t in types if t in _HEVC_VCL]
    return bool(vcl) and vcl[0] in _HEVC_IRAP


def is_vp8_key(data: bytes) -> bool:
    """VP8 frame tag: bit 0 clear means a key frame, which carries the start code 9d 01 2a (RFC 6386 9.1)."""
    return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"


def is_vp9_key(data: bytes) -> bool:
    """VP9 uncompressed header of the packet's first frame: ``frame_type`` 0 (KEY_FRAME) and the sync code.

    A key frame refreshes every reference slot, so nothing after it depends on what came before.
    """
    bits = _Bits(data)
    if bits.read(2) != 0b10:  # frame_marker
        return False
    profile = bits.read(1) | (bits.read(1) << 1)
    if profile == 3 and bits.read(1):
        return False
    if bits.read(1):  # show_existing_frame: repeats an old frame
        return False
    frame_type = bits.read(1)
    bits.read(2)  # show_frame, error_resilient_mode
    return frame_type == 0 and bits.read(24) == 0x498342


def is_av1_key(data: bytes) -> bool:
    """The packet's first frame header OBU: a KEY_FRAME that is shown (it then refreshes every slot).

    Assumes ``reduced_still_picture_header`` is 0; under it every frame is a key frame, and a
    misread only means decoding more.
    """
    at = 0
    while at < len(data):
        header = data[at]
        obu_type, extension, has_size = (header >> 3) & 0x0F, (header >> 2) & 1, (header >> 1) & 1
        at += 1 + extension
        size = len(data) - at
        if has_size:
            size, used = _leb128(data, at)
            if size is None:
                return False
            at += used
        if obu_type in (3, 6):  # OBU_FRAME_HEADER, OBU_FRAME
            if at >= len(data):
                return False
            first = data[at]
            show_existing, frame_type, show_frame = first >> 7, (first >> 5) & 0x03, (first >> 4) & 1
            return not show_existing and frame_type == 0 and bool(show_frame)
        at += size
    return False


def _leb128(data: bytes, at: int) -> tuple[int | None, int]:
    value = 0
    for i in range(8):
        if at + i >= len(data):
            return None, i
        byte = data[at + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, i + 1
    return None, 8


class _Bits:
    """Big-endian bit reader that reads zeros past the end (a short header then fails its checks)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self._data[self._at >> 3] if self._at >> 3 < len(self._data) else 0
            value = (value << 1) | ((byte >> (7 - (self._at & 7))) & 1)
            self._at += 1
        return value
