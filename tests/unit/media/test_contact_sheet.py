"""The contact sheet: grid geometry, boxes where the model put faces, captions, and odd inputs."""

from __future__ import annotations

import numpy as np
import pytest

from kyc.domain.lineage import sha256_hex
from kyc.domain.same_person import sheet_lines
from kyc.media.contact_sheet import (
    BACKGROUND,
    BOX_COLOUR,
    CAPTION_COLOUR,
    GAP,
    PLACEHOLDER,
    ContactFrame,
    ContactSheetError,
    caption,
    cell_origin,
    contact_frames,
    decode_image,
    encode_png,
    render_contact_sheet,
    sheet_size,
)

BLUE = (0, 0, 200)


def _png(width: int = 160, height: int = 120, colour: tuple[int, int, int] = BLUE) -> bytes:
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = colour
    return encode_png(pixels)


def _jpeg(width: int = 160, height: int = 120) -> bytes:
    import av

    context = av.CodecContext.create("mjpeg", "w")
    context.width, context.height, context.pix_fmt = width, height, "yuvj420p"
    context.time_base = __import__("fractions").Fraction(1, 25)
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:] = BLUE
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in context.encode(frame) + context.encode(None))


def _pixels(sheet: bytes) -> np.ndarray:
    return decode_image(sheet).to_ndarray(format="rgb24")


@pytest.mark.parametrize("count", [1, 5, 8, 9, 32])
def test_render_contact_sheet_frame_counts_grid_size(count: int) -> None:
    frames = [(_png(), ContactFrame(f"{i:03d}", i * 0.5, 0.4)) for i in range(count)]

    pixels = _pixels(render_contact_sheet(frames, columns=8, thumb_side=64))

    cols, rows = min(8, count), -(-count // 8)
    caption_strip = 7 + 2 * GAP  # 1x font below 168 px thumbnails
    assert pixels.shape[:2] == (rows * (64 + caption_strip + GAP) + GAP, cols * (64 + GAP) + GAP)
    assert sheet_size(count, columns=8, thumb_side=64) == (pixels.shape[1], pixels.shape[0])


def test_render_contact_sheet_face_box_draws_box_colour_at_edges() -> None:
    # A square frame fills the 192 px cell, so box pixel positions are exact.
    frames = [(_png(100, 100), ContactFrame("000", 0.0, 0.9, faces=((0.25, 0.25, 0.5, 0.5),)))]

    pixels = _pixels(render_contact_sheet(frames, thumb_side=192))

    x, y = cell_origin(0, columns=1, thumb_side=192)
    left, top, right = x + 48, y + 48, x + 48 + 96
    assert tuple(pixels[top, left + 10]) == BOX_COLOUR  # top edge
    assert tuple(pixels[top + 20, left]) == BOX_COLOUR  # left edge
    assert tuple(pixels[top + 20, right - 1]) == BOX_COLOUR  # right edge
    assert tuple(pixels[top + 20, left + 20]) == BLUE  # inside the box: the frame itself
    assert tuple(pixels[y + 5, x + 5]) == BLUE  # outside the box


def test_render_contact_sheet_without_faces_draws_no_box() -> None:
    pixels = _pixels(render_contact_sheet([(_png(100, 100), ContactFrame("000", 0.0, 0.1))], thumb_side=96))

    x, y = cell_origin(0, columns=1, thumb_side=96)
    thumb = pixels[y : y + 96, x : x + 96].reshape(-1, 3)
    assert not np.any(np.all(thumb == BOX_COLOUR, axis=1))


def test_render_contact_sheet_caption_drawn_under_each_cell_only() -> None:
    frames = [(_png(100, 100), ContactFrame(f"{i:03d}", i * 1.0, None)) for i in range(2)]

    pixels = _pixels(render_contact_sheet(frames, columns=2, thumb_side=192))

    for position in range(2):
        x, y = cell_origin(position, columns=2, thumb_side=192)
        strip = pixels[y + 192 : y + 192 + 14 + 2 * GAP, x : x + 192].reshape(-1, 3)
        white = np.all(strip == CAPTION_COLOUR, axis=1).sum()
        assert white > 100  # "000 0.00s n/a" at 2x scale
        cell = pixels[y : y + 192, x : x + 192].reshape(-1, 3)
        assert not np.any(np.all(cell == CAPTION_COLOUR, axis=1))
    assert tuple(pixels[0, 0]) == BACKGROUND


def test_caption_missing_score_reads_na() -> None:
    assert caption(ContactFrame("007", 1.234, None)) == "007 1.23s n/a"
    assert caption(ContactFrame("007", None, 0.876)) == "007 - 0.88"


def test_render_contact_sheet_jpeg_frames_decode() -> None:
    pixels = _pixels(render_contact_sheet([(_jpeg(), ContactFrame("000", 0.0, 0.5))], thumb_side=64))

    x, y = cell_origin(0, columns=1, thumb_side=64)
    centre = pixels[y + 32, x + 32].astype(int)
    assert abs(centre - np.array(BLUE)).max() < 12  # JPEG is lossy


def test_render_contact_sheet_undecodable_frame_shows_placeholder() -> None:
    pixels = _pixels(render_contact_sheet([(b"\xff\xd8\xffgarbage", ContactFrame("000"))], thumb_side=64))

    x, y = cell_origin(0, columns=1, thumb_side=64)
    assert tuple(pixels[y + 32, x + 32]) == PLACEHOLDER


@pytest.mark.parametrize("count", [0, 65])
def test_render_contact_sheet_bad_frame_count_raises(count: int) -> None:
    with pytest.raises(ContactSheetError):
        render_contact_sheet([(_png(), ContactFrame("000"))] * count)


def test_contact_frames_missing_scores_pairs_by_frame_id() -> None:
    data = {f"frames/s/{i:03d}.png": _png() for i in range(3)}
    manifest = {
        "prefix": "frames/s/",
        "frames": [
            {
                "index": i,
                "file": f"{i:03d}.png",
                "pts_s": i / 2,
                "sha256": sha256_hex(data[f"frames/s/{i:03d}.png"]),
            }
            for i in (2, 0, 1)
        ],
    }
    scores = {
        "frames": [
            {"frame_id": "001", "p_fake": 0.7, "faces": [{"box": [0.1, 0.2, 0.3, 0.4], "confidence": 0.9}]},
        ]
    }

    frames = contact_frames(manifest, scores, data.__getitem__)

    assert [f.frame_id for _, f in frames] == ["000", "001", "002"]
    assert [f.p_fake for _, f in frames] == [None, 0.7, None]
    assert frames[1][1].faces == ((0.1, 0.2, 0.3, 0.4),)
    assert contact_frames(manifest, None, data.__getitem__)[1][1].p_fake is None


def test_contact_frames_tampered_frame_raises() -> None:
    manifest = {"prefix": "", "frames": [{"index": 0, "file": "000.png", "sha256": sha256_hex(b"other")}]}

    with pytest.raises(ContactSheetError):
        contact_frames(manifest, None, lambda key: _png())


def test_render_contact_sheet_provenance_header_above_the_grid() -> None:
    frames = [(_png(), ContactFrame("000", 0.0, 0.4))]
    plain = _pixels(render_contact_sheet(frames, thumb_side=64))
    lines = ["c2pa present, Valid, signer untrusted, declares trainedAlgorithmicMedia", "forensics none"]

    headed = _pixels(render_contact_sheet(frames, thumb_side=64, header=lines))

    top = headed.shape[0] - plain.shape[0]
    assert top == 2 * (7 + 4) + GAP  # two glyph rows and their gaps
    header = headed[:top]
    assert (header == CAPTION_COLOUR).all(axis=2).sum() > 100  # text drawn there
    assert ((header == BACKGROUND) | (header == CAPTION_COLOUR)).all()
    np.testing.assert_array_equal(headed[top:], plain)  # the grid itself is unchanged, only moved down


def test_a_change_of_person_marks_each_frame_a_or_b_and_heads_the_sheet() -> None:
    data = {f"{i:03d}.png": _png(64, 64) for i in range(4)}  # square: each fills its cell
    manifest = {
        "prefix": "",
        "frames": [
            {"index": i, "file": f"{i:03d}.png", "sha256": sha256_hex(data[f"{i:03d}.png"])} for i in range(4)
        ],
    }
    identity = {"changed": True, "side_a": ["000", "001"], "side_b": ["002", "003"]}
    identity |= {"min_similarity": 0.41, "threshold": 0.78}
    scores = {"frames": [], "face_evidence": {"identity": identity}}

    frames = contact_frames(manifest, scores, data.__getitem__)
    same = contact_frames(manifest, {"face_evidence": {"identity": identity | {"changed": False}}}, data.get)

    assert [f.side for _, f in frames] == ["A", "A", "B", "B"]
    assert [f.side for _, f in same] == [None] * 4
    # each thumbnail of a changed person carries its side as a badge in its top-left corner
    marked = _pixels(render_contact_sheet(frames, thumb_side=64))
    plain = _pixels(render_contact_sheet(same, thumb_side=64))
    for position in range(4):
        x, y = cell_origin(position, columns=4, thumb_side=64)
        corner = (slice(y, y + 18), slice(x, x + 18))
        assert (plain[corner] == BLUE).all()  # the frame itself there
        assert (marked[corner] == CAPTION_COLOUR).all(axis=2).any()  # the letter drawn on it
    a_badge = marked[cell_origin(0, columns=4, thumb_side=64)[1] :][:18, :18]
    b_badge = marked[cell_origin(2, columns=4, thumb_side=64)[1] :][:18, 2 * 68 : 2 * 68 + 18]
    assert not np.array_equal(a_badge, b_badge)  # A and B are told apart
    assert sheet_lines(identity) == [
        "person changed: similarity 0.41 under 0.78",
        "person A frames 000 001, person B frames 002 003",
    ]
    assert sheet_lines(identity | {"changed": False}) == [] and sheet_lines(None) == []
