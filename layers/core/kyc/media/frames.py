"""Turn one decoded frame into the image the model sees: upright, square pixels, true colour, bounded size.

Only the frames chosen for the sample come here, so the cost is per sampled frame, not per
decoded frame. Encoding uses FFmpeg's own mjpeg/png encoders (already in the PyAV layer, no
Pillow needed) with ``bitexact`` and one thread, so the same frame always gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

JPEG = "jpeg"
PNG = "png"
CONTENT_TYPES = {JPEG: "image/jpeg", PNG: "image/png"}
EXTENSIONS = {JPEG: "jpg", PNG: "png"}

# FFmpeg AVColorSpace values -> the swscale matrix that decodes them.
_MATRICES = {
    1: Colorspace.ITU709,
    4: Colorspace.FCC,
    5: Colorspace.ITU601,  # bt470bg
    6: Colorspace.ITU601,  # smpte170m
    7: Colorspace.SMPTE240M,
    9: Colorspace.BT2020,  # bt2020nc
    10: Colorspace.BT2020,
}
_RANGE_MPEG, _RANGE_JPEG = 1, 2
# Area averaging for downscaling (no aliasing on fine skin texture); exact rounding and full
# chroma interpolation so the colour test measures the matrix, not swscale shortcuts.
_SCALING = Interpolation.AREA | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_HD_HEIGHT = 720


class FrameEncodingError(RuntimeError):
    """A chosen frame could not be converted or encoded (a bug or an impossible frame)."""


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    content_type: str
    width: int
    height: int
    sha256: str


def output_size(width: int, height: int, sar: Fraction | None, max_side: int) -> tuple[int, int]:
    """Size in the coded orientation after squaring pixels (width x SAR) and fitting ``max_side``.

    Never upscales: a small clip stays small rather than inventing detail for the model.
    """
    ratio = sar if sar and sar > 0 else Fraction(1)
    display_width = width * ratio
    scale = min(Fraction(1), Fraction(max_side) / max(display_width, height))
    return max(1, round(display_width * scale)), max(1, round(height * scale))


def source_colour(frame: av.VideoFrame) -> tuple[Colorspace, ColorRange]:
    """The matrix and range the clip was encoded with, guessing as players do when untagged.

    Untagged: BT.709 from 720 lines up, BT.601 below; full range only for the ``yuvj`` formats.
    """
    matrix = _MATRICES.get(int(frame.colorspace))
    if matrix is None:
        matrix = Colorspace.ITU709 if frame.height >= _HD_HEIGHT else Colorspace.ITU601
    tagged = int(frame.color_range)
    if tagged == _RANGE_JPEG or (tagged != _RANGE_MPEG and frame.format.name.startswith("yuvj")):
        return matrix, ColorRange.JPEG
    return matrix, ColorRange.MPEG


def upright_rgb(
    frame: av.VideoFrame, *, rotation: int, sar: Fraction | None, max_side: int, mirrored: bool = False
) -> np.ndarray:
    """8-bit full-range RGB (H x W x 3), square pixels, mirrored left-right when ``mirrored``, then
    rotated ``rotation`` degrees clockwise (as the display matrix says a player shows it).

    Scaling and colour conversion happen in one swscale pass from the decoder's own format, so
    10-bit sources are converted once, directly to 8-bit RGB.
    """
    width, height = output_size(frame.width, frame.height, sar, max_side)
    matrix, colour_range = source_colour(frame)
    try:
        rgb = frame.reformat(
            width=width,
            height=height,
            format="rgb24",
            src_colorspace=matrix,
            src_color_range=colour_range,
            dst_color_range=ColorRange.JPEG,
            interpolation=_SCALING,
        ).to_ndarray()
    except MemoryError:
        raise  # out of the sandbox's memory: a budget, not a broken frame
    except (av.FFmpegError, ValueError) as exc:
        raise FrameEncodingError(f"cannot convert a {frame.format.name} frame to RGB") from exc
    if mirrored:
        rgb = rgb[:, ::-1]
    # np.rot90 turns counter-clockwise; display rotations are clockwise.
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90) % 4))


def jpeg_qscale(quality: int) -> int:
    """Map a 1-100 JPEG quality to the mjpeg quantiser scale (1 best, 31 worst); 95 -> 2."""
    return max(1, min(31, round((100 - quality) / 5) + 1))


def encode_image(rgb: np.ndarray, image_format: str, *, jpeg_quality: int = 95) -> EncodedImage:
    """Encode an RGB array as JPEG (4:4:4, full range) or PNG (lossless), deterministically."""
    if image_format not in CONTENT_TYPES:
        raise FrameEncodingError(f"unknown image format {image_format!r}")
    height, width = rgb.shape[:2]
    codec, pix_fmt = ("mjpeg", "yuvj444p") if image_format == JPEG else ("png", "rgb24")
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, 1)
    context.thread_count = 1
    options = {"flags": "+bitexact"}
    if image_format == JPEG:
        qscale = jpeg_qscale(jpeg_quality)
        options |= {"qmin": str(qscale), "qmax": str(qscale)}
        context.qscale = qscale
    context.options = options
    try:
        picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if pix_fmt != "rgb24":
            picture = picture.reformat(
                format=pix_fmt,
                dst_colorspace=Colorspace.ITU601,
                dst_color_range=ColorRange.JPEG,
                interpolation=_SCALING,
            )
        picture.pts = 0
        data = b"".join(bytes(packet) for packet in [*context.encode(picture), *context.encode(None)])
    except MemoryError:
        raise  # out of the sandbox's memory: a budget, not a broken frame
    except (av.FFmpegError, ValueError) as exc:
        raise FrameEncodingError(f"cannot encode a {width}x{height} {image_format}") from exc
    return EncodedImage(data, CONTENT_TYPES[image_format], width, height, hashlib.sha256(data).hexdigest())
