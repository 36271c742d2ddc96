"""Test helpers: synthetic frames and a tiny ONNX classifier with a predictable answer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx

from kyc.domain.contract import FrameImage
from kyclocal.calibration_demo import red_mean_sigmoid


def solid_frame(frame_id: str, bgr: tuple[int, int, int], size: tuple[int, int] = (96, 128)) -> FrameImage:
    """A single-colour PNG (lossless, so channel means are exact)."""
    pixels = np.zeros((*size, 3), dtype=np.uint8)
    pixels[:] = bgr
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return FrameImage(frame_id, "image/png", data.tobytes())


def textured_frame(frame_id: str, seed: int = 0, size: tuple[int, int] = (360, 640)) -> FrameImage:
    """Smooth noise as JPEG: no face, realistic spectrum fall-off."""
    rng = np.random.default_rng(seed)
    small = (rng.random((size[0] // 8, size[1] // 8, 3)) * 255).astype(np.uint8)
    pixels = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return FrameImage(frame_id, "image/jpeg", data.tobytes())


def write_onnx_config(
    directory: Path, *, weight_red: float = 1.0, bias: float = -0.5, **overrides: object
) -> Path:
    """The tiny red-channel model and its `onnx` config. With weight 20 and bias -10 a red frame
    scores ~1 and a blue one ~0, so a pipeline run with it reaches REJECT and PASS."""
    onnx.save(red_mean_sigmoid(weight_red=weight_red, bias=bias), str(directory / "tiny.onnx"))
    config = {
        "path": "tiny.onnx",
        "name": "tiny-red",
        "version": "1.0.0",
        "input_size": [32, 32],
        "layout": "NCHW",
        "colour_order": "RGB",
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
        "fake_index": 0,
        "activation": "probability",
        "face_crop": False,
        **overrides,
    }
    path = directory / "model.json"
    path.write_text(json.dumps(config))
    return path
