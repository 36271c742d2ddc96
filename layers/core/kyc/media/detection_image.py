"""A sampled frame made acceptable to a face-detection service: JPEG or PNG, a byte limit, a minimum side.

Frames from the extractor (JPEG or PNG, at most FrameMaxSide) normally go as they are; a frame over
the byte limit (a large PNG) is re-encoded as JPEG and, if still too large, downscaled, and a frame
under the minimum side is upscaled, so the service judges the frame rather than refusing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kyc.media.contact_sheet import decode_image
from kyc.media.frames import JPEG, encode_image

_SCALE_STEP = 0.75


@dataclass(frozen=True)
class DetectionImage:
    data: bytes
    width: int
    height: int
    reencoded: bool


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
    frame = decode_image(data)
    scale = max(1.0, min_side / min(frame.width, frame.height))
    while True:
        w, h = max(min_side, round(frame.width * scale)), max(min_side, round(frame.height * scale))
        rgb = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
        encoded = encode_image(rgb, JPEG, jpeg_quality=90)
        if len(encoded.data) <= max_bytes:
            return DetectionImage(encoded.data, w, h, reencoded=True)
        scale *= _SCALE_STEP
