"""The face stage's boto3 Rekognition client against kycserve's local DetectFaces, over HTTP.

Oracles: the drawn face's known geometry (kyclocal.samples.drawn_face: an oval centred in the frame),
luma computed here with numpy's BT.601 weights, and the service's documented error codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from botocore.config import Config

from kyc.aws.rekognition_face_detector import (
    CLIENT_CONFIG,
    FaceDetectionError,
    FaceDetectionThrottled,
    RekognitionFaceDetector,
)
from kyc.media.detection_image import detection_image
from kyclocal.samples import drawn_face
from kycserve import ModelServer, start_server, stop

W, H = 640, 480


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ModelServer, str]]:
    srv, thread, url = start_server(None)
    yield srv, url
    stop(srv, thread)


def _client(url: str, config: Config = CLIENT_CONFIG) -> Any:
    return boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=config,
    )


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def test_detect_faces_finds_the_drawn_face_where_it_was_drawn(server: tuple[ModelServer, str]) -> None:
    rgb = drawn_face(W, H)
    found = RekognitionFaceDetector(_client(server[1])).detect(_jpeg(rgb))

    assert found.refused is None and len(found.faces) == 1
    face = found.faces[0]
    box = face["box"]
    cx, cy = (box["left"] + box["width"] / 2) * W, (box["top"] + box["height"] / 2) * H
    assert abs(cx - W / 2) < 30 and abs(cy - H / 2) < 40  # the oval is centred at (320, 240)
    assert 120 < box["width"] * W < 330  # oval 190 x 250 px
    assert face["confidence"] >= 90.0
    assert all(abs(angle) < 8.0 for angle in face["pose"].values()), face["pose"]  # drawn frontal
    x0, y0 = round(box["left"] * W), round(box["top"] * H)
    x1, y1 = x0 + round(box["width"] * W), y0 + round(box["height"] * H)
    crop = rgb[y0:y1, x0:x1]
    luma = 0.299 * crop[..., 0] + 0.587 * crop[..., 1] + 0.114 * crop[..., 2]
    assert face["brightness"] == pytest.approx(100 * luma.mean() / 255, abs=2.0)
    assert face["sharpness"] > 50.0


@pytest.mark.parametrize("degrees", [-40.0, 25.0, 50.0])
def test_roll_is_the_angle_the_frame_was_rotated_by(server: tuple[ModelServer, str], degrees: float) -> None:
    """Oracle: the rotation applied here. The image turns counter-clockwise by ``degrees`` (OpenCV's
    convention), so the face's eye line rolls by -degrees in image coordinates (y down)."""
    square = np.full((640, 640, 3), 120.0)
    square[80:560] = drawn_face(640, 480)
    turn = cv2.getRotationMatrix2D((320, 320), degrees, 1.0)
    rotated = cv2.warpAffine(square, turn, (640, 640), borderMode=cv2.BORDER_REPLICATE)
    upright = RekognitionFaceDetector(_client(server[1])).detect(_jpeg(square)).faces[0]["pose"]["roll"]
    (face,) = RekognitionFaceDetector(_client(server[1])).detect(_jpeg(rotated)).faces

    assert face["pose"]["roll"] - upright == pytest.approx(-degrees, abs=5.0)


def test_darkened_and_blurred_faces_report_low_brightness_and_sharpness(
    server: tuple[ModelServer, str],
) -> None:
    detector = RekognitionFaceDetector(_client(server[1]))
    bright = detector.detect(_jpeg(drawn_face(W, H))).faces[0]
    dark = detector.detect(_jpeg(drawn_face(W, H) * 0.15)).faces
    blurred = detector.detect(_jpeg(cv2.GaussianBlur(drawn_face(W, H), (0, 0), 6))).faces

    assert dark and dark[0]["brightness"] < 20.0 < bright["brightness"]
    assert blurred and blurred[0]["sharpness"] < 10.0 < bright["sharpness"]


def test_no_face_and_two_faces(server: tuple[ModelServer, str]) -> None:
    detector = RekognitionFaceDetector(_client(server[1]))
    grey = np.full((H, W, 3), 128.0)
    two = np.concatenate([drawn_face(W // 2 + 80, H), drawn_face(W // 2 + 80, H)], axis=1)

    assert detector.detect(_jpeg(grey)).faces == ()
    assert len(detector.detect(_jpeg(two)).faces) == 2


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (b"GIF89a not a jpeg", "InvalidImageFormatException"),
        (b"\xff\xd8\xff truncated jpeg", "InvalidImageFormatException"),
        (None, "ImageTooLargeException"),  # a 5.5 MB PNG of noise
        ("tiny", "InvalidParameterException"),  # 64 x 64, under the 80 px minimum
    ],
)
def test_refused_images_are_recorded_by_code(server: tuple[ModelServer, str], image: Any, code: str) -> None:
    if image is None:
        noise = np.random.default_rng(1).integers(0, 256, (1400, 1400, 3), dtype=np.uint8)
        image = cv2.imencode(".png", noise)[1].tobytes()
        assert len(image) > 5 * 1024 * 1024
    elif image == "tiny":
        image = _jpeg(np.full((64, 64, 3), 200.0))
    found = RekognitionFaceDetector(_client(server[1])).detect(image)
    assert (found.faces, found.refused) == ((), code)


def test_throttling_is_retried_by_the_client_then_raised(server: tuple[ModelServer, str]) -> None:
    srv, url = server
    face = _jpeg(drawn_face(W, H))
    srv.rekognition_faults.extend(["ThrottlingException"])
    assert len(RekognitionFaceDetector(_client(url)).detect(face).faces) == 1  # botocore retried once
    assert not srv.rekognition_faults

    once = Config(retries={"mode": "standard", "total_max_attempts": 1})
    srv.rekognition_faults.extend(["ProvisionedThroughputExceededException"])
    with pytest.raises(FaceDetectionThrottled):
        RekognitionFaceDetector(_client(url, once)).detect(face)


def test_other_service_errors_fail_the_stage(server: tuple[ModelServer, str]) -> None:
    srv, url = server
    srv.rekognition_faults.extend(["AccessDeniedException"])
    with pytest.raises(FaceDetectionError) as caught:
        RekognitionFaceDetector(_client(url)).detect(_jpeg(drawn_face(W, H)))
    assert not isinstance(caught.value, FaceDetectionThrottled)


def test_detection_image_keeps_small_frames_and_fits_large_ones_within_the_limits() -> None:
    jpeg = _jpeg(drawn_face(W, H))
    kept = detection_image(
        jpeg, "image/jpeg", W, H, max_bytes=5 << 20, min_side=80, content_types=frozenset({"image/jpeg"})
    )
    assert (kept.data, kept.reencoded) == (jpeg, False)

    noise = np.random.default_rng(2).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    png = cv2.imencode(".png", noise)[1].tobytes()
    fitted = detection_image(
        png, "image/png", 1200, 900, max_bytes=400_000, min_side=80, content_types=frozenset({"image/png"})
    )
    assert fitted.reencoded and len(fitted.data) <= 400_000 and fitted.data.startswith(b"\xff\xd8\xff")
    decoded = cv2.imdecode(np.frombuffer(fitted.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (fitted.height, fitted.width)
    assert abs(fitted.width / fitted.height - 1200 / 900) < 0.02  # aspect kept

    small = _jpeg(np.full((60, 100, 3), 90.0))
    grown = detection_image(
        small, "image/jpeg", 100, 60, max_bytes=5 << 20, min_side=80, content_types=frozenset({"image/jpeg"})
    )
    assert min(grown.width, grown.height) == 80
