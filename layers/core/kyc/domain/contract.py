"""The model contract v1: how frames go to any detector and how its scores come back.

One JSON request carries a batch of encoded frames; one JSON response carries one score per frame.
The score Lambda, the model server and customer containers all speak it, so a detector can be
swapped without touching the pipeline. Anything off-contract in a response is a violation, never a
guess: the pipeline fails closed rather than read a score it does not understand.

Why JSON with base64 images (see docs/model-contract.md): every language and serving stack reads it,
the request is self-describing and hashable for lineage, and the 33 % base64 overhead still fits a
batch of 8 JPEG frames at 1024 px far below the 6 MiB InvokeEndpoint limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONTRACT_VERSION = "v1"
CONTENT_TYPE = "application/json"
# The value sent in the InvokeEndpoint CustomAttributes header so a container can refuse a contract
# it does not speak.
CUSTOM_ATTRIBUTES = f"contract={CONTRACT_VERSION}"

# InvokeEndpoint refuses bodies above 6 MiB (botocore sagemaker-runtime BodyBlob max 6291456).
MAX_REQUEST_BYTES = 6 * 1024 * 1024
# What batching aims for: below the 4 MB serverless-endpoint limit (read as 4,000,000 bytes), with
# room for headers, so one plan works on real-time and serverless endpoints alike.
REQUEST_BUDGET_BYTES = 3_800_000
MAX_FRAMES_PER_REQUEST = 64

IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png")
_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}

MAX_FRAME_ID_LENGTH = 64
# Ids never need JSON escaping, so the encoded size of a request is known in advance.
_FRAME_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUALITY_FLAG = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MAX_NAME_LENGTH = 128
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class QualityFlag:
    """Quality flags the reference model and the policy know; models may add others (snake_case)."""

    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    DECODE_FAILED = "decode_failed"
    FACE_TOO_SMALL = "face_too_small"


class ContractError(Exception):
    """A request or response does not follow the model contract."""


class ContractViolationError(ContractError):
    """A model response is off-contract; its scores must not be used."""


@dataclass(frozen=True)
class FrameImage:
    """One sampled frame, already encoded (JPEG or PNG)."""

    frame_id: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Face:
    """A detected face: ``box`` is (x, y, w, h) normalised to 0..1 of the frame."""

    box: tuple[float, float, float, float]
    confidence: float
    p_fake: float | None


@dataclass(frozen=True)
class FrameScore:
    """The model's verdict on one frame. ``p_fake`` is None when the frame gave no usable evidence."""

    frame_id: str
    p_fake: float | None
    faces: tuple[Face, ...] = ()
    quality: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """Which detector produced the scores; recorded in lineage with every decision.

    ``artefact_sha256`` (optional in contract v1): the SHA-256 of the artefact the server loaded
    (an ONNX file, a model.tar.gz). A name and version are labels anyone can copy; the hash is what
    a calibration binds (docs/model-contract.md).
    """

    name: str
    version: str
    artefact_sha256: str | None = None

    def to_dict(self) -> dict[str, str]:
        """``name`` and ``version``, plus ``artefact_sha256`` when the model reported one."""
        base = {"name": self.name, "version": self.version}
        return base | ({"artefact_sha256": self.artefact_sha256} if self.artefact_sha256 else {})


@dataclass(frozen=True)
class ScoredBatch:
    """A response that passed every contract check, scores in the order they were asked for."""

    model: ModelInfo
    scores: tuple[FrameScore, ...]


# --- request -----------------------------------------------------------------------------------

_LONGEST_TYPE = max(IMAGE_CONTENT_TYPES, key=len)


def _frame_overhead(frame_id_length: int, content_type: str) -> int:
    entry = {"frame_id": "x" * frame_id_length, "content_type": content_type, "data": ""}
    return len(json.dumps(entry, separators=(",", ":")))


_REQUEST_OVERHEAD = len(
    json.dumps({"contract_version": CONTRACT_VERSION, "frames": []}, separators=(",", ":"))
)
_MAX_FRAME_OVERHEAD = _frame_overhead(MAX_FRAME_ID_LENGTH, _LONGEST_TYPE)


def _b64_length(n: int) -> int:
    return 4 * ((n + 2) // 3)


def encoded_request_size(frame_sizes: Sequence[int]) -> int:
    """Upper bound of the request body for frames of these raw sizes (exact for 64-character ids).

    Batching is planned before the frames are read, so the bound must hold for any legal id.
    """
    if any(size < 0 for size in frame_sizes):
        raise ContractError("frame sizes must be >= 0")
    commas = max(len(frame_sizes) - 1, 0)
    return _REQUEST_OVERHEAD + commas + sum(_MAX_FRAME_OVERHEAD + _b64_length(s) for s in frame_sizes)


def plan_batches(
    frame_sizes: Sequence[int], *, max_request_bytes: int = REQUEST_BUDGET_BYTES, max_frames: int = 8
) -> list[list[int]]:
    """Group frame indices into requests that fit the budget, keeping order (greedy, contiguous).

    A single frame too big for any request raises ContractError: shrinking it is the extractor's
    job, and silently dropping it would be missing evidence.
    """
    if max_frames < 1 or max_frames > MAX_FRAMES_PER_REQUEST:
        raise ContractError(f"max_frames must be in 1..{MAX_FRAMES_PER_REQUEST}")
    if max_request_bytes > MAX_REQUEST_BYTES:
        raise ContractError(f"max_request_bytes above the InvokeEndpoint limit of {MAX_REQUEST_BYTES}")
    batches: list[list[int]] = []
    current: list[int] = []
    current_bytes = _REQUEST_OVERHEAD
    for index, size in enumerate(frame_sizes):
        if encoded_request_size([size]) > max_request_bytes:
            raise ContractError(
                f"frame {index} ({size} bytes) cannot fit a request of {max_request_bytes} bytes"
            )
        cost = _MAX_FRAME_OVERHEAD + _b64_length(size) + (1 if current else 0)
        if current and (len(current) >= max_frames or current_bytes + cost > max_request_bytes):
            batches.append(current)
            current, current_bytes = [], _REQUEST_OVERHEAD
            cost -= 1
        current.append(index)
        current_bytes += cost
    if current:
        batches.append(current)
    return batches


def _check_frame(frame: FrameImage) -> None:
    if not isinstance(frame.frame_id, str) or not _FRAME_ID.match(frame.frame_id):
        raise ContractError(f"frame_id must match {_FRAME_ID.pattern}")
    if frame.content_type not in IMAGE_CONTENT_TYPES:
        raise ContractError(f"content_type must be one of {IMAGE_CONTENT_TYPES}")
    if not frame.data.startswith(_MAGIC[frame.content_type]):
        raise ContractError(f"frame {frame.frame_id} is not a {frame.content_type} image")


def _check_frames(frames: Sequence[FrameImage]) -> None:
    if not frames:
        raise ContractError("a request carries at least one frame")
    if len(frames) > MAX_FRAMES_PER_REQUEST:
        raise ContractError(f"a request carries at most {MAX_FRAMES_PER_REQUEST} frames")
    for frame in frames:
        _check_frame(frame)
    if len({f.frame_id for f in frames}) != len(frames):
        raise ContractError("frame ids must be unique within a request")


def encode_request(frames: Sequence[FrameImage]) -> bytes:
    """The InvokeEndpoint body for these frames; raises ContractError if it would break the contract."""
    _check_frames(frames)
    body = {
        "contract_version": CONTRACT_VERSION,
        "frames": [
            {
                "frame_id": f.frame_id,
                "content_type": f.content_type,
                "data": base64.b64encode(f.data).decode(),
            }
            for f in frames
        ],
    }
    encoded = json.dumps(body, separators=(",", ":")).encode("ascii")
    if len(encoded) > MAX_REQUEST_BYTES:
        raise ContractError(f"request of {len(encoded)} bytes exceeds {MAX_REQUEST_BYTES}")
    return encoded


def _load_object(body: bytes, error: type[ContractError]) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(f"body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise error("body must be a JSON object")
    if document.get("contract_version") != CONTRACT_VERSION:
        raise error(f"contract_version must be {CONTRACT_VERSION!r}")
    return document


def decode_request(body: bytes) -> list[FrameImage]:
    """Parse a request on the model side; raises ContractError on anything off-contract."""
    if len(body) > MAX_REQUEST_BYTES:
        raise ContractError(f"request of {len(body)} bytes exceeds {MAX_REQUEST_BYTES}")
    document = _load_object(body, ContractError)
    raw_frames = document.get("frames")
    if not isinstance(raw_frames, list):
        raise ContractError("frames must be a list")
    frames: list[FrameImage] = []
    for raw in raw_frames:
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), str):
            raise ContractError("each frame needs frame_id, content_type and base64 data")
        try:
            data = base64.b64decode(raw["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ContractError("frame data is not valid base64") from exc
        frames.append(
            FrameImage(frame_id=raw.get("frame_id"), content_type=raw.get("content_type"), data=data)
        )
    _check_frames(frames)
    return frames


# --- response ----------------------------------------------------------------------------------


def _face_to_dict(face: Face) -> dict[str, Any]:
    return {"box": [round(v, 6) for v in face.box], "confidence": face.confidence, "p_fake": face.p_fake}


def encode_response(model: ModelInfo, scores: Sequence[FrameScore]) -> bytes:
    """The body a model server returns (compact JSON, one entry per frame)."""
    body = {
        "contract_version": CONTRACT_VERSION,
        "model": model.to_dict(),
        "frames": [
            {
                "frame_id": s.frame_id,
                "p_fake": s.p_fake,
                "faces": [_face_to_dict(f) for f in s.faces],
                "quality": list(s.quality),
            }
            for s in scores
        ],
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _probability(value: Any, where: str, *, nullable: bool) -> float | None:
    if value is None and nullable:
        return None
    # bool is an int in Python; true/false is not a probability.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractViolationError(f"{where} must be a number in [0, 1]")
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise ContractViolationError(f"{where} = {value!r} is outside [0, 1]")
    return number


def _parse_model(raw: Any) -> ModelInfo:
    if not isinstance(raw, dict):
        raise ContractViolationError("model must be an object with name and version")
    name, version = raw.get("name"), raw.get("version")
    for label, value in (("name", name), ("version", version)):
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_NAME_LENGTH:
            raise ContractViolationError(f"model.{label} must be a non-empty string")
    artefact = raw.get("artefact_sha256")
    if artefact is not None and (not isinstance(artefact, str) or not _SHA256.match(artefact)):
        raise ContractViolationError("model.artefact_sha256 must be 64 lower-case hex digits when given")
    return ModelInfo(name=name, version=version, artefact_sha256=artefact)


def _parse_face(raw: Any, where: str) -> Face:
    if not isinstance(raw, dict):
        raise ContractViolationError(f"{where} must be an object")
    box = raw.get("box")
    if not isinstance(box, list) or len(box) != 4:
        raise ContractViolationError(f"{where}.box must be [x, y, w, h]")
    values = tuple(_probability(v, f"{where}.box", nullable=False) for v in box)
    confidence = _probability(raw.get("confidence"), f"{where}.confidence", nullable=False)
    p_fake = _probability(raw.get("p_fake"), f"{where}.p_fake", nullable=True)
    return Face(box=values, confidence=confidence, p_fake=p_fake)  # type: ignore[arg-type]


def _parse_frame(raw: Any) -> FrameScore:
    if not isinstance(raw, dict) or not isinstance(raw.get("frame_id"), str):
        raise ContractViolationError("each frame needs a frame_id")
    frame_id = raw["frame_id"]
    if "p_fake" not in raw:
        raise ContractViolationError(f"frame {frame_id}: p_fake is required (null when unscored)")
    p_fake = _probability(raw["p_fake"], f"frame {frame_id}: p_fake", nullable=True)
    faces_raw = raw.get("faces", [])
    quality_raw = raw.get("quality", [])
    if not isinstance(faces_raw, list) or not isinstance(quality_raw, list):
        raise ContractViolationError(f"frame {frame_id}: faces and quality must be lists")
    faces = tuple(_parse_face(f, f"frame {frame_id}: face") for f in faces_raw)
    for flag in quality_raw:
        if not isinstance(flag, str) or not _QUALITY_FLAG.match(flag):
            raise ContractViolationError(f"frame {frame_id}: quality flags are snake_case strings")
    return FrameScore(frame_id=frame_id, p_fake=p_fake, faces=faces, quality=tuple(quality_raw))


def parse_response(body: bytes, expected_ids: Sequence[str]) -> ScoredBatch:
    """Check a model response against the contract and the ids that were sent.

    Raises ContractViolationError for bad JSON, a missing model, a missing, extra or duplicate
    frame id, or a probability that is not a number in [0, 1] (NaN included).
    """
    document = _load_object(body, ContractViolationError)
    model = _parse_model(document.get("model"))
    raw_frames = document.get("frames")
    if not isinstance(raw_frames, list):
        raise ContractViolationError("frames must be a list")
    by_id: dict[str, FrameScore] = {}
    for raw in raw_frames:
        score = _parse_frame(raw)
        if score.frame_id in by_id:
            raise ContractViolationError(f"frame {score.frame_id} scored twice")
        by_id[score.frame_id] = score
    expected = list(expected_ids)
    missing = [i for i in expected if i not in by_id]
    extra = sorted(set(by_id) - set(expected))
    if missing or extra or len(expected) != len(by_id):
        raise ContractViolationError(f"frame ids differ from the request: missing={missing} extra={extra}")
    return ScoredBatch(model=model, scores=tuple(by_id[i] for i in expected))
