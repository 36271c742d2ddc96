"""Configuration from the environment, read once per cold start into frozen dataclasses.

Template parameters reach the functions as ``KYC_*`` variables (docs/architecture.md lists them);
nothing else in the code reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kyc.domain.drift import DriftBaseline
from kyc.domain.policy import PolicyError
from kyc.domain.provenance import ProvenancePolicy
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
    review_bucket: str = ""  # contact sheets (faces): kept apart from the write-once audit bucket
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
    review_workbench_url: str = ""  # issue 23: set = the review message links here, never to a face
    # issue 21: how long score and decide cache the policy parameter (the production pointer); a
    # promotion is in force everywhere within this time (in between: REVIEW MODEL_NOT_CALIBRATED)
    policy_cache_seconds: int = 300


def stack_resources(env: Mapping[str, str] | None = None) -> StackResources:
    env = os.environ if env is None else env
    return StackResources(
        work_bucket=env.get("KYC_WORK_BUCKET", ""),
        audit_bucket=env.get("KYC_AUDIT_BUCKET", ""),
        review_bucket=env.get("KYC_REVIEW_BUCKET", ""),
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
        review_workbench_url=env.get("KYC_REVIEW_WORKBENCH_URL", ""),
        policy_cache_seconds=_int(env, "KYC_POLICY_CACHE_SECONDS", 300),
    )


def learning_bucket(env: Mapping[str, str] | None = None) -> str:
    """LearningBucket (issue 21): erasure reaches the learning loop's labels, datasets and crops; empty
    where a function does not use it."""
    env = os.environ if env is None else env
    return env.get("KYC_LEARNING_BUCKET", "")


def learning_index(env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """LearningIndexTable and the learning data's retention in days (issue 21): which learning units may
    hold a subject, so erasure reads only those; empty name: the full sweep."""
    env = os.environ if env is None else env
    return env.get("KYC_LEARNING_INDEX_TABLE", ""), _int(env, "KYC_LEARNING_RETENTION_DAYS", 90)


def drift_baseline_fallback(env: Mapping[str, str] | None = None) -> DriftBaseline | None:
    """The ``DriftBaseline*`` template parameters: the mix the drift alarm judges against while the
    production pointer carries no baseline of its own (before the first promotion). None if unset."""
    env = os.environ if env is None else env
    outcome, bands = env.get("KYC_DRIFT_BASELINE_OUTCOME_PERCENT"), env.get("KYC_DRIFT_BASELINE_BAND_PERCENT")
    if not outcome or not bands:
        return None
    return DriftBaseline.from_parameters(outcome, bands)


@dataclass(frozen=True)
class ShadowTrafficSettings:
    """Issue 21 live shadow traffic: the shadow pointer's name ("" = off) and the shadow call's read
    timeout (each of at most two attempts; kyc.aws.shadow_traffic bounds the whole call)."""

    parameter: str = ""
    timeout_s: float = 10.0


def shadow_traffic(env: Mapping[str, str] | None = None) -> ShadowTrafficSettings:
    env = os.environ if env is None else env
    timeout = _float(env, "KYC_SHADOW_TIMEOUT_SECONDS", 10.0)
    if not 0 < timeout <= 30:
        raise ValueError(f"KYC_SHADOW_TIMEOUT_SECONDS must be in (0, 30], got {timeout}")
    return ShadowTrafficSettings(parameter=env.get("KYC_SHADOW_POLICY_PARAMETER", ""), timeout_s=timeout)


def pseudonym_key_id(env: Mapping[str, str] | None = None) -> str:
    """The KMS HMAC key that makes every pseudonym (``PseudonymKey``); required where one is made."""
    env = os.environ if env is None else env
    return _get(env, "KYC_PSEUDONYM_KEY_ARN")


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


def deployed_model_artefact_sha256(env: Mapping[str, str] | None = None) -> str | None:
    """The SHA-256 of the model data the endpoint was created from, as the deployment recorded it
    (``ModelArtefactSha256``; empty: not recorded). A malformed value is a configuration error."""
    env = os.environ if env is None else env
    value = (env.get("KYC_MODEL_ARTEFACT_SHA256") or "").strip().lower()
    if value and not re.fullmatch(r"[0-9a-f]{64}", value):
        raise SettingsError("KYC_MODEL_ARTEFACT_SHA256 must be 64 hex digits (sha256sum of the model data)")
    return value or None


@dataclass(frozen=True)
class ModelWitnessSettings:
    """Where the deployment witness may read model data (``ModelDataBucket``, ``ModelDataPrefix``: the
    scope of the score role's s3:GetObjectAttributes) and how long a DescribeEndpoint answer is reused."""

    data_bucket: str
    data_prefix: str
    ttl_s: float


def model_witness_settings(env: Mapping[str, str] | None = None) -> ModelWitnessSettings:
    env = os.environ if env is None else env
    ttl = _float(env, "KYC_MODEL_WITNESS_TTL_S", 60.0)
    if not 0 <= ttl <= 3600:
        raise SettingsError("KYC_MODEL_WITNESS_TTL_S must be between 0 and 3600 seconds")
    return ModelWitnessSettings(
        data_bucket=env.get("KYC_MODEL_DATA_BUCKET", ""),
        data_prefix=env.get("KYC_MODEL_DATA_PREFIX", ""),
        ttl_s=ttl,
    )


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


@dataclass(frozen=True)
class DigestSettings:
    """The evidence digest: its signing key and how long writes are given to settle (docs/digests.md)."""

    signing_key_id: str
    settle_seconds: int
    reviews_table: str = ""  # issue 20: the review API's records ("" when it is off)


def digest_settings(env: Mapping[str, str] | None = None) -> DigestSettings:
    env = os.environ if env is None else env
    settle = _int(env, "KYC_DIGEST_SETTLE_SECONDS", 900)
    if settle < 0:
        raise SettingsError("KYC_DIGEST_SETTLE_SECONDS must not be negative")
    return DigestSettings(
        signing_key_id=_get(env, "KYC_DIGEST_SIGNING_KEY_ID"),
        settle_seconds=settle,
        reviews_table=env.get("KYC_REVIEWS_TABLE", ""),
    )


# --- provenance (C2PA Content Credentials and container forensics, docs/provenance.md) ---


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name, "true" if default else "false").strip().lower()
    if raw not in ("true", "false"):
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def _names(env: Mapping[str, str], name: str, default: frozenset[str]) -> frozenset[str]:
    raw = env.get(name)
    if raw is None:
        return default
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class C2paReading:
    """How the validate function reads manifests: where its trust anchors live, and a size bound."""

    trust_parameter: str = ""  # SSM parameter holding a PEM bundle; empty: trust no signer
    max_manifest_bytes: int = 4 * 1024 * 1024


def c2pa_reading(env: Mapping[str, str] | None = None) -> C2paReading:
    env = os.environ if env is None else env
    return C2paReading(
        trust_parameter=env.get("KYC_PROVENANCE_TRUST_PARAMETER", ""),
        max_manifest_bytes=_int(env, "KYC_PROVENANCE_MAX_MANIFEST_BYTES", C2paReading.max_manifest_bytes),
    )


def provenance_policy(env: Mapping[str, str] | None = None) -> ProvenancePolicy:
    """The provenance rules as the template's parameters set them (the decide function applies them)."""
    env = os.environ if env is None else env
    base = ProvenancePolicy()
    try:
        return ProvenancePolicy(
            reject_declared_synthetic=_bool(
                env, "KYC_PROVENANCE_REJECT_SYNTHETIC", base.reject_declared_synthetic
            ),
            synthetic_source_types=_names(env, "KYC_PROVENANCE_SYNTHETIC_TYPES", base.synthetic_source_types),
            review_invalid_manifest=_bool(env, "KYC_PROVENANCE_REVIEW_INVALID", base.review_invalid_manifest),
            forensic_rules=_names(env, "KYC_FORENSIC_RULES", base.forensic_rules),
            max_age_days=_float(env, "KYC_FORENSIC_MAX_AGE_DAYS", base.max_age_days),
        )
    except PolicyError as exc:
        raise SettingsError(str(exc)) from exc


# --- reuse detection ---


def admission_queue(env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """The admission queue's URL ("" where unknown) and its receives before the DLQ (AdmissionMaxReceives)."""
    env = os.environ if env is None else env
    receives = _int(env, "KYC_ADMISSION_MAX_RECEIVES", 60)
    if receives < 1:
        raise SettingsError("KYC_ADMISSION_MAX_RECEIVES must be at least 1")
    return env.get("KYC_ADMISSION_QUEUE_URL", ""), receives


def reuse_table(env: Mapping[str, str] | None = None) -> str:
    """The reuse index table; empty where a function does not use it."""
    env = os.environ if env is None else env
    return env.get("KYC_REUSE_TABLE", "")


def review_tables(env: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """The API's ReviewsTable, ScreeningsTable and idempotency table (issue 20), as erasure reaches
    them; empty when the API is off."""
    env = os.environ if env is None else env
    return (
        env.get("KYC_REVIEWS_TABLE", ""),
        env.get("KYC_SCREENINGS_TABLE", ""),
        env.get("KYC_IDEMPOTENCY_TABLE", ""),
    )


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret_id: str
    timeout_s: float


def webhook_settings(env: Mapping[str, str] | None = None) -> WebhookSettings:
    """The optional webhook (issue 20): the customer's URL and the signing secret's ARN."""
    env = os.environ if env is None else env
    return WebhookSettings(
        url=_get(env, "KYC_WEBHOOK_URL"),
        secret_id=_get(env, "KYC_WEBHOOK_SECRET_ARN"),
        timeout_s=_float(env, "KYC_WEBHOOK_TIMEOUT_S", 10.0),
    )


def reuse_params(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Keyword arguments of ``kyc.domain.reuse.ReuseParams`` (which checks their ranges)."""
    env = os.environ if env is None else env
    return {
        "window_days": _int(env, "KYC_REUSE_WINDOW_DAYS", 7),
        "retention_days": _int(env, "KYC_REUSE_RETENTION_DAYS", 7),
        "max_distance": _int(env, "KYC_REUSE_MAX_DISTANCE", 8),
        "min_matching_frames": _int(env, "KYC_REUSE_MIN_MATCHING_FRAMES", 4),
    }


# --- face stage (docs/decision-policy.md, "Face evidence") ---
FACE_EVIDENCE_SOURCES = ("local", "rekognition", "model")


@dataclass(frozen=True)
class FaceStageSettings:
    """Where face evidence comes from, and how many sampled frames the face stage checks (0: all)."""

    source: str = "local"
    check_frames: int = 0


def face_stage(env: Mapping[str, str] | None = None) -> FaceStageSettings:
    """Unset means ``local`` (the template's default): without the stage's evidence nothing can PASS."""
    env = os.environ if env is None else env
    source = _get(env, "KYC_FACE_EVIDENCE_SOURCE", "local")
    if source not in FACE_EVIDENCE_SOURCES:
        raise SettingsError(f"KYC_FACE_EVIDENCE_SOURCE must be one of {FACE_EVIDENCE_SOURCES}: {source!r}")
    check_frames = _int(env, "KYC_FACE_CHECK_FRAMES", 0)
    if check_frames < 0:
        raise SettingsError("KYC_FACE_CHECK_FRAMES must be >= 0")
    return FaceStageSettings(source=source, check_frames=check_frames)


@dataclass(frozen=True)
class ApiSettings:
    """The screening and review API (issue 20, docs/openapi.yaml): its tables, buckets and review rules."""

    intake_bucket: str
    upload_policy: Any
    decisions_table: str
    screenings_table: str
    reviews_table: str
    idempotency_table: str
    audit_bucket: str
    review_bucket: str
    kms_key_id: str
    event_bus: str
    cors_origin: str
    retention_days: int
    review_link_seconds: int
    review_policy: Any


def api_settings(env: Mapping[str, str] | None = None) -> ApiSettings:
    from kyc.domain.review import ReviewPolicy
    from kyc.domain.upload_request import UploadPolicy

    env = os.environ if env is None else env
    edge = upload_edge(env)
    resources = stack_resources(env)
    try:
        review_policy = ReviewPolicy.from_settings(
            _float(env, "KYC_REVIEW_DEADLINE_HOURS", 24.0),
            _int(env, "KYC_REVIEW_LEASE_S", 900),
            env.get("KYC_REVIEW_HIGH_RISK_REASONS", ""),
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    return ApiSettings(
        intake_bucket=edge.intake_bucket,
        upload_policy=UploadPolicy(
            upload_prefix=edge.upload_prefix,
            max_bytes=media_limits(env).max_bytes,
            kms_key_arn=_get(env, "KYC_KMS_KEY_ID"),
            expires_in_s=edge.url_expiry_s,
        ),
        decisions_table=_get(env, "KYC_DECISIONS_TABLE"),
        screenings_table=_get(env, "KYC_SCREENINGS_TABLE"),
        reviews_table=_get(env, "KYC_REVIEWS_TABLE"),
        idempotency_table=_get(env, "KYC_IDEMPOTENCY_TABLE"),
        audit_bucket=_get(env, "KYC_AUDIT_BUCKET"),
        review_bucket=_get(env, "KYC_REVIEW_BUCKET"),
        kms_key_id=_get(env, "KYC_KMS_KEY_ID"),
        event_bus=_get(env, "KYC_DECISION_EVENT_BUS"),
        cors_origin=env.get("KYC_CORS_ORIGIN", ""),
        retention_days=resources.retention_days,
        review_link_seconds=max(60, min(3600, resources.review_link_seconds)),
        review_policy=review_policy,
    )


# --- issue 23 item 6: the scheduled verifier (docs/digests.md, docs/lineage.md) ---


@dataclass(frozen=True)
class VerifierSettings:
    """What the scheduled verifier checks and against what: the digest key it verifies with (KMS
    Verify), the genesis the auditor pinned, where each stage logs, how long each bucket keeps what a
    lineage names, and how many recent decisions get a strict lineage check per run."""

    signing_key_id: str
    genesis_sha256: str | None
    stage_log_groups: Mapping[str, str]
    retention_days: Mapping[str, float]
    intake_bucket: str
    sample_size: int
    lookback_hours: int
    settle_seconds: int = 900  # decisions younger than this wait for the next run (still settling)


def verifier_settings(env: Mapping[str, str] | None = None) -> VerifierSettings:
    import json

    env = os.environ if env is None else env
    try:
        groups = json.loads(_get(env, "KYC_VERIFIER_STAGE_LOG_GROUPS"))
        retention = json.loads(_get(env, "KYC_VERIFIER_RETENTION_DAYS"))
    except ValueError as exc:
        raise SettingsError("KYC_VERIFIER_STAGE_LOG_GROUPS and KYC_VERIFIER_RETENTION_DAYS are JSON") from exc
    if not isinstance(groups, dict) or not isinstance(retention, dict):
        raise SettingsError("KYC_VERIFIER_STAGE_LOG_GROUPS and KYC_VERIFIER_RETENTION_DAYS are JSON objects")
    sample, lookback = _int(env, "KYC_VERIFIER_SAMPLE_SIZE", 50), _int(env, "KYC_VERIFIER_LOOKBACK_HOURS", 24)
    settle = _int(env, "KYC_VERIFIER_SETTLE_SECONDS", 900)
    if sample < 0 or lookback < 1 or settle < 0:
        raise SettingsError(
            "KYC_VERIFIER_SAMPLE_SIZE >= 0, KYC_VERIFIER_LOOKBACK_HOURS >= 1, "
            "KYC_VERIFIER_SETTLE_SECONDS >= 0"
        )
    genesis = env.get("KYC_DIGEST_GENESIS_SHA256", "").strip().lower()
    if genesis and not re.fullmatch(r"[0-9a-f]{64}", genesis):
        raise SettingsError("KYC_DIGEST_GENESIS_SHA256 is a SHA-256 (64 hex digits) or empty")
    return VerifierSettings(
        signing_key_id=_get(env, "KYC_DIGEST_SIGNING_KEY_ID"),
        genesis_sha256=genesis or None,
        stage_log_groups={str(k): str(v) for k, v in groups.items()},
        retention_days={str(k): float(v) for k, v in retention.items()},
        intake_bucket=_get(env, "KYC_INTAKE_BUCKET"),
        sample_size=sample,
        lookback_hours=lookback,
        settle_seconds=settle,
    )
