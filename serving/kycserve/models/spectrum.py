"""Durall et al. 2019 spectrum features ("Unmasking DeepFakes with simple features", arXiv 1911.00686).

Pure numpy. Generator up-sampling leaves excess energy at high spatial frequencies; the
azimuthally averaged log power spectrum exposes it as a raised tail. The steps follow the
authors' code (cc-hpc-itwm, radialProfile.py) except that the 300-bin resampling is linear
(np.interp) rather than scipy's cubic griddata, to keep the server free of scipy.
"""

from __future__ import annotations

import numpy as np

PROFILE_BINS = 300
_EPSILON = 1e-8
_MIN_SIDE = 24


def centre_third(gray: np.ndarray) -> np.ndarray:
    """Drop a third of the height and width on each side (Durall step 2); small crops are kept whole."""
    h, w = gray.shape[:2]
    dh, dw = h // 3, w // 3
    if h - 2 * dh < _MIN_SIDE or w - 2 * dw < _MIN_SIDE:
        return gray
    return gray[dh : h - dh, dw : w - dw]


def azimuthal_average(values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over rings of integer radius around the centre (bin size 1)."""
    h, w = values.shape
    y, x = np.indices((h, w))
    radius = np.hypot(x - w // 2, y - h // 2).astype(np.int64).ravel()
    sums = np.bincount(radius, weights=values.ravel())
    counts = np.bincount(radius)
    return sums / np.maximum(counts, 1)


def spectrum_profile(gray: np.ndarray, bins: int = PROFILE_BINS) -> np.ndarray:
    """The 300-value feature vector: ring-averaged 20·ln|FFT| resampled and divided by its DC value.

    The input is never resized (resizing distorts the spectrum); only the profile is resampled.
    """
    image = centre_third(np.asarray(gray, dtype=np.float64))
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    magnitude = 20.0 * np.log(np.abs(spectrum) + _EPSILON)
    profile = azimuthal_average(magnitude)
    resampled = np.interp(np.linspace(0, len(profile) - 1, bins), np.arange(len(profile)), profile)
    dc = resampled[0] if abs(resampled[0]) > _EPSILON else 1.0
    return resampled / dc


def high_frequency_level(profile: np.ndarray) -> float:
    """Mean of the top quarter of the DC-normalised profile: high-frequency log energy.

    Camera frames (optics, demosaicing, video compression) fall off steeply; generator
    up-sampling and re-synthesis leave a raised tail, which pushes this level up.
    """
    n = len(profile)
    return float(np.mean(profile[3 * n // 4 :]))
