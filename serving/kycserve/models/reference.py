"""NOT A PRODUCTION DETECTOR: a training-free spectrum heuristic for local runs and tests.

Haar face -> square crop with 30 % margin -> Durall et al. 2019 spectrum profile ->
high-frequency level -> fixed logistic. It has never been validated against deepfakes; it exists
so the pipeline can run end to end without a customer model.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from kyc.domain.contract import ModelInfo
from kycserve.models import NO_FACE_NULL, Model, ModelOutputError
from kycserve.models.spectrum import high_frequency_level, spectrum_profile

MODEL_NAME = "reference-spectrum-NOT-A-PRODUCTION-DETECTOR"
MODEL_VERSION = "0.1.0"
# p_fake = 1 / (1 + exp(-SLOPE * (level - CENTRE))). CENTRE and SLOPE were set by hand so that
# camera frames from the project corpus (levels 0.15-0.41) map to about 0.07-0.38 and frames with
# added high-frequency noise (about 0.45-0.55) to 0.5-0.77. No fakes were involved: uncalibrated.
CENTRE = 0.45
SLOPE = 12.0


def reference_artefact() -> bytes:
    """The reference model has no weights file: its artefact is the source that scores (this module,
    the spectrum features and the shared face finder), in a fixed order."""
    from kycserve.models import faces, spectrum

    return b"".join(
        Path(str(module.__file__)).read_bytes() for module in (sys.modules[__name__], spectrum, faces)
    )


def reference_artefact_sha256() -> str:
    return hashlib.sha256(reference_artefact()).hexdigest()


def level_to_p_fake(level: float) -> float:
    """The fixed logistic mapping, clamped so that overflow can never produce NaN.

    A non-finite level (an all-constant crop can give 0/0) fails: the clamp would read NaN as 60.
    """
    if not math.isfinite(level):
        raise ModelOutputError(f"spectrum level is not finite: {level!r}")
    z = max(-60.0, min(60.0, SLOPE * (level - CENTRE)))
    return 1.0 / (1.0 + math.exp(-z))


class ReferenceSpectrumModel(Model):
    """Reference detector (NOT A PRODUCTION DETECTOR)."""

    info = ModelInfo(name=MODEL_NAME, version=MODEL_VERSION, artefact_sha256=reference_artefact_sha256())
    description = (
        "NOT A PRODUCTION DETECTOR: training-free Durall et al. 2019 spectrum heuristic with a fixed, "
        "uncalibrated logistic mapping; for local runs and tests only."
    )

    def artefact(self) -> bytes:
        return reference_artefact()

    def __init__(self, *, no_face: str = NO_FACE_NULL) -> None:
        super().__init__(face_crop=True, no_face=no_face)

    def _score_crop(self, bgr: np.ndarray) -> float:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        return level_to_p_fake(high_frequency_level(spectrum_profile(gray)))
