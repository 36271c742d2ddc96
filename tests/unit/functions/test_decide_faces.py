"""DecideOutcome with the face stage's evidence (FaceEvidenceSource=rekognition), against moto."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest

from kyc.aws.s3_object_store import canonical_json
from tests.unit.functions.handler_loader import FakeContext
from tests.unit.functions.test_score_decide import (  # noqa: F401
    AUDIT,
    SID,
    WORK,
    _calibrated,
    _decide,
    _item,
    _scored_state,
    aws,
)


def _face(**over: Any) -> dict[str, Any]:
    return {
        "box": {"left": 0.3, "top": 0.2, "width": 0.4, "height": 0.5},
        "confidence": 99.0,
        "pose": {"yaw": 2.0, "pitch": 1.0, "roll": 0.0},
        "brightness": 60.0,
        "sharpness": 70.0,
    } | over


def _with_faces(mocked: dict[str, Any], state: dict[str, Any], faces_per_frame: list[list[dict]]) -> dict:
    document = {
        "schema": "kyc.face-evidence/1",
        "source": "rekognition",
        "check_frames": 0,  # as DetectFaces records FaceCheckFrames (0: every sampled frame)
        "frames": [
            {"frame_id": f"{i:03d}", "image_width": 640, "image_height": 480, "faces": faces, "error": None}
            for i, faces in enumerate(faces_per_frame)
        ],
    }
    body = canonical_json(document)
    key = f"scores/{SID}/faces.json"
    mocked["s3"].put_object(Bucket=WORK, Key=key, Body=body)
    digest = hashlib.sha256(body).hexdigest()
    return state | {"faces": {"source": "rekognition", "evidence_key": key, "evidence_sha256": digest}}


def _run(mocked: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    app = _decide(mocked, KYC_FACE_EVIDENCE_SOURCE="rekognition")
    return app.lambda_handler({"mode": "decide", "execution_arn": "arn:x", "state": state}, FakeContext())


def test_whole_frame_model_passes_on_face_stage_evidence_kept_in_the_audit_scores(
    aws: dict[str, Any],  # noqa: F811
) -> None:
    state = _with_faces(aws, _scored_state(aws, [0.05] * 4, faces=False), [[_face()]] * 4)

    result = _run(aws, state)

    assert (result["decision"], result["reasons"]) == ("PASS", ["LOW_FAKE_SCORE"])
    scores = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/scores.json")["Body"].read())
    evidence = scores["face_evidence"]
    assert evidence["frames_with_evidence"] == 4 and evidence["findings"] == []
    assert [f["issues"] for f in evidence["frames"]] == [[]] * 4
    lineage = json.loads(
        aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/lineage.json")["Body"].read()
    )
    assert lineage["decision"]["face_evidence"]["evidence_sha256"] == state["faces"]["evidence_sha256"]


@pytest.mark.parametrize(
    ("faces", "reasons"),
    [
        ([[]] * 4, ["NO_FACE_EVIDENCE", "NO_FACE"]),
        ([[_face(brightness=5.0)]] * 4, ["NO_FACE_EVIDENCE", "FACE_TOO_DARK"]),
        ([[_face(), _face(left=0.0)]] * 2 + [[_face()]] * 2, ["MULTIPLE_FACES"]),
    ],
)
def test_gates_cap_a_low_score_at_review(
    aws: dict[str, Any],  # noqa: F811
    faces: list[list[dict]],
    reasons: list[str],
) -> None:
    state = _with_faces(aws, _scored_state(aws, [0.05] * 4, faces=False), faces)

    result = _run(aws, state)

    assert (result["decision"], result["reasons"]) == ("REVIEW", reasons)


def test_no_face_stage_result_means_no_pass(aws: dict[str, Any]) -> None:  # noqa: F811
    result = _run(aws, _scored_state(aws, [0.05] * 4, faces=True))  # the model's faces do not count here

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["MODEL_UNCERTAIN"])
    assert _item(aws)["score"] < 0.3  # the mean alone would have passed it


def test_tampered_face_evidence_fails_the_decision(aws: dict[str, Any]) -> None:  # noqa: F811
    state = _with_faces(aws, _scored_state(aws, [0.05] * 4, faces=False), [[]] * 4)
    good = canonical_json({"frames": [{"frame_id": "000", "image_width": 1, "image_height": 1, "faces": []}]})
    aws["s3"].put_object(Bucket=WORK, Key=state["faces"]["evidence_key"], Body=good)  # not the hashed bytes

    with pytest.raises(Exception, match="does not match"):
        _run(aws, state)


def test_scored_frames_outside_face_check_frames_do_not_dilute_a_pass(
    aws: dict[str, Any],  # noqa: F811
) -> None:
    """FaceCheckFrames 2 of 4: the stage checked frames 000 and 003 (good faces there, scored 0.45);
    001 and 002 were scored 0.01 but never face-checked. Mean logit over all four: 0.083 (< 0.3); over
    the checked frames alone 0.45: nothing vouches for the low frames, so no PASS."""
    state = _scored_state(aws, [0.45, 0.01, 0.01, 0.45], faces=False)
    document = {
        "schema": "kyc.face-evidence/1",
        "source": "rekognition",
        "check_frames": 2,
        "frames": [
            {"frame_id": fid, "image_width": 640, "image_height": 480, "faces": [_face()], "error": None}
            for fid in ("000", "003")
        ],
    }
    body = canonical_json(document)
    key = f"scores/{SID}/faces.json"
    aws["s3"].put_object(Bucket=WORK, Key=key, Body=body)
    pointer = {
        "source": "rekognition",
        "evidence_key": key,
        "evidence_sha256": hashlib.sha256(body).hexdigest(),
    }
    app = _decide(aws, KYC_FACE_EVIDENCE_SOURCE="rekognition", KYC_FACE_CHECK_FRAMES="2")
    # calibrated for exactly this deployment (FaceCheckFrames 2), so only the coverage can stop a PASS
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/kyc/calibrated",
        Type="String",
        Value=_calibrated(face_source="rekognition", face_check_frames=2),
        Overwrite=True,
    )

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": state | {"faces": pointer}}, FakeContext()
    )

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["NO_FACE_EVIDENCE"])
