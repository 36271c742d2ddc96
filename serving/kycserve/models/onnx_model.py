"""Any ONNX image classifier, described by a small JSON config (see docs/bring-your-model.md).

The config says how the exporter expects pixels (size, layout, colour order, normalisation) and
what the output means, so a customer model runs without writing server code.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kyc.domain.contract import ModelInfo
from kycserve.models import NO_FACE_NULL, Model, ModelLoadError, ModelOutputError

ACTIVATIONS = ("softmax", "sigmoid", "probability")


@dataclass(frozen=True)
class OnnxConfig:
    """How to feed the network and read its answer.

    ``fake_index`` picks the fake class in the last output axis; ``activation`` says whether that
    output is a logit vector (softmax), a single logit (sigmoid) or already a probability.
    Pixels are scaled by ``scale`` (1/255 by default) and then ``(x - mean) / std`` per channel.
    """

    path: Path
    name: str
    version: str
    input_size: tuple[int, int]  # (height, width)
    input_name: str | None = None
    output_name: str | None = None
    layout: str = "NCHW"
    colour_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    fake_index: int = 0
    activation: str = "sigmoid"
    face_crop: bool = True
    face_margin: float = 0.30
    no_face: str = NO_FACE_NULL
    description: str = field(default="customer ONNX model")


def _triple(raw: Any, label: str) -> tuple[float, float, float]:
    if not isinstance(raw, list) or len(raw) != 3:
        raise ModelLoadError(f"{label} must be a list of three numbers")
    return (float(raw[0]), float(raw[1]), float(raw[2]))


def load_onnx_config(path: str | Path) -> OnnxConfig:
    """Read and check a JSON config; ``path`` inside it is relative to the config file."""
    config_path = Path(path)
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
        size = raw["input_size"]
        config = OnnxConfig(
            path=(config_path.parent / raw["path"]).resolve(),
            name=str(raw["name"]),
            version=str(raw["version"]),
            input_size=(int(size[0]), int(size[1])),
            input_name=raw.get("input_name"),
            output_name=raw.get("output_name"),
            layout=raw.get("layout", "NCHW").upper(),
            colour_order=raw.get("colour_order", "RGB").upper(),
            scale=float(raw.get("scale", 1.0 / 255.0)),
            mean=_triple(raw.get("mean", [0.0, 0.0, 0.0]), "mean"),
            std=_triple(raw.get("std", [1.0, 1.0, 1.0]), "std"),
            fake_index=int(raw.get("fake_index", 0)),
            activation=raw.get("activation", "sigmoid"),
            face_crop=bool(raw.get("face_crop", True)),
            face_margin=float(raw.get("face_margin", 0.30)),
            no_face=raw.get("no_face", NO_FACE_NULL),
            description=str(raw.get("description", "customer ONNX model")),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelLoadError(f"bad ONNX config {config_path}: {exc}") from exc
    if config.layout not in ("NCHW", "NHWC") or config.colour_order not in ("RGB", "BGR"):
        raise ModelLoadError("layout must be NCHW or NHWC and colour_order RGB or BGR")
    if config.activation not in ACTIVATIONS or any(s == 0 for s in config.std):
        raise ModelLoadError(f"activation must be one of {ACTIVATIONS} and std non-zero")
    return config


def preprocess_crop(bgr: np.ndarray, config: OnnxConfig) -> np.ndarray:
    """One BGR crop as the network's input tensor (batch of one), as ``config`` describes it.

    Module-level so the reference learner (kycserve.learner) trains on exactly what is served.
    """
    height, width = config.input_size
    resized = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    if config.colour_order == "RGB":
        resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    tensor = (resized.astype(np.float32) * config.scale - mean) / std
    if config.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[np.newaxis])


class OnnxModel(Model):
    """Runs the configured network with onnxruntime on CPU (one image per run)."""

    def __init__(self, config: OnnxConfig) -> None:
        import onnxruntime as ort

        super().__init__(face_crop=config.face_crop, no_face=config.no_face, margin=config.face_margin)
        try:
            artefact = Path(config.path).read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read ONNX model {config.path}: {exc}") from exc
        try:  # from the bytes just hashed: the hash reported is the network that runs
            self._session = ort.InferenceSession(artefact, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"cannot load ONNX model {config.path}: {exc}") from exc
        self._config = config
        self._input = config.input_name or self._session.get_inputs()[0].name
        self._output = config.output_name or self._session.get_outputs()[0].name
        self.info = ModelInfo(
            name=config.name, version=config.version, artefact_sha256=hashlib.sha256(artefact).hexdigest()
        )
        self.description = config.description

    def artefact(self) -> bytes:
        """The network file (read again: a deployment uploads what is on disk, as ``aws s3 cp`` would)."""
        return Path(self._config.path).read_bytes()

    def preprocess(self, bgr: np.ndarray) -> np.ndarray:
        """One crop as the network's input tensor (batch of one)."""
        return preprocess_crop(bgr, self._config)

    def _score_crop(self, bgr: np.ndarray) -> float:
        (output,) = self._session.run([self._output], {self._input: self.preprocess(bgr)})
        values = np.asarray(output, dtype=np.float64).reshape(-1)
        # Checked before the activation: the sigmoid's overflow clamp would read a NaN logit as 60.
        if not np.isfinite(values).all():
            raise ModelOutputError(f"model output is not finite: {values.tolist()[:8]}")
        activation = self._config.activation
        if activation == "softmax":
            shifted = np.exp(values - values.max())
            value = float(shifted[self._config.fake_index] / shifted.sum())
        elif activation == "sigmoid":
            logit = max(-60.0, min(60.0, float(values[self._config.fake_index])))
            value = 1.0 / (1.0 + math.exp(-logit))
        else:
            value = float(values[self._config.fake_index])
        return value  # range-checked by Model._checked_score: a model bug fails, it is never clipped
