"""The perceptual hash against independent oracles (exact area averaging by pixel replication,
SciPy's DCT) and on real corpus frames: copies stay close, other pictures do not, flat frames
have no hash."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
import scipy.fft
from PIL import Image

from kyc.media.phash import normalised_luma, perceptual_hash, phash_hex

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "media"
LUMA = np.array([0.299, 0.587, 0.114])


def _first_frame(name: str) -> np.ndarray:
    with av.open(str(CORPUS / name)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def _area_32(luma: np.ndarray) -> np.ndarray:
    """Exact area averaging: replicate every pixel 32 x 32 times, then average 32 x 32 equal blocks."""
    h, w = luma.shape
    big = np.repeat(np.repeat(luma, 32, axis=0), 32, axis=1)
    return big.reshape(32, h, 32, w).mean(axis=(1, 3))


def _oracle_hash(rgb: np.ndarray) -> int:
    """imagehash.phash's construction, from replication and SciPy's DCT rather than our matrices."""
    low = scipy.fft.dctn(_area_32(rgb.astype(np.float64) @ LUMA), type=2, norm="ortho")[:8, :8].ravel()
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def _distance(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    return _first_frame("mbunny__sar_2x1.mp4")


def test_normalised_luma_is_exact_area_averaging() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (100, 90, 3)).astype(np.uint8)  # 32 divides neither
    assert np.allclose(normalised_luma(rgb), _area_32(rgb.astype(np.float64) @ LUMA), rtol=0, atol=1e-3)


def test_hash_equals_the_scipy_dct_construction(natural: np.ndarray) -> None:
    for rgb in (natural[::4, ::4], natural[::3, ::5], np.ascontiguousarray(natural[::-6, ::7])):
        ours, theirs = perceptual_hash(rgb), _oracle_hash(rgb)
        assert ours == theirs, (f"{ours:016x}", f"{theirs:016x}")


def test_rescaled_and_recompressed_frame_stays_close_unrelated_frame_does_not(natural: np.ndarray) -> None:
    h, w = natural.shape[:2]
    smaller = np.asarray(Image.fromarray(natural).resize((w // 3, h // 3), Image.Resampling.BILINEAR))
    buffer = io.BytesIO()
    Image.fromarray(natural).save(buffer, format="JPEG", quality=30)
    jpeg = np.asarray(Image.open(buffer).convert("RGB"))
    base = perceptual_hash(natural)
    assert _distance(base, perceptual_hash(smaller)) <= 4
    assert _distance(base, perceptual_hash(jpeg)) <= 4
    other = _first_frame("moviepy__video_with_failing_audio.mp4")
    assert _distance(base, perceptual_hash(other)) >= 16


def test_flat_frames_have_no_hash_and_pictures_do(natural: np.ndarray) -> None:
    assert phash_hex(np.zeros((480, 640, 3), np.uint8)) is None
    noisy_black = np.random.default_rng(3).integers(0, 3, (480, 640, 3)).astype(np.uint8)
    assert phash_hex(noisy_black) is None
    value = phash_hex(natural)
    assert value is not None and len(value) == 16 and int(value, 16) == perceptual_hash(natural)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        perceptual_hash(np.zeros((10, 10), np.uint8))
