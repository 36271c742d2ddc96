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


def _same_person(count: int) -> dict[str, Any]:
    """The identity record of frames that all show one person (similarity 0.9 between any two)."""
    frames = [f"{i:03d}" for i in range(count)]
    return {
        "frames": frames,
        "similarity": [[1.0 if i == j else 0.9 for j in range(count)] for i in range(count)],
    }


def _with_faces(
    mocked: dict[str, Any],
    state: dict[str, Any],
    faces_per_frame: list[list[dict]],
    identity: dict[str, Any] | None = None,
) -> dict:
    document = {
        "schema": "kyc.face-evidence/2",
        "source": "rekognition",
        "check_frames": 0,  # as DetectFaces records FaceCheckFrames (0: every sampled frame)
        "frames": [
            {"frame_id": f"{i:03d}", "image_width": 640, "image_height": 480, "faces": faces, "error": None}
            for i, faces in enumerate(faces_per_frame)
        ],
        "identity": identity or _same_person(len(faces_per_frame)),
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

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["NO_FACE_EVIDENCE"])


def test_tampered_face_evidence_fails_the_decision(aws: dict[str, Any]) -> None:  # noqa: F811
    state = _with_faces(aws, _scored_state(aws, [0.05] * 4, faces=False), [[]] * 4)
    good = canonical_json({"frames": [{"frame_id": "000", "image_width": 1, "image_height": 1, "faces": []}]})
    aws["s3"].put_object(Bucket=WORK, Key=state["faces"]["evidence_key"], Body=good)  # not the hashed bytes

    with pytest.raises(Exception, match="does not match"):
        _run(aws, state)


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_a_change_of_person_is_not_pass_and_the_sides_are_recorded(
    aws: dict[str, Any],  # noqa: F811
    cut: int,
) -> None:
    """Frames before ``cut`` show person A, the rest person B: alike within a side (0.9), not across
    it (0.4, under the default 0.63). Oracle: the cut written here."""
    frames = [f"{i:03d}" for i in range(4)]
    similarity = [
        [1.0 if i == j else 0.9 if (i < cut) == (j < cut) else 0.4 for j in range(4)] for i in range(4)
    ]
    state = _with_faces(
        aws,
        _scored_state(aws, [0.05] * 4, faces=False),
        [[_face()]] * 4,
        identity={"method": "test", "frames": frames, "similarity": similarity},
    )

    result = _run(aws, state)

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["IDENTITY_CHANGED"]), result
    scores = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/scores.json")["Body"].read())
    identity = scores["face_evidence"]["identity"]
    assert identity["changed"] is True and identity["min_similarity"] == 0.4
    assert sorted([identity["side_a"], identity["side_b"]]) == sorted([frames[:cut], frames[cut:]])


def test_evidence_without_an_identity_record_cannot_pass(aws: dict[str, Any]) -> None:  # noqa: F811
    state = _with_faces(aws, _scored_state(aws, [0.05] * 4, faces=False), [[_face()]] * 4)
    key = state["faces"]["evidence_key"]
    document = json.loads(aws["s3"].get_object(Bucket=WORK, Key=key)["Body"].read())
    del document["identity"]
    body = canonical_json(document)
    aws["s3"].put_object(Bucket=WORK, Key=key, Body=body)
    state["faces"]["evidence_sha256"] = hashlib.sha256(body).hexdigest()

    assert _run(aws, state)["decision"] == "REVIEW"


def test_scored_frames_outside_face_check_frames_do_not_dilute_a_pass(
    aws: dict[str, Any],  # noqa: F811
) -> None:
    """FaceCheckFrames 2 of 4: the stage checked frames 000 and 003 (good faces there, scored 0.45);
    001 and 002 were scored 0.01 but never face-checked. Mean logit over all four: 0.083 (< 0.3); over
    the checked frames alone 0.45: nothing vouches for the low frames, so no PASS."""
    state = _scored_state(aws, [0.45, 0.01, 0.01, 0.45], faces=False)
    document = {
        "schema": "kyc.face-evidence/2",
        "source": "rekognition",
        "check_frames": 2,
        "frames": [
            {"frame_id": fid, "image_width": 640, "image_height": 480, "faces": [_face()], "error": None}
            for fid in ("000", "003")
        ],
        # one person on both checked frames (issue 25), so only the coverage can stop a PASS
        "identity": {"method": "test", "frames": ["000", "003"], "similarity": [[1.0, 0.9], [0.9, 1.0]]},
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

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["MODEL_UNCERTAIN"])
    assert _item(aws)["score"] < 0.3  # the mean alone would have passed it
