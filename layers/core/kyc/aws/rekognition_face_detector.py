"""Faces in one image with Amazon Rekognition ``DetectFaces``: the face stage's detector in AWS.

Independent of the customer's model, so a PASS rests on a face that something other than the model
under test saw. Locally the same client talks to kycserve's compatible ``DetectFaces`` through
``AWS_ENDPOINT_URL_REKOGNITION``.

Failures are sorted three ways:
- the image is refused (format, size, parameters): that frame has no face evidence, recorded by code;
- throttling that outlasts botocore's adaptive retries: ``FaceDetectionThrottled``, retried by the
  state machine's Retry on the whole stage;
- anything else (access denied, service errors): ``FaceDetectionError``, caught into RecordFailure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Adaptive mode: client-side rate limiting on top of standard retries, since DetectFaces has a
# per-account TPS quota that every concurrent screening shares.
CLIENT_CONFIG = Config(
    retries={"mode": "adaptive", "total_max_attempts": 6}, connect_timeout=5, read_timeout=20
)
# Amazon Rekognition Image quotas (docs/face-stage.md): image bytes <= 5 MB, JPEG or PNG, >= 80 px.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MIN_IMAGE_SIDE = 80
IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/png"})

_REFUSED = frozenset({"InvalidImageFormatException", "ImageTooLargeException", "InvalidParameterException"})
_THROTTLED = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "LimitExceededException"}
)


class FaceDetectionError(Exception):
    """The face stage could not run (not a property of the frame): the upload's decision is ERROR."""


class FaceDetectionThrottled(FaceDetectionError):
    """Rekognition kept throttling after the client's retries; the state machine retries the stage."""


@dataclass(frozen=True)
class DetectedFaces:
    """Faces as the evidence document records them, or the code the service refused the image with."""

    faces: tuple[dict[str, Any], ...]
    refused: str | None = None


def face_from_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """A ``FaceDetails`` entry as the evidence document records it (also the local detector's)."""
    box, pose, quality = detail["BoundingBox"], detail.get("Pose", {}), detail.get("Quality", {})
    return {
        "box": {k.lower(): float(box[k]) for k in ("Left", "Top", "Width", "Height")},
        "confidence": float(detail["Confidence"]),
        "pose": {k.lower(): float(pose.get(k, 0.0)) for k in ("Yaw", "Pitch", "Roll")},
        "brightness": float(quality.get("Brightness", 0.0)),
        "sharpness": float(quality.get("Sharpness", 0.0)),
    }


class RekognitionFaceDetector:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client or boto3.session.Session().client("rekognition", config=CLIENT_CONFIG)

    def detect(self, image: bytes) -> DetectedFaces:
        """``Attributes=["DEFAULT"]``: bounding box, confidence, pose, quality and landmarks, the
        cheapest set that carries every field the gates need."""
        try:
            response = self._client.detect_faces(Image={"Bytes": image}, Attributes=["DEFAULT"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _REFUSED:
                return DetectedFaces((), refused=code)
            if code in _THROTTLED:
                raise FaceDetectionThrottled(f"DetectFaces throttled: {code}") from exc
            raise FaceDetectionError(f"DetectFaces failed: {code or exc}") from exc
        try:
            return DetectedFaces(tuple(face_from_detail(d) for d in response.get("FaceDetails", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise FaceDetectionError(f"DetectFaces answered a malformed FaceDetails: {exc!r}") from exc
