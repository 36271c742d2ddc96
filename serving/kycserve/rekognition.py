"""A local Amazon Rekognition ``DetectFaces`` (AWS JSON 1.1), answered with OpenCV.

moto has no ``DetectFaces``; the face stage reaches this instead through
``AWS_ENDPOINT_URL_REKOGNITION``, with the same boto3 client it uses in AWS. The wire format is the
service's: ``POST /`` with ``X-Amz-Target: RekognitionService.DetectFaces``, ``Image.Bytes`` base64 in
the JSON body, and errors as ``{"__type": ..., "Message": ...}`` with HTTP 400 (docs/face-stage.md).

What the detector reports, and how it differs from Rekognition's (a neural detector):
- faces: OpenCV's Haar frontal cascade (the one the reference model uses), plus its profile cascade
  on the image and its mirror for turned faces; ``Confidence`` = 100 * (1 - exp(-votes / 3)) from the
  cascade's neighbour votes (5 votes ~ 81, 7 ~ 90, 12 ~ 98): a heuristic, not a probability;
- ``Pose`` is coarse: 0/0/0 for a frontal detection, yaw -70 or +70 for a profile detection (by
  which of the image or its mirror matched), pitch and roll always 0 (Haar cannot measure them);
- ``Quality.Brightness`` = 100 * mean luma (BT.601, 0..255) of the face box / 255;
- ``Quality.Sharpness`` = 100 * (1 - exp(-v / 100)), v the variance of the 3x3 Laplacian of the face
  box's luma resized to 128 x 128 (so it does not depend on the face's resolution).
The scales imitate Rekognition's 0..100 but are not Rekognition's: set the policy's ``face_gates``
from measurements on the detector you deploy with.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from kycserve.models.faces import FaceBox, HaarFaceFinder

TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # raw image bytes (Rekognition Image quotas)
MAX_BODY_BYTES = 8 * 1024 * 1024  # base64 of 5 MB plus the JSON around it
MIN_IMAGE_SIDE = 80
MAX_IMAGE_SIDE = 4096
PROFILE_YAW_DEG = 70.0
_PROFILE = cv2.data.haarcascades + "haarcascade_profileface.xml"
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
    """Frontal and profile Haar cascades, one classifier per thread (OpenCV's are not thread-safe)."""

    def __init__(self) -> None:
        self._frontal = HaarFaceFinder(min_face_fraction=0.0)
        self._local = threading.local()
        if cv2.CascadeClassifier(_PROFILE).empty():
            raise RuntimeError(f"Haar cascade missing: {_PROFILE}")

    def _profile(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "profile", None)
        if cascade is None:
            cascade = self._local.profile = cv2.CascadeClassifier(_PROFILE)
        return cascade

    def detect(self, bgr: np.ndarray) -> list[dict[str, Any]]:
        height, width = bgr.shape[:2]
        luma = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        found = [(box, 0.0) for box in self._frontal.find(bgr, max_faces=100)]
        for box, yaw in self._profiles(luma):
            if not any(_overlap(box, other) > 0.3 for other, _ in found):
                found.append((box, yaw))
        return [_face_detail(luma, box, yaw, width, height) for box, yaw in found]

    def _profiles(self, luma: np.ndarray) -> list[tuple[FaceBox, float]]:
        gray = cv2.equalizeHist(luma)
        width = gray.shape[1]
        boxes: list[tuple[FaceBox, float]] = []
        for mirrored, yaw in ((False, -PROFILE_YAW_DEG), (True, PROFILE_YAW_DEG)):
            image = cv2.flip(gray, 1) if mirrored else gray
            rects, votes = self._profile().detectMultiScale2(
                image, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
            )
            for (x, y, w, h), n in zip(rects, votes, strict=True):
                x = width - x - w if mirrored else x
                boxes.append((FaceBox(int(x), int(y), int(w), int(h), float(n)), yaw))
        return boxes


def _overlap(a: FaceBox, b: FaceBox) -> float:
    """Intersection over the smaller box."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return ix * iy / max(1, min(a.w * a.h, b.w * b.h))


def _face_detail(luma: np.ndarray, box: FaceBox, yaw: float, width: int, height: int) -> dict[str, Any]:
    # HaarFaceFinder maps votes to 0..1 (20 votes = 1.0); the profile path carries raw votes.
    votes = box.confidence * 20.0 if yaw == 0.0 else box.confidence
    crop = luma[box.y : box.y + box.h, box.x : box.x + box.w]
    return {
        "BoundingBox": {
            "Width": box.w / width,
            "Height": box.h / height,
            "Left": box.x / width,
            "Top": box.y / height,
        },
        "Confidence": round(100.0 * (1.0 - math.exp(-votes / 3.0)), 4),
        "Pose": {"Roll": 0.0, "Yaw": yaw, "Pitch": 0.0},
        "Quality": {"Brightness": round(brightness(crop), 4), "Sharpness": round(sharpness(crop), 4)},
    }


def brightness(luma: np.ndarray) -> float:
    return 100.0 * float(luma.mean()) / 255.0


def sharpness(luma: np.ndarray) -> float:
    normalised = cv2.resize(luma, (128, 128), interpolation=cv2.INTER_AREA)
    variance = float(cv2.Laplacian(normalised, cv2.CV_64F).var())
    return 100.0 * (1.0 - math.exp(-variance / 100.0))


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
