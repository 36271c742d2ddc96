"""Copies of a clip as a fraud ring would resubmit it, made with PyAV (reuse tests and benchmark).

Re-encoded with another codec and bitrate, rescaled, trimmed at the start: the bytes all differ
from the original, the picture does not. Each copy is decoded from the original and encoded
anew, upright (display rotation applied), so it is what a re-encoding tool would write.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from kyc.media.errors import MediaRefusedError
from kyc.media.probe import display_rotation


def make_copy(
    source: Path,
    target: Path,
    *,
    encoder: str = "mpeg4",
    muxer: str = "mp4",
    bit_rate: int = 400_000,
    scale: float = 1.0,
    trim_start_s: float = 0.0,
    options: dict[str, str] | None = None,
) -> Path:
    """Decode ``source`` and write it to ``target`` with ``encoder`` at ``bit_rate``, ``scale``d,
    without the frames before ``trim_start_s``. Sizes are kept even (4:2:0 needs them)."""
    with av.open(str(source)) as src, av.open(str(target), mode="w", format=muxer) as out:
        stream_in = src.streams.video[0]
        rate = stream_in.average_rate or stream_in.guessed_rate or Fraction(25)
        stream = None
        index = 0
        start: float | None = None
        for frame in src.decode(stream_in):
            t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else 0.0
            start = t if start is None else start
            if t - start < trim_start_s:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            rotation = _rotation(frame)
            rgb = np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90) % 4))
            height, width = rgb.shape[:2]
            out_w = max(2, round(width * scale / 2) * 2)
            out_h = max(2, round(height * scale / 2) * 2)
            if stream is None:
                stream = out.add_stream(encoder, rate=Fraction(rate).limit_denominator(1001))
                stream.width, stream.height, stream.pix_fmt = out_w, out_h, "yuv420p"
                stream.bit_rate = bit_rate
                stream.options = options or {}
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                width=out_w, height=out_h, format="yuv420p"
            )
            picture.pts = index
            index += 1
            out.mux(stream.encode(picture))
        if stream is None:
            raise ValueError(f"{source.name}: no frame after {trim_start_s} s")
        out.mux(stream.encode(None))
    return target


def _rotation(frame: av.VideoFrame) -> int:
    try:
        return display_rotation(frame)
    except MediaRefusedError:  # a matrix that is no rotation: copy the coded orientation
        return 0
