"""Pluggable detectors behind the model server: each turns encoded frames into contract scores."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kyc.domain.contract import Face, FrameImage, FrameScore, ModelInfo, QualityFlag
from kycserve.models.faces import FACE_MARGIN, HaarFaceFinder, centre_square, decode_frame, square_crop

NO_FACE_NULL = "null"
NO_FACE_CENTRE = "centre"


class ModelLoadError(Exception):
    """A model or its configuration could not be loaded; the server must not report healthy."""


class ModelOutputError(ValueError):
    """The network answered NaN, an infinity or a value outside [0, 1].

    The whole batch fails (the container's 500) and the scorer's retries and ERROR path take over:
    clipping such a value would turn a broken model into a verdict on every applicant.
    """


def checked_probability(value: float, what: str = "p_fake") -> float:
    """``value`` if it is a finite probability; raises ModelOutputError otherwise."""
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ModelOutputError(f"model produced {what}={value!r}")
    return value


def face_finder() -> HaarFaceFinder:
    """The face finder every face-crop model uses (and the reference learner trains with)."""
    return HaarFaceFinder()


class Model(ABC):
    """Template: decode each frame, optionally find faces, score crops via ``_score_crop``.

    A frame's p_fake is the highest face score (the most suspicious face decides). Frames that do
    not decode, or have no face when faces are required, get p_fake null by default: no evidence
    is never reported as a low score.
    """

    info: ModelInfo
    description: str

    def __init__(self, *, face_crop: bool, no_face: str = NO_FACE_NULL, margin: float = 0.30) -> None:
        if no_face not in (NO_FACE_NULL, NO_FACE_CENTRE):
            raise ModelLoadError(f"no_face must be {NO_FACE_NULL!r} or {NO_FACE_CENTRE!r}")
        self._faces = face_finder() if face_crop else None
        self._no_face = no_face
        self._margin = margin

    @abstractmethod
    def _score_crop(self, bgr: np.ndarray) -> float:
        """p_fake in [0, 1] for one BGR crop (a face, or the whole frame)."""

    def _checked_score(self, bgr: np.ndarray) -> float:
        """Every crop score passes here, whatever the subclass: nothing non-finite reaches a frame."""
        return checked_probability(self._score_crop(bgr))

    def describe(self) -> dict:
        return self.info.to_dict() | {"description": self.description}

    def artefact(self) -> bytes:
        """The bytes ``info.artefact_sha256`` hashes: what a deployment uploads as the model data a
        SageMaker model is created from (the local stack does, for the deployment witness)."""
        raise NotImplementedError(f"{type(self).__name__} names no artefact")

    def predict(self, frames: Sequence[FrameImage]) -> list[FrameScore]:
        return [self._score_frame(frame) for frame in frames]

    def _score_frame(self, frame: FrameImage) -> FrameScore:
        bgr = decode_frame(frame)
        if bgr is None:
            return FrameScore(frame.frame_id, None, (), (QualityFlag.DECODE_FAILED,))
        if self._faces is None:
            return FrameScore(frame.frame_id, self._checked_score(bgr), (), ())
        height, width = bgr.shape[:2]
        boxes = self._faces.find(bgr)
        if not boxes:
            p_fake = self._checked_score(centre_square(bgr)) if self._no_face == NO_FACE_CENTRE else None
            return FrameScore(frame.frame_id, p_fake, (), (QualityFlag.NO_FACE,))
        faces = tuple(
            Face(
                box=b.normalised(width, height),
                confidence=b.confidence,
                p_fake=self._checked_score(square_crop(bgr, b, self._margin)),
            )
            for b in boxes
        )
        quality = (QualityFlag.MULTIPLE_FACES,) if len(faces) > 1 else ()
        return FrameScore(frame.frame_id, max(f.p_fake for f in faces), faces, quality)  # type: ignore[type-var]


_TRAINING_FINDER: HaarFaceFinder | None = None  # one per process: building a cascade costs ~50 ms


def face_crops(frame: FrameImage, margin: float = FACE_MARGIN) -> list[np.ndarray]:
    """The face crops a face-crop model scores for ``frame`` (none when it has no face or no image).

    The same finder and crop as ``Model._score_frame``: the reference learner (kycserve.learner)
    trains on these, so a trained model sees in training what it is served.
    """
    global _TRAINING_FINDER
    bgr = decode_frame(frame)
    if bgr is None:
        return []
    if _TRAINING_FINDER is None:
        _TRAINING_FINDER = face_finder()
    return [square_crop(bgr, box, margin) for box in _TRAINING_FINDER.find(bgr)]


def load_model(kind: str, *, onnx_config: str | Path | None = None, no_face: str = NO_FACE_NULL) -> Model:
    """Build the model named on the command line (``reference`` or ``onnx``)."""
    if kind == "reference":
        from kycserve.models.reference import ReferenceSpectrumModel

        return ReferenceSpectrumModel(no_face=no_face)
    if kind == "onnx":
        if onnx_config is None:
            raise ModelLoadError("--onnx-config is required for the onnx model")
        from kycserve.models.onnx_model import OnnxModel, load_onnx_config

        return OnnxModel(load_onnx_config(onnx_config))
    raise ModelLoadError(f"unknown model {kind!r}: use reference or onnx")
