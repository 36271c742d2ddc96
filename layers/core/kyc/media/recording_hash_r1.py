"""The r1 construction of the reuse hashes, kept only to read an index written before r2.

Index keys carry the hash version (``kyc.domain.reuse.bands``), so r2 hashes never meet r1
entries. An index written by r1 keeps its entries until their TTL, and a lookup window
(``ReuseWindowDays``) that starts before the upgrade still holds them: without this module a copy
of a recording screened before the upgrade would find **no match** for up to ``ReuseWindowDays``.
So CheckReuse hashes its frames both ways and queries both key sets while the window may hold r1
entries (``functions/reuse/app.py``, ``LEGACY_VERSIONS``); it writes only r2. Once every window
starts after the upgrade, this module and the legacy read can go.

Frozen as it was on main (commit 4d4f31b): a square window of ``max(width, height)`` face sizes,
cut from the frame unturned; the face cut from its box. Not to be changed: its hashes must equal
the entries already in the index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kyc.media.phash import _area_average
from kyc.media.recording_hash import (
    _SIDE,
    FACE_MARGIN,
    MIN_CONTRAST,
    MIN_FACE_PIXELS,
    FaceBox,
    FrameHashes,
    _hash_or_none,
    _weighted_small,
    _weights,
    content_box,
    luma,
)

HASH_VERSION = "r1"
SCENE_SPAN = 1.5
BODY_SPAN = (0.9, 0.9, 0.9, 2.2)


def _anchored(y: np.ndarray, weights: np.ndarray, box: FaceBox, span: tuple[float, float, float, float]):
    h, w = y.shape
    size = max(box.width * w, box.height * h)
    cx, cy = (box.left + box.width / 2) * w, (box.top + box.height / 2) * h
    x0, y0 = round(cx - span[0] * size), round(cy - span[2] * size)
    nx = max(_SIDE, round((span[0] + span[1]) * size))
    ny = max(_SIDE, round((span[2] + span[3]) * size))
    window, wts = np.zeros((ny, nx), np.float32), np.zeros((ny, nx), np.float32)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + nx), min(h, y0 + ny)
    if sx1 > sx0 and sy1 > sy0:
        window[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = y[sy0:sy1, sx0:sx1]
        wts[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = weights[sy0:sy1, sx0:sx1]
    return _weighted_small(window, wts)


def _scene_small(y: np.ndarray, box: FaceBox | None) -> np.ndarray:
    weights = _weights(y, box)
    if box is None:
        top, bottom, left, right = content_box(y)
        return _weighted_small(y[top:bottom, left:right], weights[top:bottom, left:right])
    return _anchored(y, weights, box, (SCENE_SPAN,) * 4)


def _face_small(y: np.ndarray, box: FaceBox) -> np.ndarray | None:
    h, w = y.shape
    x0 = max(0, int((box.left - FACE_MARGIN * box.width) * w))
    x1 = min(w, int(np.ceil((box.left + (1 + FACE_MARGIN) * box.width) * w)))
    y0 = max(0, int((box.top - FACE_MARGIN * box.height) * h))
    y1 = min(h, int(np.ceil((box.top + (1 + FACE_MARGIN) * box.height) * h)))
    if x1 - x0 < MIN_FACE_PIXELS or y1 - y0 < MIN_FACE_PIXELS:
        return None
    return _area_average(_area_average(y[y0:y1, x0:x1], 0), 1)


def recording_hashes(
    frames: Sequence[tuple[int, np.ndarray]], boxes: Sequence[FaceBox | None]
) -> list[FrameHashes]:
    """As r1 hashed every sampled frame (the roll of a box is ignored: r1 did not turn windows)."""
    if len(frames) != len(boxes):
        raise ValueError("one face box (or None) per frame")
    out = []
    for (index, rgb), box in zip(frames, boxes, strict=True):
        y = luma(rgb.astype(np.float32))
        scene = _hash_or_none(_scene_small(y, box), MIN_CONTRAST)
        if scene is None and box is not None:
            scene = _hash_or_none(_scene_small(y, None), MIN_CONTRAST)
        face = _hash_or_none(_face_small(y, box), MIN_CONTRAST) if box is not None else None
        body = (
            _hash_or_none(_anchored(y, _weights(y, box), box, BODY_SPAN), MIN_CONTRAST)
            if box is not None
            else None
        )
        out.append(FrameHashes(index, scene, face, body))
    return out
