"""A local Amazon Rekognition ``DetectFaces`` (AWS JSON 1.1), answered with OpenCV.

moto has no ``DetectFaces``; the face stage reaches this instead through
``AWS_ENDPOINT_URL_REKOGNITION``, with the same boto3 client it uses in AWS. The wire format is the
service's: ``POST /`` with ``X-Amz-Target: RekognitionService.DetectFaces``, ``Image.Bytes`` base64 in
the JSON body, and errors as ``{"__type": ..., "Message": ...}`` with HTTP 400 (docs/face-stage.md).

The detector is the face stage's own (kyc.media.face_mesh: MediaPipe BlazeFace and face mesh through
OpenCV DNN), so a local run with ``FaceEvidenceSource=rekognition`` sees the faces that
``FaceEvidenceSource=local`` sees in AWS. Its units imitate Rekognition's (confidence, brightness and
sharpness 0..100, pose in degrees) but are not Rekognition's values: set the policy's ``face_gates``
from measurements on the detector you deploy with (docs/face-stage.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # raw image bytes (Rekognition Image quotas)
MAX_BODY_BYTES = 8 * 1024 * 1024  # base64 of 5 MB plus the JSON around it
MIN_IMAGE_SIDE = 80
MAX_IMAGE_SIDE = 4096
_JPEG_MAGIC, _PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"
_ATTRIBUTES = frozenset({"DEFAULT", "ALL"})


@dataclass(frozen=True)
class ServiceError(Exception):
    code: str
    message: str
    status: int = 400


def error_body(error: ServiceError) -> bytes:
    return json.dumps({"__type": error.code, "Message": error.message}).encode()


class LocalFaceDetector:
    """Rekognition's ``FaceDetails`` answered by the face stage's detector (one net pair per thread).

    Loaded on the first ``DetectFaces`` call: the SageMaker container (serving/Dockerfile) serves
    only the model and carries neither kyc.media nor the face models."""

    def __init__(self) -> None:
        self._mesh: Any = None
        self._lock = threading.Lock()

    def detect(self, bgr: np.ndarray) -> list[dict[str, Any]]:
        with self._lock:
            if self._mesh is None:
                from kyc.media.face_mesh import FaceMeshDetector

                self._mesh = FaceMeshDetector()
        return [face.detail() for face in self._mesh.detect(bgr)]


def _image(request: Any) -> np.ndarray:
    if not isinstance(request, dict) or not isinstance(request.get("Image"), dict):
        raise ServiceError("InvalidParameterException", "Image is required")
    attributes = request.get("Attributes", ["DEFAULT"])
    if not isinstance(attributes, list) or not set(attributes) <= _ATTRIBUTES:
        raise ServiceError("InvalidParameterException", f"unsupported Attributes {attributes!r}")
    image = request["Image"]
    if "S3Object" in image:
        raise ServiceError("InvalidParameterException", "the local DetectFaces takes Image.Bytes only")
    try:
        data = base64.b64decode(image.get("Bytes") or "", validate=True)
    except (binascii.Error, TypeError) as exc:
        raise ServiceError("InvalidParameterException", "Image.Bytes is not base64") from exc
    if not data:
        raise ServiceError("InvalidParameterException", "Image.Bytes is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ServiceError("ImageTooLargeException", f"image of {len(data)} bytes, over 5 MB")
    if not (data.startswith(_JPEG_MAGIC) or data.startswith(_PNG_MAGIC)):
        raise ServiceError("InvalidImageFormatException", "Request has invalid image format")
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None or pixels.ndim != 3:
        raise ServiceError("InvalidImageFormatException", "Request has invalid image format")
    height, width = pixels.shape[:2]
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ServiceError("InvalidParameterException", f"image {width}x{height} under {MIN_IMAGE_SIDE} px")
    if max(width, height) > MAX_IMAGE_SIDE:
        raise ServiceError("ImageTooLargeException", f"image {width}x{height} over {MAX_IMAGE_SIDE} px")
    return pixels


def handle(target: str, body: bytes | None, detector: LocalFaceDetector) -> tuple[int, bytes]:
    """One request: (HTTP status, JSON body)."""
    operation = target.removeprefix(TARGET_PREFIX)
    try:
        if operation != "DetectFaces":
            raise ServiceError("UnknownOperationException", f"{operation} is not served locally")
        if body is None:
            raise ServiceError("ImageTooLargeException", f"request body over {MAX_BODY_BYTES} bytes")
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise ServiceError("SerializationException", "request body is not JSON") from exc
        faces = detector.detect(_image(request))
    except ServiceError as error:
        return error.status, error_body(error)
    return 200, json.dumps({"FaceDetails": faces}).encode()
