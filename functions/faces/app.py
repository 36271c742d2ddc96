"""DetectFaces: face evidence beside the model (Amazon Rekognition), one document per upload.

Checks the sampled frames (all, or ``FaceCheckFrames`` spread over the timeline) and writes what the
detector saw per frame to the work bucket; returns its key and SHA-256, never the observations. The
gates are applied later, in decide, under the policy in force (kyc.domain.faces). With
``FaceEvidenceSource=model`` the stage calls nothing and says so.
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
)
from kyc.aws.s3_object_store import S3ObjectStore, canonical_json
from kyc.domain.faces import frames_to_check
from kyc.domain.lineage import sha256_hex
from kyc.media.detection_image import detection_image
from kyc.media.framestore import FrameReader
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

RESOURCES = settings.stack_resources()
FACE_STAGE = settings.face_stage()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
DETECTOR = RekognitionFaceDetector() if FACE_STAGE.source == "rekognition" else None
SCHEMA = "kyc.face-evidence/1"
PARALLEL_CALLS = 4  # per screening; botocore's adaptive mode shares the account's TPS between them


@logger.inject_lambda_context(correlation_id_path="submission_id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@stage_duration("faces")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sid = event["submission_id"]
    if DETECTOR is None:
        return _result("model", None, None, 0, 0)
    if not event.get("manifest_key"):  # extraction refused the media: nothing to look at
        return _result("rekognition", None, None, 0, 0)
    manifest_bytes = STORE.get_bytes(RESOURCES.work_bucket, event["manifest_key"])
    if sha256_hex(manifest_bytes) != event.get("manifest_sha256"):
        raise SourceChangedError("the frame manifest differs from the one extraction recorded")
    manifest = json.loads(manifest_bytes)
    entries = sorted(manifest["frames"], key=lambda f: f["index"])
    chosen = [entries[i] for i in frames_to_check(len(entries), FACE_STAGE.check_frames)]
    reader = FrameReader(manifest, lambda key: STORE.get_bytes(RESOURCES.work_bucket, key))
    with ThreadPoolExecutor(max_workers=PARALLEL_CALLS) as pool:
        frames = list(pool.map(lambda entry: _check(reader, entry), chosen))
    document = {
        "schema": SCHEMA,
        "submission_id": sid,
        "source": "rekognition",
        "detector": {"service": "rekognition", "operation": "DetectFaces", "attributes": ["DEFAULT"]},
        "manifest_sha256": event["manifest_sha256"],
        "frames_sampled": len(entries),
        "check_frames": FACE_STAGE.check_frames,
        "frames": frames,
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
        parameters={"source": "rekognition", "check_frames": FACE_STAGE.check_frames},
    )
    return _result("rekognition", key, digest, len(frames), with_face)


def _check(reader: FrameReader, entry: dict[str, Any]) -> dict[str, Any]:
    """One frame, checked against its manifest hash, made acceptable to DetectFaces, and detected."""
    data = reader.read(entry)
    if sha256_hex(data) != entry["sha256"]:
        raise SourceChangedError(f"frame {entry['index']} does not match its manifest hash")
    image = detection_image(
        data,
        entry["content_type"],
        int(entry["width"]),
        int(entry["height"]),
        max_bytes=MAX_IMAGE_BYTES,
        min_side=MIN_IMAGE_SIDE,
        content_types=IMAGE_CONTENT_TYPES,
    )
    assert DETECTOR is not None
    found = DETECTOR.detect(image.data)
    return {
        "frame_id": f"{entry['index']:03d}",  # as ScoreFrames names the frame
        "index": entry["index"],
        "pts_s": entry.get("pts_s"),
        "frame_sha256": entry["sha256"],
        "image_sha256": sha256_hex(image.data),
        "image_width": image.width,
        "image_height": image.height,
        "reencoded": image.reencoded,
        "faces": list(found.faces),
        "error": found.refused,
    }


def _result(source: str, key: str | None, digest: str | None, checked: int, with_face: int) -> dict[str, Any]:
    """What goes back into Step Functions state: a pointer, a hash and counts."""
    return {
        "source": source,
        "evidence_key": key,
        "evidence_sha256": digest,
        "frames_checked": checked,
        "frames_with_face": with_face,
    }
