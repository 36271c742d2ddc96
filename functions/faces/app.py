"""DetectFaces: face evidence beside the model, one document per upload.

Checks the sampled frames (all, or ``FaceCheckFrames`` spread over the timeline) and writes what the
face detector saw per frame to the work bucket; returns its key and SHA-256, never the observations.
``FaceEvidenceSource=local`` (default): the stage's own detector and landmarks (kyc.media.face_mesh)
run here and no frame leaves the account; ``rekognition``: Amazon Rekognition ``DetectFaces``. Either
way the local mesh also describes each single face (kyc.media.face_identity) and the document keeps
the similarities between frames, so decide can tell whether one person was seen throughout. The gates
are applied later, in decide, under the policy in force (kyc.domain.faces, kyc.domain.identity).
With ``FaceEvidenceSource=model`` the stage calls nothing and says so.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.errors import SourceChangedError
from kyc.aws.rekognition_face_detector import (
    IMAGE_CONTENT_TYPES,
    MAX_IMAGE_BYTES,
    MIN_IMAGE_SIDE,
    RekognitionFaceDetector,
    face_from_detail,
)
from kyc.aws.s3_object_store import S3ObjectStore, canonical_json
from kyc.domain.faces import frames_to_check
from kyc.domain.lineage import sha256_hex
from kyc.media.framestore import FrameReader
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

RESOURCES = settings.stack_resources()
FACE_STAGE = settings.face_stage()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
SCHEMA = "kyc.face-evidence/2"
PARALLEL_CALLS = 4  # per screening; botocore's adaptive mode shares the account's TPS between them

if FACE_STAGE.source == "model":
    MESH = REKOGNITION = None
else:  # OpenCV and the models are in this function's package only: imported when the stage runs
    import cv2

    from kyc.media.detection_image import UndecodableImage, decode_bgr, detection_image
    from kyc.media.face_identity import METHOD as IDENTITY_METHOD
    from kyc.media.face_identity import descriptor, similarity_matrix
    from kyc.media.face_mesh import DETECTOR_MODEL, FAR_DETECTOR_MODEL, MESH_MODEL, FaceMeshDetector
    from kyc.media.face_models import MODEL_FILES

    cv2.setNumThreads(1)  # PARALLEL_CALLS frames at once, one OpenCV thread each (< 1 vCPU at 1024 MB)
    MESH = FaceMeshDetector()
    REKOGNITION = RekognitionFaceDetector() if FACE_STAGE.source == "rekognition" else None
    DETECTOR = (
        {"service": "rekognition", "operation": "DetectFaces", "attributes": ["DEFAULT"]}
        if REKOGNITION is not None
        else {
            "service": "local",
            "runtime": "opencv-dnn",
            # by SHA-256: the evidence names the exact model files that saw the faces
            "models": {m: MODEL_FILES[m] for m in (DETECTOR_MODEL, FAR_DETECTOR_MODEL, MESH_MODEL)},
        }
    )


@logger.inject_lambda_context(correlation_id_path="submission_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("faces")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sid = event["submission_id"]
    source = FACE_STAGE.source
    if MESH is None:
        return _result("model", None, None, 0, 0)
    if not event.get("manifest_key"):  # extraction refused the media: nothing to look at
        return _result(source, None, None, 0, 0)
    manifest_bytes = STORE.get_bytes(RESOURCES.work_bucket, event["manifest_key"])
    if sha256_hex(manifest_bytes) != event.get("manifest_sha256"):
        raise SourceChangedError("the frame manifest differs from the one extraction recorded")
    manifest = json.loads(manifest_bytes)
    entries = sorted(manifest["frames"], key=lambda f: f["index"])
    chosen = [entries[i] for i in frames_to_check(len(entries), FACE_STAGE.check_frames)]
    reader = FrameReader(manifest, lambda key: STORE.get_bytes(RESOURCES.work_bucket, key))
    with ThreadPoolExecutor(max_workers=PARALLEL_CALLS) as pool:
        checked = list(pool.map(lambda entry: _check(reader, entry), chosen))
    frames = [frame for frame, _ in checked]
    described = [(frame["frame_id"], vector) for frame, vector in checked if vector is not None]
    document = {
        "schema": SCHEMA,
        "submission_id": sid,
        "source": source,
        "detector": DETECTOR,
        "manifest_sha256": event["manifest_sha256"],
        "frames_sampled": len(entries),
        "check_frames": FACE_STAGE.check_frames,
        "frames": frames,
        # similarities only: the descriptors (biometric templates) never leave this function
        "identity": {
            "method": IDENTITY_METHOD,
            "frames": [frame_id for frame_id, _ in described],
            "similarity": similarity_matrix([vector for _, vector in described]),
        },
    }
    body = canonical_json(document)
    key = f"scores/{sid}/faces.json"
    STORE.put_bytes(RESOURCES.work_bucket, key, body, "application/json")
    digest = sha256_hex(body)
    with_face = sum(1 for f in frames if f["faces"])
    count("FaceFramesChecked", value=len(frames))
    count("FaceDetectionRefusals", value=sum(1 for f in frames if f["error"]))
    log_lineage(
        "faces",
        sid,
        execution_arn=event.get("execution_arn"),
        inputs={"manifest_sha256": event["manifest_sha256"], "frames": [f["frame_sha256"] for f in frames]},
        outputs={"evidence_key": key, "evidence_sha256": digest, "frames_checked": len(frames)},
        parameters={"source": source, "check_frames": FACE_STAGE.check_frames},
    )
    return _result(source, key, digest, len(frames), with_face)


def _check(reader: FrameReader, entry: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """One frame, checked against its manifest hash and detected; with the identity descriptor of its
    face when the local mesh sees exactly one."""
    data = reader.read(entry)
    if sha256_hex(data) != entry["sha256"]:
        raise SourceChangedError(f"frame {entry['index']} does not match its manifest hash")
    record = {
        "frame_id": f"{entry['index']:03d}",  # as ScoreFrames names the frame
        "index": entry["index"],
        "pts_s": entry.get("pts_s"),
        "frame_sha256": entry["sha256"],
    }
    assert MESH is not None
    try:
        bgr = decode_bgr(data)
    except UndecodableImage:
        bgr = None
    mesh = MESH.detect(bgr) if bgr is not None else []
    vector = descriptor(bgr, mesh[0].landmarks) if len(mesh) == 1 else None
    if REKOGNITION is None:
        height, width = bgr.shape[:2] if bgr is not None else (int(entry["height"]), int(entry["width"]))
        faces = [face_from_detail(face.detail()) for face in mesh]
        return record | {
            "image_sha256": entry["sha256"],
            "image_width": width,
            "image_height": height,
            "reencoded": False,
            "faces": faces,
            "error": None if bgr is not None else "UndecodableImage",
        }, vector
    image = detection_image(
        data,
        entry["content_type"],
        int(entry["width"]),
        int(entry["height"]),
        max_bytes=MAX_IMAGE_BYTES,
        min_side=MIN_IMAGE_SIDE,
        content_types=IMAGE_CONTENT_TYPES,
    )
    found = REKOGNITION.detect(image.data)
    return record | {
        "image_sha256": sha256_hex(image.data),
        "image_width": image.width,
        "image_height": image.height,
        "reencoded": image.reencoded,
        "faces": list(found.faces),
        "error": found.refused,
    }, vector


def _result(source: str, key: str | None, digest: str | None, checked: int, with_face: int) -> dict[str, Any]:
    """What goes back into Step Functions state: a pointer, a hash and counts."""
    return {
        "source": source,
        "evidence_key": key,
        "evidence_sha256": digest,
        "frames_checked": checked,
        "frames_with_face": with_face,
    }
