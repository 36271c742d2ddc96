"""The reference learner: a small model the learning loop trains on a team's reviewed cases.

It exists so the loop (dataset -> train -> measure -> gate -> register -> shadow -> promote) runs end
to end on any machine, in minutes, on CPU. **It is not a production deepfake detector**: a logistic
regression over 57 fixed colour, texture and layout statistics of the face crop learns whatever
separates the labelled set it is given (on the calibration demo's set, a red colour cast) and
nothing more. A team that means to detect deepfakes plugs its own training image into the same
pipeline step (docs/learning-loop.md).

One implementation of what the model sees: training reads frames with the screening path's own
sampler (``kyc.media.sampling``), crops faces with the model server's own face finder and crop
(``kycserve.models``), and computes the features with the very ONNX nodes the served model runs.
The exported ``model.onnx`` is the feature graph, a standardisation, the learned linear map and a
sigmoid; ``model.json`` is its ``onnx`` config, so ``kycserve --model onnx`` serves it unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kyc.domain.contract import FrameImage

LEARNER_NAME = "kyc-reference-learner"
INPUT_SIZE = 32  # face crops are resized to 32x32 RGB, scaled to 0..1 (the onnx config says so)
FEATURES = 57  # 3 channel means, 3 channel deviations, 3 Laplacian energies, 48 cell means (4x4x3)
DESCRIPTION = (
    "REFERENCE LEARNER (not a production detector): logistic regression over colour and texture "
    "statistics of the face crop, trained on the team's labelled set"
)
_OPSET = 17


class LearnerError(ValueError):
    """Training cannot proceed: too few examples, one class only, no face crops."""


def _feature_nodes() -> tuple[list, list]:
    """ONNX nodes from ``image`` [N,3,32,32] to ``features`` [N,57], and their constant tensors."""
    from onnx import TensorProto, helper

    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)
    kernel = np.stack([laplacian[None]] * 3)  # [3,1,3,3]: one filter per channel (group=3)
    constants = [
        helper.make_tensor("lap_kernel", TensorProto.FLOAT, list(kernel.shape), kernel.ravel().tolist()),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["mean4"]),
        helper.make_node("Flatten", ["mean4"], ["means"]),
        helper.make_node("Sub", ["image", "mean4"], ["centred"]),
        helper.make_node("Mul", ["centred", "centred"], ["squared"]),
        helper.make_node("GlobalAveragePool", ["squared"], ["var4"]),
        helper.make_node("Sqrt", ["var4"], ["std4"]),
        helper.make_node("Flatten", ["std4"], ["stds"]),
        helper.make_node("Conv", ["image", "lap_kernel"], ["lap"], group=3, pads=[1, 1, 1, 1]),
        helper.make_node("Abs", ["lap"], ["lap_abs"]),
        helper.make_node("GlobalAveragePool", ["lap_abs"], ["lap4"]),
        helper.make_node("Flatten", ["lap4"], ["laps"]),
        helper.make_node("AveragePool", ["image"], ["cells4"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["cells4"], ["cells"]),
        helper.make_node("Concat", ["means", "stds", "laps", "cells"], ["features"], axis=1),
    ]
    return nodes, constants


def _model(nodes: list, constants: list, output: str, width: int):  # -> onnx.ModelProto
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        LEARNER_NAME,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", width])],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def feature_model():  # -> onnx.ModelProto
    """The feature graph alone: what training runs to see what the served model will see."""
    nodes, constants = _feature_nodes()
    return _model(nodes, constants, "features", FEATURES)


def scoring_model(mean: np.ndarray, scale: np.ndarray, weights: np.ndarray, bias: float):  # -> ModelProto
    """Features, standardised, through the learned linear map and a sigmoid: ``p_fake`` [N,1]."""
    from onnx import TensorProto, helper

    nodes, constants = _feature_nodes()
    constants += [
        helper.make_tensor("f_mean", TensorProto.FLOAT, [FEATURES], mean.astype(np.float32).tolist()),
        helper.make_tensor("f_scale", TensorProto.FLOAT, [FEATURES], scale.astype(np.float32).tolist()),
        helper.make_tensor("W", TensorProto.FLOAT, [FEATURES, 1], weights.astype(np.float32).tolist()),
        helper.make_tensor("B", TensorProto.FLOAT, [1], [float(bias)]),
    ]
    nodes += [
        helper.make_node("Sub", ["features", "f_mean"], ["f_centred"]),
        helper.make_node("Div", ["f_centred", "f_scale"], ["f_std"]),
        helper.make_node("MatMul", ["f_std", "W"], ["linear"]),
        helper.make_node("Add", ["linear", "B"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p_fake"]),
    ]
    return _model(nodes, constants, "p_fake", 1)


def onnx_config(model_file: str, *, version: str) -> dict[str, Any]:
    """The ``onnx`` model config (docs/bring-your-model.md) that serves the exported network."""
    return {
        "path": model_file,
        "name": LEARNER_NAME,
        "version": version,
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "layout": "NCHW",
        "colour_order": "RGB",
        "activation": "probability",
        "face_crop": True,
        "description": DESCRIPTION,
    }


class CropReader:
    """Face crops as the served model sees them: the server's face finder, crop and preprocessing."""

    def __init__(self) -> None:
        from kycserve.models.onnx_model import OnnxConfig, preprocess_crop

        self._config = OnnxConfig(
            path=Path("unused.onnx"), name=LEARNER_NAME, version="training", input_size=(INPUT_SIZE,) * 2
        )
        self._preprocess = preprocess_crop
        from kycserve.models import face_crops

        self._face_crops = face_crops

    def tensors(self, frame: FrameImage) -> list[np.ndarray]:
        """One [3,32,32] tensor per face in the frame (none when no face is found)."""
        return [self._preprocess(crop, self._config)[0] for crop in self._face_crops(frame)]


@dataclass(frozen=True)
class TrainingResult:
    model_bytes: bytes
    config: dict[str, Any]
    examples: int
    videos: int
    train_auc: float | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model_bytes).hexdigest()

    def write(self, directory: Path) -> Path:
        """``model.onnx`` and ``model.json`` in ``directory``; returns the config's path."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.onnx").write_bytes(self.model_bytes)
        path = directory / "model.json"
        path.write_text(json.dumps(self.config, indent=2) + "\n", encoding="utf-8")
        return path


def features_of(tensors: np.ndarray) -> np.ndarray:
    """Run the feature graph on a [N,3,32,32] batch (onnxruntime, CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(feature_model().SerializeToString(), providers=["CPUExecutionProvider"])
    (features,) = session.run(["features"], {"image": tensors.astype(np.float32)})
    return np.asarray(features, dtype=np.float64)


def train(
    examples: Sequence[tuple[str, np.ndarray, int]],
    *,
    version: str,
    regularisation: float = 1.0,
    seed: int = 0,
) -> TrainingResult:
    """Fit the learner on ``(video sha256, crop tensor [3,32,32], label 0/1)`` examples.

    Every frame's crop is an example labelled with its video's label; videos, not frames, are what
    the loop counts. Raises LearnerError when the examples cannot train a classifier.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    if not examples:
        raise LearnerError("no face crops to train on: the labelled videos gave no face")
    labels = np.array([label for _, _, label in examples], dtype=np.int64)
    if len(set(labels.tolist())) < 2:
        raise LearnerError("training needs both genuine and attack videos")
    features = features_of(np.stack([tensor for _, tensor, _ in examples]))
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-6] = 1.0
    standardised = (features - mean) / scale
    classifier = LogisticRegression(C=regularisation, max_iter=2000, random_state=seed)
    classifier.fit(standardised, labels)
    train_auc = float(roc_auc_score(labels, classifier.decision_function(standardised)))
    model = scoring_model(mean, scale, classifier.coef_[0], float(classifier.intercept_[0]))
    return TrainingResult(
        model_bytes=model.SerializeToString(),
        config=onnx_config("model.onnx", version=version),
        examples=len(examples),
        videos=len({sha for sha, _, _ in examples}),
        train_auc=train_auc,
    )
