"""Configuration from the environment, read once per cold start into frozen dataclasses.

Template parameters reach the functions as ``KYC_*`` variables (docs/architecture.md lists them);
nothing else in the code reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kyc.media.limits import DEFAULT_ALLOWED_CODECS, MediaLimits


class SettingsError(Exception):
    """A required variable is missing or malformed: a deployment fault, not an upload fault."""


def _get(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, default)
    if value is None or value == "":
        if default is not None:
            return default
        raise SettingsError(f"environment variable {name} is not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(_get(env, name, str(default)))
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(_get(env, name, str(default)))
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number") from exc


def media_limits(env: Mapping[str, str] | None = None) -> MediaLimits:
    env = os.environ if env is None else env
    base = MediaLimits()
    codecs = _get(env, "KYC_ALLOWED_CODECS", ",".join(sorted(DEFAULT_ALLOWED_CODECS)))
    return MediaLimits(
        max_bytes=_int(env, "KYC_MAX_UPLOAD_BYTES", base.max_bytes),
        min_duration_s=_float(env, "KYC_MIN_DURATION_S", base.min_duration_s),
        max_duration_s=_float(env, "KYC_MAX_DURATION_S", base.max_duration_s),
        min_side=_int(env, "KYC_MIN_SIDE", base.min_side),
        max_width=_int(env, "KYC_MAX_WIDTH", base.max_width),
        max_height=_int(env, "KYC_MAX_HEIGHT", base.max_height),
        max_pixels=_int(env, "KYC_MAX_PIXELS", base.max_pixels),
        allowed_codecs=frozenset(c.strip().lower() for c in codecs.split(",") if c.strip()),
        decode_budget_s=_float(env, "KYC_DECODE_BUDGET_S", base.decode_budget_s),
    )


def sandbox_memory_fraction(env: Mapping[str, str] | None = None) -> float:
    """Share of the function's memory the decoder child may add as address space (docs/limits.md)."""
    env = os.environ if env is None else env
    fraction = _float(env, "KYC_SANDBOX_MEMORY_FRACTION", 1.0)
    if not 0.1 <= fraction <= 4.0:
        raise SettingsError(f"KYC_SANDBOX_MEMORY_FRACTION {fraction} is outside 0.1..4")
    return fraction


@dataclass(frozen=True)
class StackResources:
    """Names of the stack's resources a function talks to; empty when a function does not use one."""

    work_bucket: str = ""
    audit_bucket: str = ""
    decisions_table: str = ""
    kms_key_id: str = ""
    endpoint_name: str = ""
    state_machine_arn: str = ""
    review_topic_arn: str = ""
    policy_parameter: str = ""
    retention_days: int = 1825
    score_max_concurrency: int = 4
    max_running_executions: int = 50
    review_link_seconds: int = 900


def stack_resources(env: Mapping[str, str] | None = None) -> StackResources:
    env = os.environ if env is None else env
    return StackResources(
        work_bucket=env.get("KYC_WORK_BUCKET", ""),
        audit_bucket=env.get("KYC_AUDIT_BUCKET", ""),
        decisions_table=env.get("KYC_DECISIONS_TABLE", ""),
        kms_key_id=env.get("KYC_KMS_KEY_ID", ""),
        endpoint_name=env.get("KYC_ENDPOINT_NAME", ""),
        state_machine_arn=env.get("KYC_STATE_MACHINE_ARN", ""),
        review_topic_arn=env.get("KYC_REVIEW_TOPIC_ARN", ""),
        policy_parameter=env.get("KYC_POLICY_PARAMETER", ""),
        retention_days=_int(env, "KYC_RETENTION_DAYS", 1825),
        score_max_concurrency=_int(env, "KYC_SCORE_MAX_CONCURRENCY", 4),
        max_running_executions=_int(env, "KYC_MAX_RUNNING_EXECUTIONS", 50),
        review_link_seconds=_int(env, "KYC_REVIEW_LINK_SECONDS", 900),
    )


def policy_defaults(env: Mapping[str, str] | None = None) -> dict[str, object]:
    """The decision policy as the template's parameters set it (SSM may override at run time)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for key, name, cast in (
        ("pass_threshold", "KYC_PASS_THRESHOLD", float),
        ("reject_threshold", "KYC_REJECT_THRESHOLD", float),
        ("aggregator", "KYC_AGGREGATOR", str),
        ("min_frames_scored", "KYC_MIN_FRAMES_SCORED", int),
        ("version", "KYC_POLICY_VERSION", str),
    ):
        raw = env.get(name)
        if raw:
            try:
                values[key] = cast(raw)
            except ValueError as exc:
                raise SettingsError(f"{name} is malformed") from exc
    return values


def sampling_overrides(env: Mapping[str, str] | None = None) -> dict[str, int]:
    env = os.environ if env is None else env
    return {
        "frame_count": _int(env, "KYC_FRAME_COUNT", 32),
        "max_side": _int(env, "KYC_FRAME_MAX_SIDE", 1024),
    }


@dataclass(frozen=True)
class UploadEdge:
    """Where the optional presigned-upload API lets clients put videos, and for how long a form lives."""

    intake_bucket: str
    upload_prefix: str
    url_expiry_s: int


def upload_edge(env: Mapping[str, str] | None = None) -> UploadEdge:
    env = os.environ if env is None else env
    return UploadEdge(
        intake_bucket=_get(env, "KYC_INTAKE_BUCKET"),
        upload_prefix=_get(env, "KYC_UPLOAD_PREFIX", "uploads/"),
        url_expiry_s=_int(env, "KYC_UPLOAD_URL_EXPIRY_S", 300),
    )


# --- face stage (docs/decision-policy.md, "Face evidence") ---
FACE_EVIDENCE_SOURCES = ("rekognition", "model")


@dataclass(frozen=True)
class FaceStageSettings:
    """Where face evidence comes from, and how many sampled frames the face stage checks (0: all)."""

    source: str = "rekognition"
    check_frames: int = 0


def face_stage(env: Mapping[str, str] | None = None) -> FaceStageSettings:
    """Unset means ``rekognition``: without the stage's evidence nothing can PASS (fail closed)."""
    env = os.environ if env is None else env
    source = _get(env, "KYC_FACE_EVIDENCE_SOURCE", "rekognition")
    if source not in FACE_EVIDENCE_SOURCES:
        raise SettingsError(f"KYC_FACE_EVIDENCE_SOURCE must be one of {FACE_EVIDENCE_SOURCES}: {source!r}")
    check_frames = _int(env, "KYC_FACE_CHECK_FRAMES", 0)
    if check_frames < 0:
        raise SettingsError("KYC_FACE_CHECK_FRAMES must be >= 0")
    return FaceStageSettings(source=source, check_frames=check_frames)
