"""Cheap structural probes that run before (or beside) FFmpeg.

The ISO-BMFF box walk reads box headers only (it seeks over payloads), so it costs a few
hundred small reads even for a large file. It finds what FFmpeg would happily hide from us:
encryption (CENC sample entries, ``pssh``/``tenc``/``senc`` boxes), a missing movie index, a
file cut short, and more tracks than we accept.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError

# Boxes whose payload is a list of boxes (after ``skip`` leading bytes).
_CONTAINER_BOXES: dict[bytes, int] = {
    b"moov": 0, b"trak": 0, b"mdia": 0, b"minf": 0, b"stbl": 0, b"moof": 0, b"traf": 0,
    b"mvex": 0, b"edts": 0, b"dinf": 0, b"udta": 0, b"sinf": 0, b"schi": 0,
}  # fmt: skip
_ENCRYPTION_BOXES = frozenset({b"pssh", b"tenc", b"senc", b"sinf", b"schm"})
_ENCRYPTED_ENTRIES = frozenset({b"encv", b"enca", b"enct", b"encs"})
_VISUAL_ENTRIES = frozenset(
    {b"avc1", b"avc3", b"hvc1", b"hev1", b"vp08", b"vp09", b"av01", b"encv", b"dvh1", b"dvhe"}
)
_MAX_BOXES = 20_000
# The C2PA manifest store in ISO-BMFF: a top-level 'uuid' box with this extended type.
C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
_MAX_DEPTH = 10


@dataclass(frozen=True)
class IsoLayout:
    """What the box walk saw. ``truncated`` means a box claims bytes past the end of the file."""

    has_moov: bool
    tracks: int
    sample_entries: frozenset[bytes] = field(default_factory=frozenset)
    encryption_boxes: frozenset[bytes] = field(default_factory=frozenset)
    truncated: bool = False
    external_refs: int = 0  # data references that are not self-contained
    video_size: tuple[int, int] | None = None  # first visual sample entry's declared width x height
    # provenance evidence (kyc.media.forensics, kyc.media.c2pa_manifest): never a refusal by itself
    movie_times: tuple[int, int] | None = None  # mvhd creation and modification, seconds since 1904
    c2pa_boxes: int = 0  # top-level uuid boxes of the C2PA manifest store
    c2pa_bytes: int = 0  # and their total size

    oversized_tables: tuple[str, ...] = ()  # sample tables claiming more than the file can hold

    @property
    def encrypted(self) -> bool:
        return bool(self.encryption_boxes or self.sample_entries & _ENCRYPTED_ENTRIES)


def scan_iso_bmff(handle: BinaryIO, size: int) -> IsoLayout:
    """Walk the box tree of an ISO-BMFF file, never reading sample data."""
    state = _WalkState()
    _walk(handle, 0, size, size, 0, state)
    return IsoLayout(
        has_moov=state.has_moov,
        tracks=state.tracks,
        sample_entries=frozenset(state.entries),
        encryption_boxes=frozenset(state.encryption),
        truncated=state.truncated,
        video_size=state.video_size,
        external_refs=state.external_refs,
        movie_times=state.movie_times,
        c2pa_boxes=state.c2pa_boxes,
        c2pa_bytes=state.c2pa_bytes,
        oversized_tables=tuple(state.oversized),
    )


@dataclass
class _WalkState:
    has_moov: bool = False
    tracks: int = 0
    boxes: int = 0
    truncated: bool = False
    video_size: tuple[int, int] | None = None
    external_refs: int = 0
    movie_times: tuple[int, int] | None = None
    c2pa_boxes: int = 0
    c2pa_bytes: int = 0
    entries: set[bytes] = field(default_factory=set)
    encryption: set[bytes] = field(default_factory=set)
    oversized: list[str] = field(default_factory=list)


def _walk(handle: BinaryIO, start: int, end: int, file_size: int, depth: int, state: _WalkState) -> None:
    offset = start
    while offset + 8 <= end and state.boxes < _MAX_BOXES:
        state.boxes += 1
        handle.seek(offset)
        header = handle.read(16)
        if len(header) < 8:
            return
        box_size, box_type, header_len = int.from_bytes(header[:4], "big"), header[4:8], 8
        if box_size == 1:
            if len(header) < 16:
                return
            box_size, header_len = int.from_bytes(header[8:16], "big"), 16
        elif box_size == 0:
            box_size = end - offset
        if box_size < header_len:
            return  # malformed; FFmpeg will refuse or the decode probe will
        if depth == 0 and offset + box_size > file_size:
            state.truncated = True
        if depth == 0 and box_type == b"uuid" and _read_at(handle, offset + header_len, 16) == C2PA_UUID:
            state.c2pa_boxes += 1
            state.c2pa_bytes += box_size
        _visit(handle, box_type, offset + header_len, min(offset + box_size, end), file_size, depth, state)
        offset += box_size


def _visit(
    handle: BinaryIO, box_type: bytes, body: int, end: int, file_size: int, depth: int, state: _WalkState
) -> None:
    if box_type == b"moov" and depth == 0:
        state.has_moov = True
    if box_type == b"trak":
        state.tracks += 1
    if box_type in _ENCRYPTION_BOXES:
        state.encryption.add(box_type)
    if box_type == b"mvhd" and state.movie_times is None:
        state.movie_times = _movie_times(handle, body, end)
    if box_type in _TABLE_ENTRY_BYTES or box_type in (b"stsz", b"trun"):
        problem = _table_claim(box_type, _read_at(handle, body, 16), end - body, file_size)
        if problem:
            state.oversized.append(problem)
    if depth >= _MAX_DEPTH:
        return
    if box_type == b"meta":
        handle.seek(body + 4)
        skip = 0 if handle.read(4) == b"hdlr" else 4  # QuickTime 'meta' has no version/flags
        _walk(handle, body + skip, end, file_size, depth + 1, state)
    elif box_type in _CONTAINER_BOXES:
        _walk(handle, body + _CONTAINER_BOXES[box_type], end, file_size, depth + 1, state)
    elif box_type == b"dref":
        _read_data_references(handle, body, end, state)
    elif box_type == b"stsd":
        _read_sample_entries(handle, body, end, file_size, depth, state)


# Sample tables whose entries are all stored: bytes per entry after version/flags and entry_count.
_TABLE_ENTRY_BYTES = {
    b"stts": 8, b"ctts": 8, b"stsc": 12, b"stco": 4, b"co64": 8, b"stss": 4, b"stps": 4, b"sbgp": 8,
}  # fmt: skip


def _table_claim(box_type: bytes, head: bytes, payload: int, file_size: int) -> str | None:
    """Why a sample table claims more than its box or the file can hold, or None.

    FFmpeg sizes its sample index from these counts before it reads a byte of the table: a 100 KB
    file that claims tens of millions of samples drove the validation child past 900 MiB. A
    stored table needs its entries in the box; a count of samples with no per-sample entry (a
    constant-size ``stsz``, a ``trun`` with defaults) needs at least one byte per sample in the file.
    """
    if len(head) < 8:
        return None
    kind = box_type.decode("latin-1")
    if box_type == b"stsz":
        if len(head) < 12:
            return None
        sample_size, count = int.from_bytes(head[4:8], "big"), int.from_bytes(head[8:12], "big")
        stored, room = (count * 4, payload - 12) if sample_size == 0 else (count * sample_size, file_size)
        return f"stsz claims {count} samples" if stored > room else None
    count = int.from_bytes(head[4:8], "big")
    if box_type == b"trun":
        flags = int.from_bytes(head[1:4], "big")
        per_sample = 4 * bin(flags & 0xF00).count("1")
        fixed = 8 + 4 * bool(flags & 0x001) + 4 * bool(flags & 0x004)
        if per_sample:
            return f"trun claims {count} samples" if count * per_sample > payload - fixed else None
        return f"trun claims {count} samples" if count > file_size else None
    header = 8
    if box_type == b"sbgp":  # grouping_type (and in version 1 its parameter) before the count
        header = 16 if head[0] == 1 else 12
        if len(head) < header:
            return None
        count = int.from_bytes(head[header - 4 : header], "big")
    needed = count * _TABLE_ENTRY_BYTES[box_type]
    return f"{kind} claims {count} entries" if needed > payload - header else None


def _read_at(handle: BinaryIO, offset: int, length: int) -> bytes:
    handle.seek(offset)
    return handle.read(length)


def _movie_times(handle: BinaryIO, body: int, end: int) -> tuple[int, int] | None:
    """The movie header's creation and modification times (version 0: 32-bit, 1: 64-bit)."""
    data = _read_at(handle, body, min(20, end - body))
    if len(data) >= 12 and data[0] == 0:
        return int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big")
    if len(data) >= 20 and data[0] == 1:
        return int.from_bytes(data[4:12], "big"), int.from_bytes(data[12:20], "big")
    return None


def _read_data_references(handle: BinaryIO, body: int, end: int, state: _WalkState) -> None:
    """A data reference whose self-contained flag is clear names media in another file or URL."""
    offset = body + 8  # version/flags + entry_count
    while offset + 12 <= end and state.boxes < _MAX_BOXES:
        state.boxes += 1
        handle.seek(offset)
        header = handle.read(12)
        entry_size = int.from_bytes(header[:4], "big")
        if len(header) < 12 or entry_size < 12:
            return
        if not header[11] & 1:
            state.external_refs += 1
        offset += entry_size


def _read_sample_entries(
    handle: BinaryIO, body: int, end: int, file_size: int, depth: int, state: _WalkState
) -> None:
    """Record each sample entry's four-cc (``encv`` marks an encrypted video track)."""
    offset = body + 8  # version/flags + entry_count
    while offset + 8 <= end and state.boxes < _MAX_BOXES:
        state.boxes += 1
        handle.seek(offset)
        header = handle.read(36)
        entry_size = int.from_bytes(header[:4], "big")
        if len(header) < 8 or entry_size < 8:
            return
        state.entries.add(header[4:8])
        if state.video_size is None and header[4:8] in _VISUAL_ENTRIES and len(header) == 36:
            state.video_size = (int.from_bytes(header[32:34], "big"), int.from_bytes(header[34:36], "big"))
        if header[4:8] in _ENCRYPTED_ENTRIES:
            return
        offset += entry_size


def check_iso_layout(layout: IsoLayout, max_streams: int) -> None:
    """Refuse what the box walk proves before FFmpeg parses anything: encrypted, no index, too many tracks.

    Truncation (``layout.truncated``) is checked later, after the stream checks, so a cut-short
    file with a forbidden codec or size gets that more precise code.
    """
    if layout.encrypted:
        found = sorted(b.decode("latin-1") for b in layout.encryption_boxes | layout.sample_entries)
        raise MediaRefusedError(
            ReasonCode.ENCRYPTED_MEDIA, f"the file is encrypted (boxes: {', '.join(found)})"
        )
    if not layout.has_moov:
        raise MediaRefusedError(
            ReasonCode.CORRUPT_MEDIA, "the file has no movie index (moov): incomplete upload"
        )
    if layout.external_refs:
        raise MediaRefusedError(ReasonCode.EXTERNAL_REFERENCE, "the file refers to media outside itself")
    if layout.oversized_tables:
        message = f"{layout.oversized_tables[0]}, more than the file can hold"
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, message)
    if layout.tracks > max_streams:
        raise MediaRefusedError(ReasonCode.TOO_MANY_STREAMS, f"the file has {layout.tracks} tracks")


def check_iso_truncation(layout: IsoLayout) -> None:
    if layout.truncated:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the file is truncated: a box runs past its end")


def check_matroska_segment(handle: BinaryIO, size: int) -> None:
    """Refuse a Matroska file whose Segment declares more bytes than the file holds (cut short).

    Live recorders write an unknown-size Segment; that is accepted.
    """
    handle.seek(0)
    head = handle.read(64)
    ebml_size, used = _read_vint(head, 4)
    if ebml_size is None:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the Matroska header is malformed")
    segment_at = 4 + used + ebml_size
    handle.seek(segment_at)
    seg = handle.read(12)
    if seg[:4] != b"\x18\x53\x80\x67":
        return  # leave odd layouts to the demuxer
    seg_size, seg_used = _read_vint(seg, 4)
    if seg_size is not None and segment_at + 4 + seg_used + seg_size > size:
        raise MediaRefusedError(
            ReasonCode.CORRUPT_MEDIA, "the file is truncated: its segment runs past its end"
        )


# Matroska element ids on the path Segment > Tracks > TrackEntry > Video > PixelWidth/PixelHeight.
_EBML_MASTERS = frozenset({0x18538067, 0x1654AE6B, 0xAE, 0xE0})
_PIXEL_WIDTH, _PIXEL_HEIGHT = 0xB0, 0xBA
_EBML_READ = 256 * 1024


def declared_video_size(handle: BinaryIO, matroska: bool) -> tuple[int, int] | None:
    """The frame size the container header claims, read without any decoder.

    Used when FFmpeg's capped probe left the size unset, to tell a dimension bomb
    (RESOLUTION_TOO_LARGE) from a merely broken file.
    """
    handle.seek(0)
    if not matroska:
        handle.seek(0, 2)
        return scan_iso_bmff(handle, handle.tell()).video_size
    data = handle.read(_EBML_READ)
    found: dict[int, int] = {}
    _ebml_walk(data, 0, len(data), found, 0)
    if _PIXEL_WIDTH in found and _PIXEL_HEIGHT in found:
        return found[_PIXEL_WIDTH], found[_PIXEL_HEIGHT]
    return None


def _ebml_walk(data: bytes, at: int, end: int, found: dict[int, int], depth: int) -> None:
    while at < end and depth < 8 and len(found) < 2:
        element_id, id_len = _read_id(data, at)
        size, size_len = _read_vint(data, at + id_len)
        if element_id is None:
            return
        body = at + id_len + size_len
        if element_id in _EBML_MASTERS:
            _ebml_walk(data, body, end if size is None else min(body + size, end), found, depth + 1)
            if size is None:
                return
        elif element_id in (_PIXEL_WIDTH, _PIXEL_HEIGHT) and size is not None and size <= 8:
            found.setdefault(element_id, int.from_bytes(data[body : body + size], "big"))
        if size is None:
            return
        at = body + size


def _read_id(data: bytes, at: int) -> tuple[int | None, int]:
    if at >= len(data) or data[at] == 0:
        return None, 1
    length = 8 - data[at].bit_length() + 1
    if length > 4 or at + length > len(data):
        return None, length
    return int.from_bytes(data[at : at + length], "big"), length


def _read_vint(data: bytes, at: int) -> tuple[int | None, int]:
    """Decode an EBML variable-size integer; ``None`` for the reserved 'unknown size' value."""
    if at >= len(data) or data[at] == 0:
        return None, 1
    first = data[at]
    length = 8 - first.bit_length() + 1
    if at + length > len(data):
        return None, length
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    if value == (1 << (7 * length)) - 1:
        return None, length
    return value, length


@dataclass(frozen=True)
class Orientation:
    """How a player turns the decoded picture before showing it: mirror left-right first when
    ``mirrored``, then rotate ``rotation`` degrees clockwise (0, 90, 180, 270)."""

    rotation: int = 0
    mirrored: bool = False


def display_rotation(frame: object) -> int:
    """Clockwise degrees (0, 90, 180, 270) of the display matrix's rotation (``display_orientation``)."""
    return display_orientation(frame).rotation


def display_orientation(frame: object) -> Orientation:
    """The full display matrix of a decoded frame, as a player applies it: rotation and mirror.

    ``frame`` is a PyAV ``VideoFrame``. The matrix (FFmpeg's ``AV_FRAME_DATA_DISPLAYMATRIX``, from
    ``tkhd`` or Matroska's projection) is read from the frame's side data; its angle alone
    (``frame.rotation``) cannot tell a mirror from a rotation, and a flip read as a 180 degree turn
    shows the model an upside-down face. A matrix that is not a right-angle rotation, with or
    without a mirror (zero, 45 degrees, a shear), cannot be displayed as recorded, so it is
    refused as CORRUPT_MEDIA rather than guessed.
    """
    matrix = _display_matrix(frame)
    if matrix is None:
        return Orientation(normalise_rotation(getattr(frame, "rotation", None)), False)
    return orientation_from_matrix(matrix)


def _display_matrix(frame: object) -> tuple[int, ...] | None:
    """The 9 integers of the frame's display matrix, or None (no matrix, or side data PyAV cannot
    list: PyAV 18 raises on side-data types newer than it, such as MV-HEVC's view id; the angle
    alone is then all there is, and a mirror in such a file is not seen: docs/sampling.md)."""
    try:
        side_data = getattr(frame, "side_data", None)
    except (ValueError, TypeError):
        return None
    if side_data is None:
        return None
    for entry in side_data:  # PyAV yields the SideData entries themselves
        if str(getattr(entry, "type", "")).endswith("DISPLAYMATRIX") and entry.buffer_size == 36:
            return struct.unpack("<9i", bytes(entry))
    return None


_RIGHT_ANGLES = {(1, 0, 0, 1): 0, (0, 1, -1, 0): 90, (-1, 0, 0, -1): 180, (0, -1, 1, 0): 270}


def orientation_from_matrix(matrix: tuple[int, ...]) -> Orientation:
    """Decompose FFmpeg's 3x3 display matrix (row-major; ``x' = a x + c y``, ``y' = b x + d y`` in
    picture coordinates, y down) into a mirror and a clockwise right-angle rotation.

    The determinant's sign says whether it mirrors. Refuses (CORRUPT_MEDIA) anything else.
    """
    a, b, _, c, d, _, _, _, _ = matrix
    largest = max(abs(a), abs(b), abs(c), abs(d))
    if largest == 0:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the display matrix is empty")

    def sign(value: int) -> int:
        return 0 if abs(value) * 100 <= largest else (1 if value > 0 else -1)

    signs = (sign(a), sign(b), sign(c), sign(d))
    same_scale = {abs(v) for v, s in zip((a, b, c, d), signs, strict=True) if s}
    if len(same_scale) > 1 and max(same_scale) > 1.01 * min(same_scale):
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the display matrix scales one axis")
    mirrored = a * d - b * c < 0
    if mirrored:  # mirror first: the rotation left is the matrix with x negated
        signs = (-signs[0], -signs[1], signs[2], signs[3])
    rotation = _RIGHT_ANGLES.get(signs)
    if rotation is None:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the display matrix is not a right-angle rotation")
    return Orientation(rotation, mirrored)


def normalise_rotation(angle: float | None) -> int:
    """Map a counter-clockwise display-matrix angle to a clockwise right angle; refuse nonsense."""
    if angle is None:
        return 0
    if not math.isfinite(angle) or abs(angle) > 360:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the display matrix is not a rotation")
    clockwise = (-angle) % 360
    nearest = round(clockwise / 90) * 90
    if abs(clockwise - nearest) > 1:
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, "the display matrix is not a right-angle rotation")
    return int(nearest) % 360
