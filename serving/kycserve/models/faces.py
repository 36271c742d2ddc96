"""Image decoding and face finding shared by the models (OpenCV only)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from kyc.domain.contract import FrameImage

# Frames above this side are refused: the extractor sends at most 1024 px.
MAX_IMAGE_SIDE = 4096
FACE_MARGIN = 0.30  # per side, as DFDC winners crop (about 1.6x the box)
_CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
# Haar gives no probability; neighbour votes are mapped to 0..1 (20 votes or more = 1.0).
_FULL_CONFIDENCE_NEIGHBOURS = 20.0


@dataclass(frozen=True)
class FaceBox:
    """A face in pixels (x, y, w, h) with a 0..1 detector confidence."""

    x: int
    y: int
    w: int
    h: int
    confidence: float

    def normalised(self, width: int, height: int) -> tuple[float, float, float, float]:
        return (self.x / width, self.y / height, self.w / width, self.h / height)


def decode_frame(frame: FrameImage) -> np.ndarray | None:
    """BGR pixels, or None when the bytes do not decode to a sane image."""
    pixels = cv2.imdecode(np.frombuffer(frame.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None or pixels.ndim != 3 or max(pixels.shape[:2]) > MAX_IMAGE_SIDE:
        return None
    return pixels


class HaarFaceFinder:
    """Frontal faces with OpenCV's Haar cascade; one classifier per thread (not thread-safe)."""

    def __init__(self, min_face_fraction: float = 0.08) -> None:
        self._local = threading.local()
        self._min_face_fraction = min_face_fraction
        if cv2.CascadeClassifier(_CASCADE).empty():
            raise RuntimeError(f"Haar cascade missing: {_CASCADE}")

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = self._local.cascade = cv2.CascadeClassifier(_CASCADE)
        return cascade

    def find(self, bgr: np.ndarray, max_faces: int = 4) -> list[FaceBox]:
        """Faces largest first; tiny detections (under 8 % of the short side) are ignored."""
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        side = max(24, int(min(gray.shape) * self._min_face_fraction))
        rects, votes = self._cascade().detectMultiScale2(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side)
        )
        boxes = [
            FaceBox(int(x), int(y), int(w), int(h), min(1.0, float(n) / _FULL_CONFIDENCE_NEIGHBOURS))
            for (x, y, w, h), n in zip(rects, votes, strict=True)
        ]
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        return boxes[:max_faces]


def square_crop(pixels: np.ndarray, box: FaceBox, margin: float = FACE_MARGIN) -> np.ndarray:
    """A square crop around the face with ``margin`` of the box added per side, clipped to the frame."""
    height, width = pixels.shape[:2]
    side = int(max(box.w, box.h) * (1 + 2 * margin))
    cx, cy = box.x + box.w // 2, box.y + box.h // 2
    side = min(side, width, height)
    x0 = min(max(cx - side // 2, 0), width - side)
    y0 = min(max(cy - side // 2, 0), height - side)
    return pixels[y0 : y0 + side, x0 : x0 + side]


def centre_square(pixels: np.ndarray) -> np.ndarray:
    """The largest centred square: where a selfie's face usually is when none was found."""
    height, width = pixels.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    return pixels[y0 : y0 + side, x0 : x0 + side]
