"""FaceEvidenceSource=rekognition through the local stack: the handler's boto3 Rekognition client
against kycserve's local DetectFaces (the same detector as local mode), and a Rekognition failure
ending in ERROR. Its own module: a second local stack must not run beside test_face_stage.py's."""

from __future__ import annotations

from pathlib import Path

from kyclocal.stack import LocalStack
from tests.fixtures.face_clips import face_clip
from tests.integration.conftest import screen
from tests.integration.test_face_stage import FRAMES, _audit_json, _settings


def test_rekognition_mode_passes_on_the_local_detect_faces_and_fails_closed(tmp_path: Path) -> None:
    with LocalStack(_settings(tmp_path, face_evidence_source="rekognition")) as stack:
        item = screen(stack, face_clip(tmp_path / "plain.mp4", "plain"), key="uploads/rek/plain.mp4")
        evidence = _audit_json(stack, item["artefacts"]["scores_key"])["face_evidence"]
        stack._model_server.rekognition_faults.extend(["AccessDeniedException"])
        denied = screen(stack, face_clip(tmp_path / "denied.mp4", "plain"), key="uploads/rek/denied.mp4")
        faults_left = list(stack._model_server.rekognition_faults)

    assert (item["decision"], item["reasons"]) == ("PASS", ["LOW_FAKE_SCORE"]), item
    assert evidence["source"] == "rekognition" and evidence["detector"]["service"] == "rekognition"
    assert evidence["frames_with_evidence"] == FRAMES and evidence["identity"]["changed"] is False
    assert denied["decision"] == "ERROR", denied
    assert not faults_left
