"""Is it the same person on every frame? A face descriptor from landmark-aligned pixels, no model.

Each face is aligned by five mesh landmarks (eye centres, nose tip, mouth corners) onto the 112 x 112
template face-recognition models use, smoothed (5 x 5 Gaussian: sensor noise and JPEG blocks make
codes of their own), then described by uniform local binary patterns (8 neighbours, radius 1; 59
bins) in a 7 x 7 grid of cells (Ahonen, Hadid and Pietikainen, "Face description with
local binary patterns", TPAMI 2006): 2,891 numbers, square-rooted and L2-normalised, so the dot
product of two descriptors is their Bhattacharyya coefficient (1: identical texture). LBP codes do
not change with a monotonic change of light, and the alignment removes roll, scale and position.

A hand-made method with no trained weights (nothing to licence, nothing to download); its power is
measured, not assumed: same-person and different-person similarities, and the threshold drawn from
them, are in docs/face-stage.md ("One person throughout"). The descriptors never leave the function:
the evidence keeps only the similarities between frames.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["METHOD", "SIDE", "descriptor", "similarity_matrix"]

METHOD = "lbp-u2-7x7-aligned-blur5/1"  # recorded in the evidence: a change of method is visible

SIDE = 112
GRID = 7
# Five points of the 112 x 112 template (InsightFace's ArcFace alignment): image-left eye, image-right
# eye, nose tip, image-left and image-right mouth corners.
TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
# The same five points on MediaPipe's face mesh (the subject's right eye is on the image's left).
_EYE_IMAGE_LEFT, _EYE_IMAGE_RIGHT = (33, 133), (362, 263)
_NOSE_TIP, _MOUTH_IMAGE_LEFT, _MOUTH_IMAGE_RIGHT = 1, 61, 291


def _uniform_lookup() -> np.ndarray:
    """8-bit LBP code -> bin: the 58 uniform patterns (<= 2 transitions) get their own, the rest 58."""
    table = np.full(256, 58, dtype=np.int64)
    uniform = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            table[code] = uniform
            uniform += 1
    return table


_UNIFORM = _uniform_lookup()


def aligned(bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face's luma warped onto the template (112 x 112)."""
    points = np.array(
        [
            landmarks[list(_EYE_IMAGE_LEFT), :2].mean(0),
            landmarks[list(_EYE_IMAGE_RIGHT), :2].mean(0),
            landmarks[_NOSE_TIP, :2],
            landmarks[_MOUTH_IMAGE_LEFT, :2],
            landmarks[_MOUTH_IMAGE_RIGHT, :2],
        ],
        dtype=np.float32,
    )
    matrix, _ = cv2.estimateAffinePartial2D(points, TEMPLATE, method=cv2.LMEDS)
    if matrix is None:
        matrix = cv2.getAffineTransform(points[:3], TEMPLATE[:3])
    luma = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return cv2.warpAffine(luma, matrix, (SIDE, SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def lbp_descriptor(face: np.ndarray) -> np.ndarray:
    """Uniform LBP histograms of a 112 x 112 luma face in a 7 x 7 grid, as one unit vector."""
    centre = face[1:-1, 1:-1].astype(np.int16)
    codes = np.zeros(centre.shape, dtype=np.int64)
    neighbours = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0))
    for bit, (dy, dx) in enumerate(neighbours):
        shifted = face[dy : dy + centre.shape[0], dx : dx + centre.shape[1]].astype(np.int16)
        codes |= (shifted >= centre).astype(np.int64) << bit
    bins = _UNIFORM[codes]
    cell = bins.shape[0] // GRID
    histograms = []
    for gy in range(GRID):
        for gx in range(GRID):
            block = bins[gy * cell : (gy + 1) * cell, gx * cell : (gx + 1) * cell]
            histograms.append(np.bincount(block.ravel(), minlength=59) / block.size)
    vector = np.sqrt(np.concatenate(histograms))
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def descriptor(bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The identity descriptor of the face whose mesh landmarks (pixels) are given."""
    return lbp_descriptor(cv2.GaussianBlur(aligned(bgr, landmarks), (5, 5), 0))


def similarity_matrix(descriptors: list[np.ndarray]) -> list[list[float]]:
    """Pairwise similarities (0..1, 1 on the diagonal), rounded for the evidence document."""
    if not descriptors:
        return []
    stacked = np.stack(descriptors)
    return [[round(float(v), 4) for v in row] for row in np.clip(stacked @ stacked.T, 0.0, 1.0)]
