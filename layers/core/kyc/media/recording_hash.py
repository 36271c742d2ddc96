"""Per-frame hashes that tell "the same recording" from "the same room": scene, face and body.

A whole-frame perceptual hash mostly sees the background, so two different people filmed at one
branch kiosk look alike, while a mirrored, letterboxed or corner-cropped copy of one recording does
not. Each sampled frame therefore gets three 64-bit hashes, each mirror-invariant:

- ``scene``: the picture around the face (``SCENE_SPAN`` face sizes left, right, above, below)
  with the face masked out; without a face box, the whole content box. The window is anchored to
  the face, so a crop, resize or letterbox of the frame (which moves and scales the face with the
  picture) leaves its content in place, and what a crop removed simply carries no weight
  (normalised convolution). Uniform borders (letterbox, pillarbox) never count: the content box
  leaves them out. Around a face in front of a plain wall the masked window is flat: the whole
  content box, face included, is hashed instead (the same on every copy, since a copy's wall is as plain);
- ``face``: the face box alone (a margin added): who it is, as far as 64 bits can tell;
- ``body``: the person around the face, face masked (hair, neck, shoulders, clothes; ``BODY_SPAN``):
  in a stolen recording it stays frame for frame when another face is swapped in; two people at one
  kiosk share the room, not this.

Hash version r2 (issue 24): every window is measured per axis (face widths across, face heights
down: a crop from one side stretched back to the frame's size changes the aspect) and turned
upright by the clip's face roll (a rotated copy rotates the face with the picture); the scene
window reaches 1.0 face heights above the face, not 1.5 (a 10 % crop from the top removed r1's
upper part on every frame). ``recording_hash_r1`` keeps r1 to read an index written before.

Mirror invariance by construction: mirroring a picture negates its DCT coefficients of odd
horizontal frequency and leaves the even ones alone, so the hash takes the signs of even-frequency
coefficients and the magnitudes of odd-frequency ones (each thresholded at its group's median).
numpy only, on 32 x 32 area averages (kyc.media.phash): the source size never matters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kyc.domain.reuse import FrameSignature, face_boxes, face_rolls, position
from kyc.media.phash import _area_average, _dct_matrix

HASH_VERSION = (
    "r2"  # index keys carry it: a change of construction never compares unlike hashes (r1: recording_hash_r1)
)
_SIDE = 32
# A border row/column is one flatter than this (luma std, 8-bit levels): black bars, even after
# lossy coding, stay under 2; a picture's own edge rows are rarely this flat for long.
BORDER_STD = 4.0
MAX_BORDER = 0.35  # at most this share of a side is ever removed as border
FACE_MARGIN = 0.2  # the face box grows by this share of its size on each side before masking/cropping
SCENE_SPAN = (
    1.5,
    1.5,
    1.0,
    1.5,
)  # the face-anchored scene window: face sizes left, right, above, below its centre
BODY_SPAN = (0.9, 0.9, 0.9, 1.6)  # the person's window: left, right, above, below the face's centre
GRID = 128  # the anchored windows are sampled on about this many points a side, then averaged to 32
ROLL_SIGN = 1.0  # the face stage's roll (Rekognition's convention) to the window's turn
MIN_FACE_PIXELS = 16  # a face box narrower than this (pixels) gives no face hash
MIN_CONTRAST = 2.0  # as kyc.media.phash: a flatter scene or face has no hash
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class FaceBox:
    """A face box as ratios of the frame (DetectFaces' units)."""

    left: float
    top: float
    width: float
    height: float
    roll: float = 0.0  # degrees, the face stage's pose (0: upright, or not known)


@dataclass(frozen=True)
class FrameHashes:
    index: int
    scene: int | None
    face: int | None
    body: int | None


def luma(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {rgb.shape}")
    return rgb[..., 0] * _LUMA[0] + rgb[..., 1] * _LUMA[1] + rgb[..., 2] * _LUMA[2]


def content_box(y: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the picture inside uniform borders (letterbox, pillarbox).

    A side loses rows (columns) while they are flat; at most ``MAX_BORDER`` of it. A frame that is
    flat all over keeps its full size (it gets no hash anyway).
    """
    h, w = y.shape
    row_std, col_std = y.std(axis=1), y.std(axis=0)

    def trim(std: np.ndarray, n: int) -> tuple[int, int]:
        limit = int(n * MAX_BORDER)
        start = 0
        while start < limit and std[start] < BORDER_STD:
            start += 1
        end = n
        while n - end < limit and std[end - 1] < BORDER_STD:
            end -= 1
        return (start, end) if end - start >= n // 4 else (0, n)

    top, bottom = trim(row_std, h)
    left, right = trim(col_std, w)
    return top, bottom, left, right


def mirror_invariant_hash(small: np.ndarray) -> int:
    """64 bits of a 32 x 32 image: signs of 32 even-horizontal-frequency DCT coefficients (DC left out)
    and magnitudes of the 32 odd ones, each group thresholded at its median."""
    dct = _dct_matrix()
    c = dct @ small.astype(np.float64) @ dct.T  # c[v, u]: vertical frequency v, horizontal u
    even = np.concatenate([c[0:8, [0, 2, 4, 6]].ravel()[1:], c[8:9, 0]])
    odd = np.abs(c[0:8, [1, 3, 5, 7]]).ravel()
    bits = np.concatenate([even > np.median(even), odd > np.median(odd)])
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def _face_mask(shape: tuple[int, int], box: FaceBox | None, offset: tuple[int, int], full: tuple[int, int]):
    """Weights of the content box's pixels: 0 inside the (grown) face box, 1 elsewhere."""
    weights = np.ones(shape, dtype=np.float32)
    if box is None:
        return weights
    fh, fw = full
    x0 = (box.left - FACE_MARGIN * box.width) * fw - offset[1]
    x1 = (box.left + (1 + FACE_MARGIN) * box.width) * fw - offset[1]
    y0 = (box.top - FACE_MARGIN * box.height) * fh - offset[0]
    y1 = (box.top + (1 + FACE_MARGIN) * box.height) * fh - offset[0]
    r0, r1 = max(0, int(y0)), min(shape[0], int(np.ceil(y1)))
    c0, c1 = max(0, int(x0)), min(shape[1], int(np.ceil(x1)))
    if r1 > r0 and c1 > c0:
        weights[r0:r1, c0:c1] = 0.0
    return weights


def _weights(y: np.ndarray, box: FaceBox | None) -> np.ndarray:
    """1 inside the content box (borders removed) and outside the grown face box, 0 elsewhere."""
    top, bottom, left, right = content_box(y)
    weights = np.zeros(y.shape, dtype=np.float32)
    weights[top:bottom, left:right] = 1.0
    if box is not None:
        weights *= _face_mask(y.shape, box, (0, 0), y.shape)
    return weights


def _resample(values: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``values`` at pixel coordinates ``xs``, ``ys`` (clamped to the picture)."""
    h, w = values.shape
    x = np.clip(xs, 0, w - 1)
    y = np.clip(ys, 0, h - 1)
    x0, y0 = (
        np.minimum(x.astype(np.int64), w - 2 if w > 1 else 0),
        np.minimum(y.astype(np.int64), h - 2 if h > 1 else 0),
    )
    fx, fy = x - x0, y - y0
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = values[y0, x0] * (1 - fx) + values[y0, x1] * fx
    bottom = values[y1, x0] * (1 - fx) + values[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _anchored(
    y: np.ndarray,
    weights: np.ndarray | None,
    box: FaceBox,
    span: tuple[float, float, float, float],
    *,
    mask_face: bool = False,
):
    """The window ``(left, right, above, below)`` face sizes around the face's centre, at 32 x 32,
    turned upright by the face's roll; what lies outside the frame carries no weight.

    Face sizes are measured per axis (the box's width across, its height down), so a crop from one
    side that is stretched back to the frame's size (a change of aspect) stretches the window with
    the picture. Turning the window by the roll makes it rotation-invariant: a rotated copy rotates
    the face by the same angle. ``mask_face``: the face (grown by ``FACE_MARGIN``) carries no weight,
    masked upright in the window (a mask cut in the frame would turn with a rotated copy).
    """
    h, w = y.shape
    fw, fh = box.width * w, box.height * h
    cx, cy = (box.left + box.width / 2) * w, (box.top + box.height / 2) * h
    width, height = (span[0] + span[1]) * fw, (span[2] + span[3]) * fh
    # sample points: about one per ``step`` pixels, after a box filter of that size (no aliasing)
    step = max(1, int(np.ceil(max(width, height) / GRID)))
    nx = max(_SIDE, round(width / step))
    ny = max(_SIDE, round(height / step))
    u = (np.arange(nx) + 0.5) / nx * width - span[0] * fw  # across the upright face, pixels
    v = (np.arange(ny) + 0.5) / ny * height - span[2] * fh  # down the upright face, pixels
    uu, vv = np.meshgrid(u, v)
    turn = np.radians(ROLL_SIGN * box.roll)
    cos, sin = np.cos(turn), np.sin(turn)
    px, py = cx + uu * cos - vv * sin, cy + uu * sin + vv * cos  # in the frame, pixel edges from 0
    inside = (px >= 0) & (px <= w) & (py >= 0) & (py <= h)
    # only the part of the frame the window covers is filtered (whole blocks of ``step`` pixels)
    x0 = int(np.clip(np.floor(px.min() / step) - 1, 0, w // step)) * step
    x1 = int(np.clip(np.ceil(px.max() / step) + 1, 0, w // step)) * step
    y0 = int(np.clip(np.floor(py.min() / step) - 1, 0, h // step)) * step
    y1 = int(np.clip(np.ceil(py.max() / step) + 1, 0, h // step)) * step
    if x1 - x0 < 2 * step or y1 - y0 < 2 * step:  # the window lies outside the frame
        return _weighted_small(np.zeros((ny, nx)), np.zeros((ny, nx)))
    region = y[y0:y1, x0:x1]
    region_w = np.ones_like(region) if weights is None else weights[y0:y1, x0:x1]
    if step > 1:
        a, b = (y1 - y0) // step, (x1 - x0) // step
        region = region.reshape(a, step, b, step).sum(axis=3).sum(axis=1) / step**2
        region_w = region_w.reshape(a, step, b, step).sum(axis=3).sum(axis=1) / step**2
    xs, ys = (px - x0) / step - 0.5, (py - y0) / step - 0.5
    window = _resample(region, xs, ys)
    wts = np.where(inside, _resample(region_w, xs, ys), 0.0)
    if mask_face:
        reach = 0.5 + FACE_MARGIN
        wts = np.where((np.abs(uu) < reach * fw) & (np.abs(vv) < reach * fh), 0.0, wts)
    return _weighted_small(window, wts)


def scene_small(y: np.ndarray, box: FaceBox | None, weights: np.ndarray | None = None) -> np.ndarray:
    """The scene at 32 x 32 with the face region carrying no weight.

    With a face box the window is anchored to the face (``SCENE_SPAN`` face sizes each way from its
    centre): a crop, a resize or a letterbox of the whole frame moves and scales the face with the
    picture, so the window holds the same content, and what a crop removed carries no weight.
    Without one, the content box (borders removed). ``weights``: the frame's ``_weights`` (no face),
    if already computed.
    """
    weights = _weights(y, None) if weights is None else weights
    if box is None:
        top, bottom, left, right = content_box(y)
        return _weighted_small(y[top:bottom, left:right], weights[top:bottom, left:right])
    return _anchored(y, weights, box, SCENE_SPAN, mask_face=True)


def body_small(y: np.ndarray, box: FaceBox, weights: np.ndarray | None = None) -> np.ndarray:
    """The person around the face (hair, neck, shoulders, clothes; the face masked) at 32 x 32."""
    return _anchored(y, _weights(y, None) if weights is None else weights, box, BODY_SPAN, mask_face=True)


def _weighted_small(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Normalised convolution at 32 x 32: cells without weight take the weighted mean."""
    num = _area_average(_area_average(values * weights, 0), 1)
    den = _area_average(_area_average(weights, 0), 1)
    covered = den > 0.05
    fill = float(num[covered].sum() / den[covered].sum()) if covered.any() else float(values.mean())
    return np.where(covered, num / np.maximum(den, 1e-6), fill)


def face_small(y: np.ndarray, box: FaceBox) -> np.ndarray | None:
    """The face box grown by ``FACE_MARGIN`` at 32 x 32, upright (turned by the face's roll)."""
    h, w = y.shape
    if (1 + 2 * FACE_MARGIN) * min(box.width * w, box.height * h) < MIN_FACE_PIXELS:
        return None
    reach = 0.5 + FACE_MARGIN
    return _anchored(y, None, box, (reach, reach, reach, reach))


def _hash_or_none(small: np.ndarray | None, floor: float) -> int | None:
    if small is None or float(small.std()) < floor:
        return None
    return mirror_invariant_hash(small)


def recording_hashes(
    frames: Sequence[tuple[int, np.ndarray]], boxes: Sequence[FaceBox | None]
) -> list[FrameHashes]:
    """The hashes of every sampled frame of one clip (``(index, rgb)``, one face box or None each)."""
    if len(frames) != len(boxes):
        raise ValueError("one face box (or None) per frame")
    out = []
    for (index, rgb), box in zip(frames, boxes, strict=True):
        y = luma(rgb.astype(np.float32))
        weights = _weights(y, None)  # the content box, once per frame
        scene = _hash_or_none(scene_small(y, box, weights), MIN_CONTRAST)
        if scene is None and box is not None:  # a plain wall around the face: the whole picture instead
            scene = _hash_or_none(scene_small(y, None, weights), MIN_CONTRAST)
        face = _hash_or_none(face_small(y, box), MIN_CONTRAST) if box is not None else None
        body = _hash_or_none(body_small(y, box, weights), MIN_CONTRAST) if box is not None else None
        out.append(FrameHashes(index, scene, face, body))
    return out


def clip_roll(rolls: Sequence[float], boxes: Sequence[object | None]) -> float:
    """The roll every window of a clip is turned by: the median of its frames' face rolls.

    A rotated copy is rotated as a whole, so one angle per clip undoes it; the head's own tilt
    needs no undoing (a copy tilts with the original, instant for instant). Per frame, the
    detector's roll noise (about 1 degree) turned the windows of every copy differently: the
    median removes it (benchmarks/reuse.py --distances; docs/provenance.md).
    """
    seen = [r for r, b in zip(rolls, boxes, strict=True) if b is not None]
    return float(np.median(seen)) if seen else 0.0


def frame_signatures(
    frames: Sequence[tuple[int, float, np.ndarray]],
    face_evidence: Sequence[Mapping[str, Any]],
    hasher: Callable[[Sequence[tuple[int, np.ndarray]], Sequence[FaceBox | None]], list[FrameHashes]] = (
        recording_hashes
    ),
) -> list[FrameSignature]:
    """What the reuse index keeps of a clip: ``(index, pts_s, rgb)`` per sampled frame, with the face
    stage's per-frame evidence (``faces.json``'s ``frames``; empty without a face stage).
    ``hasher``: an older construction's (``recording_hash_r1``), to read entries it wrote."""
    indices = [index for index, _, _ in frames]
    boxes = face_boxes(face_evidence, indices)
    roll = clip_roll(face_rolls(face_evidence, indices), boxes)
    hashed = hasher(
        [(index, rgb) for index, _, rgb in frames], [FaceBox(*b, roll=roll) if b else None for b in boxes]
    )
    return [
        FrameSignature(
            index=h.index, pts_s=pts, scene=h.scene, face=h.face, body=h.body, position=position(b)
        )
        for h, (_, pts, _), b in zip(hashed, frames, boxes, strict=True)
    ]
