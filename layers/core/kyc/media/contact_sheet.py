"""One PNG a reviewer opens to see what the model saw: sampled frames in a grid, captioned and boxed.

Each cell is the frame scaled to fit ``thumb_side`` (aspect kept), its face boxes outlined, and a
caption ``<frame id> <time>s <p_fake|n/a>`` underneath. PyAV and numpy only (the media layer has no
Pillow/OpenCV): frames are decoded with a bare codec context chosen by magic bytes, so no demuxer
probes the bytes, and text is drawn with a tiny built-in 5x7 bitmap font.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from kyc.domain.lineage import sha256_hex
from kyc.domain.same_person import frame_sides
from kyc.media.framestore import FrameReader

MAX_FRAMES = 64  # the model contract's per-request maximum; a sheet is for eyes, not for bulk
GAP = 4
BACKGROUND = (24, 24, 24)
CAPTION_COLOUR = (255, 255, 255)
BOX_COLOUR = (255, 255, 0)  # yellow: visible on skin, sky and the placeholder grey
PLACEHOLDER = (96, 96, 96)  # a frame that would not decode: shown, never silently dropped
BOX_THICKNESS = 2
MAX_HEADER_LINES = 6  # provenance 2, reuse 2, a change of person 2
HEADER_LINE_HEIGHT = 7 + 4  # one glyph row (scale 1) and a gap

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# 5x7 glyphs, one string of 5 bits per row; only the characters captions use.
_FONT: dict[str, tuple[str, ...]] = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    "/": ("00001", "00010", "00010", "00100", "01000", "01000", "10000"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    "s": ("00000", "00000", "01111", "10000", "01110", "00001", "11110"),
    "n": ("00000", "00000", "10110", "11001", "10001", "10001", "10001"),
    "a": ("00000", "00000", "01110", "00001", "01111", "10001", "01111"),
    "?": ("01110", "10001", "00001", "00010", "00100", "00000", "00100"),
    " ": ("00000",) * 7,
    # capitals, underscore and comma: the provenance line above the frames (docs/provenance.md)
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11110", "10001", "10001", "10001", "10001", "10001", "11110"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "G": ("01110", "10001", "10000", "10111", "10001", "10001", "01111"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "J": ("00111", "00010", "00010", "00010", "00010", "10010", "01100"),
    "K": ("10001", "10010", "10100", "11000", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "N": ("10001", "10001", "11001", "10101", "10011", "10001", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "Q": ("01110", "10001", "10001", "10001", "10101", "10010", "01101"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "U": ("10001", "10001", "10001", "10001", "10001", "10001", "01110"),
    "V": ("10001", "10001", "10001", "10001", "10001", "01010", "00100"),
    "W": ("10001", "10001", "10001", "10101", "10101", "10101", "01010"),
    "X": ("10001", "10001", "01010", "00100", "01010", "10001", "10001"),
    "Y": ("10001", "10001", "01010", "00100", "00100", "00100", "00100"),
    "Z": ("11111", "00001", "00010", "00100", "01000", "10000", "11111"),
    "_": ("00000", "00000", "00000", "00000", "00000", "00000", "11111"),
    ",": ("00000", "00000", "00000", "00000", "01100", "00100", "01000"),
}
_GLYPHS = {ch: np.array([[c == "1" for c in row] for row in rows], dtype=bool) for ch, rows in _FONT.items()}


class ContactSheetError(ValueError):
    """The sheet cannot be drawn from what was given (no frames, too many, bad geometry)."""


@dataclass(frozen=True)
class ContactFrame:
    """What the caption and boxes of one cell show; ``p_fake`` None means no score (drawn "n/a")."""

    frame_id: str
    time_s: float | None = None
    p_fake: float | None = None
    faces: tuple[tuple[float, float, float, float], ...] = ()
    side: str | None = None  # "A" or "B" when the face stage saw the person change (kyc.domain.same_person)


def contact_frames(
    manifest: Mapping[str, Any], scores: Mapping[str, Any] | None, read: Callable[[str], bytes]
) -> list[tuple[bytes, ContactFrame]]:
    """Pair each manifest frame with its score and faces, in sampling order.

    ``read(key)`` fetches a stored object; each batch object is read once (kyc.media.framestore).

    ``scores`` is the audit bucket's ``decisions/<sid>/scores.json``; a frame it does not list (a
    failed batch) or lists without ``p_fake`` is captioned "n/a". Frame ids are ``f"{index:03d}"``.
    A frame whose bytes differ from the manifest's hash raises: reviewers see what was scored or nothing.
    """
    by_id = {f.get("frame_id"): f for f in (scores or {}).get("frames") or []}
    sides = frame_sides(((scores or {}).get("face_evidence") or {}).get("identity"))
    reader = FrameReader(manifest, read)  # each batch object fetched once (kyc.media.framestore)
    out: list[tuple[bytes, ContactFrame]] = []
    for entry in sorted(manifest["frames"], key=lambda e: e["index"]):
        frame_id = f"{entry['index']:03d}"
        scored = by_id.get(frame_id) or {}
        faces = tuple(
            tuple(float(v) for v in face["box"])
            for face in scored.get("faces") or []
            if isinstance(face.get("box"), list | tuple) and len(face["box"]) == 4
        )
        info = ContactFrame(
            frame_id=frame_id,
            time_s=entry.get("pts_s"),
            p_fake=scored.get("p_fake"),
            faces=faces,
            side=sides.get(frame_id),
        )
        data = reader.read(entry)
        if entry.get("sha256") and sha256_hex(data) != entry["sha256"]:
            raise ContactSheetError(f"frame {frame_id} does not match its manifest hash")
        out.append((data, info))
    return out


def caption(frame: ContactFrame) -> str:
    """``<id> <time>s <score>``; the score is the model's frame p_fake, or n/a when it gave none."""
    when = "-" if frame.time_s is None else f"{frame.time_s:.2f}s"
    score = "n/a" if frame.p_fake is None else f"{frame.p_fake:.2f}"
    return f"{frame.frame_id} {when} {score}"


def text_scale(thumb_side: int) -> int:
    """Glyph pixel size: 2 when a 14-character caption fits at 12 px per character, else 1."""
    return 2 if thumb_side >= 14 * 6 * 2 else 1


def caption_height(thumb_side: int) -> int:
    return 7 * text_scale(thumb_side) + 2 * GAP


def sheet_size(count: int, *, columns: int = 8, thumb_side: int = 192) -> tuple[int, int]:
    """(width, height) in pixels of a sheet for ``count`` frames."""
    cols = min(columns, count)
    rows = math.ceil(count / cols)
    return (
        cols * (thumb_side + GAP) + GAP,
        rows * (thumb_side + caption_height(thumb_side) + GAP) + GAP,
    )


def cell_origin(position: int, *, columns: int = 8, thumb_side: int = 192) -> tuple[int, int]:
    """(x, y) of the top-left of the thumbnail area of cell ``position`` (row-major)."""
    row, col = divmod(position, columns)
    return (
        GAP + col * (thumb_side + GAP),
        GAP + row * (thumb_side + caption_height(thumb_side) + GAP),
    )


def render_contact_sheet(
    frames: Sequence[tuple[bytes, ContactFrame]],
    *,
    columns: int = 8,
    thumb_side: int = 192,
    header: Sequence[str] = (),
) -> bytes:
    """Draw the frames (JPEG or PNG bytes) in a grid, row-major, and return the sheet as PNG bytes.

    ``header`` lines (at most ``MAX_HEADER_LINES``, upper-cased, cut at the sheet's width) are drawn
    above the grid: the provenance evidence a reviewer should see beside the frames."""
    if not frames:
        raise ContactSheetError("a contact sheet needs at least one frame")
    if len(frames) > MAX_FRAMES:
        raise ContactSheetError(f"at most {MAX_FRAMES} frames per sheet, got {len(frames)}")
    if columns < 1 or thumb_side < 16:
        raise ContactSheetError("columns must be >= 1 and thumb_side >= 16")
    cols = min(columns, len(frames))
    width, height = sheet_size(len(frames), columns=cols, thumb_side=thumb_side)
    lines = [line.upper() for line in header][:MAX_HEADER_LINES]
    top = len(lines) * HEADER_LINE_HEIGHT + (GAP if lines else 0)
    sheet = np.empty((height + top, width, 3), dtype=np.uint8)
    sheet[:] = BACKGROUND
    for number, line in enumerate(lines):
        _draw_text(sheet, GAP, GAP + number * HEADER_LINE_HEIGHT, line, 1, max_width=width - 2 * GAP)
    for position, (data, info) in enumerate(frames):
        x, y = cell_origin(position, columns=cols, thumb_side=thumb_side)
        _draw_cell(sheet, x, y + top, data, info, thumb_side)
    return encode_png(sheet)


def _draw_cell(sheet: np.ndarray, x: int, y: int, data: bytes, info: ContactFrame, side: int) -> None:
    thumb = _thumbnail(data, side)
    th, tw = thumb.shape[:2]
    ox, oy = x + (side - tw) // 2, y + (side - th) // 2
    sheet[oy : oy + th, ox : ox + tw] = thumb
    for box in info.faces:
        _draw_box(sheet, ox, oy, tw, th, box)
    scale = text_scale(side)
    _draw_text(sheet, x, y + side + GAP, caption(info), scale, max_width=side)
    if info.side:  # the person's side when the face stage saw the person change: a badge on the frame
        badge = 2 * scale
        sheet[oy : oy + 7 * badge + 2 * GAP, ox : ox + 5 * badge + 2 * GAP] = BACKGROUND
        _draw_text(sheet, ox + GAP, oy + GAP, info.side, badge, max_width=5 * badge)


def _thumbnail(data: bytes, side: int) -> np.ndarray:
    """The decoded frame scaled to fit ``side`` x ``side``; a grey square if it cannot be decoded."""
    try:
        frame = decode_image(data)
    except (av.FFmpegError, ContactSheetError, ValueError):
        return np.full((side, side, 3), PLACEHOLDER, dtype=np.uint8)
    scale = side / max(frame.width, frame.height)
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    return frame.reformat(width=width, height=height, format="rgb24").to_ndarray()


def decode_image(data: bytes) -> av.VideoFrame:
    """One JPEG or PNG image, decoded by the codec named by its magic bytes (no container probing)."""
    if data.startswith(_JPEG_MAGIC):
        codec = "mjpeg"
    elif data.startswith(_PNG_MAGIC):
        codec = "png"
    else:
        raise ContactSheetError("frame is neither JPEG nor PNG")
    context = av.CodecContext.create(codec, "r")
    decoded = context.decode(av.Packet(data)) + context.decode(None)
    if not decoded:
        raise ContactSheetError("frame did not decode")
    return decoded[0]


def _draw_box(
    sheet: np.ndarray, ox: int, oy: int, tw: int, th: int, box: tuple[float, float, float, float]
) -> None:
    """Outline a normalised [x, y, w, h] face box, clipped to the thumbnail."""
    bx, by, bw, bh = (min(1.0, max(0.0, float(v))) for v in box)
    x0, y0 = ox + round(bx * tw), oy + round(by * th)
    x1 = min(ox + tw, ox + round(min(1.0, bx + bw) * tw))
    y1 = min(oy + th, oy + round(min(1.0, by + bh) * th))
    if x1 <= x0 or y1 <= y0:
        return
    t = BOX_THICKNESS
    sheet[y0 : min(y0 + t, y1), x0:x1] = BOX_COLOUR
    sheet[max(y1 - t, y0) : y1, x0:x1] = BOX_COLOUR
    sheet[y0:y1, x0 : min(x0 + t, x1)] = BOX_COLOUR
    sheet[y0:y1, max(x1 - t, x0) : x1] = BOX_COLOUR


def _draw_text(sheet: np.ndarray, x: int, y: int, text: str, scale: int, *, max_width: int) -> None:
    """Stamp ``text`` with the bitmap font; characters past ``max_width`` are cut, unknown ones are '?'."""
    advance = 6 * scale
    for i, char in enumerate(text):
        cx = x + i * advance
        if cx + 5 * scale > x + max_width:
            return
        glyph = _GLYPHS.get(char, _GLYPHS["?"])
        mask = np.kron(glyph, np.ones((scale, scale), dtype=bool))
        region = sheet[y : y + mask.shape[0], cx : cx + mask.shape[1]]
        region[mask[: region.shape[0], : region.shape[1]]] = CAPTION_COLOUR


def encode_png(pixels: np.ndarray) -> bytes:
    """An H x W x 3 uint8 array as PNG bytes, with PyAV's png encoder."""
    height, width = pixels.shape[:2]
    context = av.CodecContext.create("png", "w")
    context.width, context.height, context.pix_fmt = width, height, "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
    packets = context.encode(frame) + context.encode(None)
    return b"".join(bytes(p) for p in packets)
