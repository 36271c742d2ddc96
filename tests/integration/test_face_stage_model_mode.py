"""FaceEvidenceSource=model through the local stack: the stage calls nothing, and the model's own faces
are the only evidence, so a whole-frame model (no faces reported) never PASSes even a clip with a
face. Its own module: a second local stack must not run beside test_face_stage.py's."""

from __future__ import annotations

from pathlib import Path

from kyclocal.stack import LocalStack
from tests.fixtures.face_clips import face_clip
from tests.integration.conftest import screen
from tests.integration.test_face_stage import _settings


def test_model_mode_needs_the_models_own_faces(tmp_path: Path) -> None:
    with LocalStack(_settings(tmp_path, face_evidence_source="model")) as stack:
        item = screen(stack, face_clip(tmp_path / "plain.mp4", "plain"), key="uploads/model-mode/plain.mp4")
        lines = [line["lineage"] for line in stack.log_lines() if "lineage" in line]

    assert (item["decision"], item["reasons"]) == ("REVIEW", ["NO_FACE_EVIDENCE"]), item
    assert not any(line["stage"] == "faces" for line in lines)  # nothing sent to Rekognition
