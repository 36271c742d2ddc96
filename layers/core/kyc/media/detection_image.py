"""A sampled frame made acceptable to a face detector: decoded pixels, and bytes a service accepts.

Frames from the extractor (JPEG or PNG, at most FrameMaxSide) normally go as they are; a frame over
the byte limit (a large PNG) is re-encoded as JPEG and, if still too large, downscaled, and a frame
under the minimum side is upscaled, so the detector judges the frame rather than refusing it. OpenCV
only: the face stage's package carries no PyAV (template.yaml, DetectFacesFunction).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SCALE_STEP = 0.75
_JPEG_QUALITY = 90


class UndecodableImage(ValueError):
    """The frame's bytes do not decode to a colour image."""


@dataclass(frozen=True)
class DetectionImage:
    data: bytes
    width: int
    height: int
    reencoded: bool


def decode_bgr(data: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None or pixels.ndim != 3:
        raise UndecodableImage("frame bytes do not decode to an image")
    return pixels


def detection_image(
    data: bytes,
    content_type: str,
    width: int,
    height: int,
    *,
    max_bytes: int,
    min_side: int,
    content_types: frozenset[str],
) -> DetectionImage:
    if content_type in content_types and len(data) <= max_bytes and min(width, height) >= min_side:
        return DetectionImage(data, width, height, reencoded=False)
    bgr = decode_bgr(data)
    frame_h, frame_w = bgr.shape[:2]
    scale = max(1.0, min_side / min(frame_w, frame_h))
    while True:
        w, h = max(min_side, round(frame_w * scale)), max(min_side, round(frame_h * scale))
        resized = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        ok, encoded = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        if not ok:
            raise UndecodableImage("frame could not be re-encoded as JPEG")
        if len(encoded) <= max_bytes:
            return DetectionImage(encoded.tobytes(), w, h, reencoded=True)
        scale *= _SCALE_STEP
