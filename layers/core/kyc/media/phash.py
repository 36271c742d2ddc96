"""Perceptual hash of a sampled frame: what survives re-encoding and rescaling, not the bytes.

A 64-bit DCT pHash (the classic construction of pHash.org and ``imagehash.phash``): luma,
area-averaged down to 32 x 32 (so the source size no longer matters), a 2-D DCT-II, the 8 x 8
lowest frequencies, one bit per coefficient above their median. Lossy re-encoding and rescaling
move high frequencies and leave these signs alone; a different picture flips about half of them.
Computed on the upright RGB array the model sees, before JPEG, so the stored frame's own coding
never enters it. numpy only (the media layer has no Pillow or SciPy).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

HASH_BITS = 64
_SIDE = 32  # normalised grayscale size
_LOW = 8  # lowest frequencies kept per axis: 8 x 8 = 64 bits
# A frame flatter than this (standard deviation of the 32 x 32 luma, in 8-bit levels) has no
# picture to hash: its bits would come from noise, and every black frame would "match" every other.
MIN_CONTRAST = 2.0
# ITU-R BT.601 luma weights: the luma a JPEG/H.264 encoder keeps most faithfully.
_LUMA = np.array([0.299, 0.587, 0.114])
_LUMA32 = _LUMA.astype(np.float32)  # per pixel; the sums over each span are taken in float64


def _area_average(values: np.ndarray, axis: int) -> np.ndarray:
    """Average ``values`` over ``_SIDE`` equal spans of ``axis``, fractional overlaps included.

    Each span's sum is the sum of the whole cells from its first cell on (one ``reduceat``),
    less the share of its first cell that lies before it, plus the share of the next span's
    first cell that lies inside it. Exact, one pass over the frame, no matrix product (no BLAS
    threads, whose start-up on a busy 2-vCPU function costs more than the work itself).
    """
    length = values.shape[axis]
    if length < _SIDE:  # spans narrower than a cell (not a frame validation accepts): upsample first
        values = np.repeat(values, _SIDE, axis=axis)
        length *= _SIDE
    edges = np.linspace(0.0, length, _SIDE + 1)
    whole = np.minimum(np.floor(edges).astype(np.intp), length - 1)
    frac = edges - np.floor(edges)
    sums = np.add.reduceat(values, whole[:-1], axis=axis, dtype=np.float64)
    shape = [1] * values.ndim
    shape[axis] = _SIDE + 1
    share = frac.reshape(shape) * np.take(values, whole, axis=axis)
    return (
        sums - np.take(share, range(_SIDE), axis=axis) + np.take(share, range(1, _SIDE + 1), axis=axis)
    ) / (length / _SIDE)


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    """Orthonormal DCT-II basis for ``_SIDE`` points (rows: frequencies)."""
    n = np.arange(_SIDE)
    basis = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * _SIDE))
    basis[0] *= np.sqrt(1 / _SIDE)
    basis[1:] *= np.sqrt(2 / _SIDE)
    return basis


def normalised_luma(rgb: np.ndarray) -> np.ndarray:
    """The frame as a 32 x 32 float luma image, whatever its size."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {rgb.shape}")
    luma = rgb[..., 0] * _LUMA32[0] + rgb[..., 1] * _LUMA32[1] + rgb[..., 2] * _LUMA32[2]
    return _area_average(_area_average(luma, 0), 1)


def perceptual_hash(rgb: np.ndarray) -> int:
    """64-bit DCT pHash of an RGB frame (bit 63 is the DC term, row-major over the 8 x 8 block)."""
    return _hash_of(normalised_luma(rgb))


def _hash_of(small: np.ndarray) -> int:
    dct = _dct_matrix()
    low = (dct @ small @ dct.T)[:_LOW, :_LOW].ravel()
    bits = low > np.median(low)
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def phash_hex(rgb: np.ndarray) -> str | None:
    """The hash as the 16 hex digits the frame manifest stores; None for a flat frame."""
    small = normalised_luma(rgb)
    if float(small.std()) < MIN_CONTRAST:
        return None
    return f"{_hash_of(small):016x}"
