"""Faces, landmarks, pose and quality in one frame, on CPU: the face stage's own detector.

MediaPipe BlazeFace (short range, for front-camera selfies) finds faces; MediaPipe's 468-point face
mesh, run on each face's rotated crop, places the landmarks. Both are TFLite models read by OpenCV's
DNN module (``cv2.dnn.readNetFromTFLite``), pinned and hash-checked by kyc.media.face_models. The same
class serves the Lambda (functions/faces) and kycserve's local ``DetectFaces``, so local and AWS runs
see the same faces.

What each face reports, in Amazon Rekognition ``DetectFaces`` units so the policy's gates read it
whatever the source (docs/face-stage.md, "The local detector"):
- box: the landmarks' extent, as ratios of the image;
- confidence: 100 x the BlazeFace score x the mesh's face-presence score (both 0..1);
- pose (degrees): the head's axes from landmarks (eye corners 33/263, forehead 10, chin 152) in the
  mesh's 3-D coordinates: yaw and pitch from the depth of those axes, roll from the eye line plus
  the crop's rotation;
- brightness: 100 x mean BT.601 luma of the face box / 255; sharpness: 100 x (1 - e^(-v/100)), v the
  variance of the 3x3 Laplacian of the box's luma resized to 128 x 128.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from kyc.media.face_models import model_path

__all__ = ["FaceMeshDetector", "MeshFace", "brightness", "sharpness"]

DETECTOR_MODEL = "face_detection_short_range.tflite"
FAR_DETECTOR_MODEL = "face_detection_full_range.tflite"  # only when the short-range model finds none
MESH_MODEL = "face_landmark.tflite"
MESH_SIDE = 192
MIN_SCORE = 0.5  # BlazeFace's own threshold (MediaPipe's face_detection_short_range graph)
NMS_IOU = 0.3
ROI_SCALE = 1.5  # the mesh's crop around a detection, as MediaPipe sizes it
MIN_PRESENCE = 0.5
_RAW_LIMIT = 80.0
# landmark indices of the canonical face mesh
RIGHT_EYE_OUTER, LEFT_EYE_OUTER, FOREHEAD, CHIN = 33, 263, 10, 152


def _anchors(layout: tuple[tuple[int, int], ...]) -> np.ndarray:
    """SSD anchor centres: per (cells per side, anchors per cell), row by row."""
    points: list[tuple[float, float]] = []
    for cells, repeats in layout:
        for y in range(cells):
            for x in range(cells):
                points.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * repeats)
    return np.asarray(points, dtype=np.float32)


@dataclass(frozen=True)
class _Blaze:
    """One BlazeFace variant: model file, input side, output names and anchors (MediaPipe's graphs)."""

    model: str
    side: int
    outputs: tuple[str, str]
    anchors: np.ndarray


SHORT_RANGE = _Blaze(DETECTOR_MODEL, 128, ("classificators", "regressors"), _anchors(((16, 2), (8, 6))))
FULL_RANGE = _Blaze(
    FAR_DETECTOR_MODEL,
    192,
    ("reshaped_classifier_face_4", "reshaped_regressor_face_4"),
    _anchors(((48, 1),)),
)


@dataclass(frozen=True)
class MeshFace:
    """One face: box as image ratios (left, top, width, height), scores 0..1, landmarks in pixels."""

    box: tuple[float, float, float, float]
    score: float
    presence: float
    landmarks: np.ndarray  # (468, 3): x, y in image pixels; z in the same scale as x
    yaw: float
    pitch: float
    roll: float
    brightness: float
    sharpness: float

    @property
    def confidence(self) -> float:
        return 100.0 * self.presence

    def detail(self) -> dict[str, Any]:
        """As Rekognition's ``FaceDetails`` entry (the fields the face stage reads)."""
        left, top, width, height = self.box
        return {
            "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
            "Confidence": round(self.confidence, 4),
            "Pose": {"Roll": round(self.roll, 3), "Yaw": round(self.yaw, 3), "Pitch": round(self.pitch, 3)},
            "Quality": {"Brightness": round(self.brightness, 4), "Sharpness": round(self.sharpness, 4)},
        }


def brightness(luma: np.ndarray) -> float:
    return 100.0 * float(luma.mean()) / 255.0


def sharpness(luma: np.ndarray) -> float:
    normalised = cv2.resize(luma, (128, 128), interpolation=cv2.INTER_AREA)
    variance = float(cv2.Laplacian(normalised, cv2.CV_64F).var())
    return 100.0 * (1.0 - math.exp(-variance / 100.0))


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(raw, -_RAW_LIMIT, _RAW_LIMIT)))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box a (x0, y0, x1, y1) against boxes b."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-9)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: overlapping detections are averaged by score."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    kept: list[tuple[np.ndarray, float]] = []
    remaining = np.ones(len(scores), dtype=bool)
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = remaining & (_iou(boxes[i, :4], boxes[:, :4]) > NMS_IOU)
        weights = scores[overlap][:, None]
        kept.append(((boxes[overlap] * weights).sum(0) / weights.sum(), float(scores[i])))
        remaining &= ~overlap
    return kept


class _Nets(threading.local):
    """One pair of networks per thread: OpenCV's DNN nets are not safe to share across threads."""

    def __init__(self) -> None:
        self.near = cv2.dnn.readNetFromTFLite(str(model_path(DETECTOR_MODEL)))
        self.far = cv2.dnn.readNetFromTFLite(str(model_path(FAR_DETECTOR_MODEL)))
        self.mesh = cv2.dnn.readNetFromTFLite(str(model_path(MESH_MODEL)))


class FaceMeshDetector:
    def __init__(self) -> None:
        for name in (DETECTOR_MODEL, FAR_DETECTOR_MODEL, MESH_MODEL):
            model_path(name)  # fail at start, not on the first frame
        self._nets = _Nets()

    def detect(self, bgr: np.ndarray) -> list[MeshFace]:
        """Every face BlazeFace finds and the mesh confirms, strongest first."""
        height, width = bgr.shape[:2]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        luma = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        faces = []
        found = self._detections(rgb, SHORT_RANGE, self._nets.near)
        if not found:  # a face further away than a selfie (e.g. too small to count): still reported
            found = self._detections(rgb, FULL_RANGE, self._nets.far)
        for box, score in found:
            face = self._mesh(rgb, luma, box, score, width, height)
            if face is not None:
                faces.append(face)
        return faces

    @staticmethod
    def _detections(rgb: np.ndarray, model: _Blaze, net: Any) -> list[tuple[np.ndarray, float]]:
        """BlazeFace on the letterboxed image: (x0, y0, x1, y1, 6 keypoints x/y) in pixels, score."""
        height, width = rgb.shape[:2]
        side, square = max(width, height), model.side
        scale = square / side
        resized = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))))
        canvas = np.zeros((square, square, 3), np.uint8)
        top, left = (square - resized.shape[0]) // 2, (square - resized.shape[1]) // 2
        canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
        blob = (canvas.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        net.setInput(blob)
        scores_raw, regressors = net.forward(list(model.outputs))
        raw = regressors.reshape(-1, 8, 2) / square
        centre, size = raw[:, 0] + model.anchors, raw[:, 1]
        points = raw[:, 2:] + model.anchors[:, None]
        scores = _sigmoid(scores_raw.reshape(-1))
        keep = (scores > MIN_SCORE) & (size[:, 0] > 0) & (size[:, 1] > 0)
        boxes = np.concatenate([centre - size / 2, centre + size / 2, points.reshape(-1, 12)], axis=1)[keep]
        # back from the letterboxed square to image pixels
        offset = np.tile([left, top], 8) / square
        pixels = (boxes - offset) * side
        return _weighted_nms(pixels, scores[keep])

    def _mesh(
        self, rgb: np.ndarray, luma: np.ndarray, det: np.ndarray, score: float, width: int, height: int
    ) -> MeshFace | None:
        x0, y0, x1, y1 = det[:4]
        (ex0, ey0), (ex1, ey1) = det[4:6], det[6:8]  # the two eyes, image-left first when upright
        theta = math.atan2(ey1 - ey0, ex1 - ex0)
        side = max(x1 - x0, y1 - y0) * ROI_SCALE
        if side < 2:
            return None
        a = side / MESH_SIDE
        cos, sin = math.cos(theta) * a, math.sin(theta) * a
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half = MESH_SIDE / 2
        # crop pixel (u, v) -> image pixel: centre + R(theta) * a * (u - half, v - half)
        to_image = np.array([[cos, -sin, cx - half * (cos - sin)], [sin, cos, cy - half * (sin + cos)]])
        crop = cv2.warpAffine(
            rgb,
            to_image,
            (MESH_SIDE, MESH_SIDE),
            flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
        net = self._nets.mesh
        net.setInput((crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        presence_raw, mesh_raw = net.forward(["conv2d_30", "conv2d_20"])
        presence = float(_sigmoid(presence_raw.reshape(-1))[-1])
        if presence < MIN_PRESENCE:
            return None
        local = mesh_raw.reshape(-1, 3).astype(np.float64)
        yaw, pitch, roll_local = _pose(local)
        points = np.empty_like(local)
        points[:, :2] = local[:, :2] @ to_image[:, :2].T + to_image[:, 2]
        points[:, 2] = local[:, 2] * a
        lx0, ly0 = np.clip(points[:, :2].min(0), 0, [width, height])
        lx1, ly1 = np.clip(points[:, :2].max(0), 0, [width, height])
        box_luma = luma[
            int(ly0) : max(int(ly0) + 1, math.ceil(ly1)),
            int(lx0) : max(int(lx0) + 1, math.ceil(lx1)),
        ]
        return MeshFace(
            box=(lx0 / width, ly0 / height, (lx1 - lx0) / width, (ly1 - ly0) / height),
            score=score,
            presence=presence,
            landmarks=points,
            yaw=yaw,
            pitch=pitch,
            roll=_wrap(roll_local + math.degrees(theta)),
            brightness=brightness(box_luma),
            sharpness=sharpness(box_luma),
        )


def _wrap(degrees: float) -> float:
    return (degrees + 180.0) % 360.0 - 180.0


def _pose(points: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch and roll (degrees) of the head from mesh points in the crop's coordinates."""
    across = points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]  # image-right when upright and frontal
    down = points[CHIN] - points[FOREHEAD]
    x_axis = across / max(np.linalg.norm(across), 1e-9)
    z_axis = np.cross(x_axis, down)
    z_axis /= max(np.linalg.norm(z_axis), 1e-9)
    y_axis = np.cross(z_axis, x_axis)
    yaw = math.degrees(math.atan2(x_axis[2], math.hypot(x_axis[0], x_axis[1])))
    pitch = math.degrees(math.atan2(y_axis[2], math.hypot(y_axis[0], y_axis[1])))
    roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
    return yaw, pitch, roll
