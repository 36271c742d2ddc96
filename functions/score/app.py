"""ScoreFrames: one batch of frames to the endpoint; a batch that fails for good is reported, not hidden."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.s3_object_store import S3ObjectStore, canonical_json
from kyc.aws.sagemaker_deployment import CANDIDATES
from kyc.aws.sagemaker_frame_scorer import SageMakerFrameScorer, ScoringError
from kyc.aws.sagemaker_model_witness import SageMakerModelWitness
from kyc.aws.shadow_traffic import (
    ShadowPointerSource,
    ShadowScorer,
    shadow_endpoint_witness,
    shadow_time_needed_s,
)
from kyc.aws.ssm_policy_source import PolicyOverrideProvider
from kyc.domain.contract import FrameImage
from kyc.domain.lineage import sha256_hex
from kyc.domain.promotion import split_pointer
from kyc.domain.reasons import ReasonCode
from kyc.domain.shadow import shadow_batch_key
from kyc.media.framestore import FrameReader
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

RESOURCES = settings.stack_resources()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
SCORERS = {RESOURCES.endpoint_name: SageMakerFrameScorer(RESOURCES.endpoint_name)}
DEPLOYED_ARTEFACT_SHA256 = settings.deployed_model_artefact_sha256()
_WITNESS_SETTINGS = settings.model_witness_settings()
# what SageMaker and S3 say each endpoint serves: cached per warm container (kyc.aws.sagemaker_model_witness)
WITNESSES: dict[str, SageMakerModelWitness] = {}
if not _WITNESS_SETTINGS.data_bucket:  # issue 24: say so once per cold start, before any decision is held
    logger.warning(
        "ModelDataBucket is not set: the deployment witness cannot name the model's bytes, so no calibration "
        "binds and every scored upload is REVIEW MODEL_NOT_CALIBRATED (docs/deployment.md, upgrading)",
        extra={"endpoint_name": RESOURCES.endpoint_name},
    )
# issue 21: the production pointer (the policy parameter) may name the endpoint that serves its model
POINTER_SOURCE = PolicyOverrideProvider() if RESOURCES.policy_parameter else None
# issue 21: live shadow traffic, while the shadow pointer names a candidate (kyc.aws.shadow_traffic)
_SHADOW = settings.shadow_traffic()
SHADOW_SOURCE = (
    ShadowPointerSource(_SHADOW.parameter, RESOURCES.policy_cache_seconds) if _SHADOW.parameter else None
)
SHADOW_SCORER = (
    ShadowScorer(_SHADOW.timeout_s, lambda s: _score_dict(s), witness=lambda e: _shadow_witness(e))
    if _SHADOW.parameter
    else None
)
# the shadow endpoints' deployment witnesses: the same witness, its own bounded clients, cached the same way
SHADOW_WITNESSES: dict[str, SageMakerModelWitness] = {}


@logger.inject_lambda_context(correlation_id_path="submission_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("score")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sid, batch_index = event["submission_id"], int(event["batch_index"])
    manifest_bytes = STORE.get_bytes(RESOURCES.work_bucket, event["manifest_key"])
    frames = _load_batch(json.loads(manifest_bytes), batch_index)
    result_key = f"scores/{sid}/batch-{batch_index:03d}.json"
    endpoint_name, deployed_sha256, pointer = _endpoint()
    lineage = {
        "execution_arn": event.get("execution_arn"),
        "batch_index": batch_index,
        "endpoint_name": endpoint_name,
        "inputs": {
            "manifest_sha256": sha256_hex(manifest_bytes),
            "frames": [sha256_hex(f.data) for f in frames],
        },
    }
    try:
        call = _scorer(endpoint_name).score(frames)
    except ScoringError as exc:
        count("EndpointErrors", reason_code=str(exc.reason))
        document = {
            "batch_index": batch_index,
            "status": "FAILED",
            "reason": str(exc.reason),
            "attempts": exc.attempts,
            "frame_ids": [f.frame_id for f in frames],
        }
        digest = STORE.put_json(RESOURCES.work_bucket, result_key, document)
        log_lineage(
            "score",
            sid,
            **lineage,
            outputs={
                "status": "FAILED",
                "reason": str(exc.reason),
                "result_key": result_key,
                "result_sha256": digest,
            },
        )
        return _result(batch_index, "FAILED", result_key, 0, str(exc.reason))
    count("FramesScored", value=len(call.scores))
    count("EndpointLatency", value=call.latency_ms, unit="Milliseconds")
    document = {
        "batch_index": batch_index,
        "status": "SCORED",
        "model": _model_record(call.model.to_dict(), deployed_sha256),
        # what SageMaker and S3 say answered: the container does not write this (docs/model-contract.md)
        "model_witness": _witness(endpoint_name).account(call.invoked_variant, call.model.artefact_sha256),
        "endpoint_name": endpoint_name,
        "pointer": pointer,
        "invoked_variant": call.invoked_variant,
        "latency_ms": round(call.latency_ms, 3),
        "attempts": call.attempts,
        "request_sha256": call.request_sha256,
        "response_sha256": call.response_sha256,
        "frames": [_score_dict(s) for s in call.scores],
    }
    body = canonical_json(document)
    STORE.put_bytes(RESOURCES.work_bucket, result_key, body, "application/json")
    # after the champion's scores are safe, and only if the time left covers it; never raises
    shadow = _shadow(sid, batch_index, frames, context.get_remaining_time_in_millis() / 1000.0)
    lineage["inputs"]["request_sha256"] = call.request_sha256
    log_lineage(
        "score",
        sid,
        **lineage,
        outputs={
            "status": "SCORED",
            "response_sha256": call.response_sha256,
            "result_key": result_key,
            "result_sha256": sha256_hex(body),
        },
        model=document["model"],
        model_witness=document["model_witness"],
        invoked_variant=call.invoked_variant,
        shadow=shadow,
    )
    return _result(batch_index, "SCORED", result_key, len(call.scores), None, shadow)


def _shadow(
    sid: str, batch_index: int, frames: list[FrameImage], remaining_s: float
) -> dict[str, Any] | None:
    """Issue 21 live shadow traffic: the same frames on the shadowed candidate's endpoint, written
    beside the champion's scores for decide to record. Decides nothing and never fails the batch:
    a failure anywhere (the pointer, the endpoint, the write) is counted and logged, and the call is
    bounded (kyc.aws.shadow_traffic.shadow_worst_case_s). It is SKIPPED (recorded, ShadowSkipped)
    when ``remaining_s``, the invocation's time left after the champion, cannot cover that bound
    plus a margin: a shadow must never time out the invocation that holds the champion's scores."""
    if SHADOW_SOURCE is None or SHADOW_SCORER is None:
        return None
    try:
        pointer = SHADOW_SOURCE.current()
        if pointer is None:
            return None
        if remaining_s < shadow_time_needed_s(SHADOW_SCORER.timeout_s):
            document = SHADOW_SCORER.skipped(pointer, batch_index, remaining_s)
        else:
            document = SHADOW_SCORER.score(pointer, batch_index, frames)
        key = shadow_batch_key(sid, batch_index)
        digest = STORE.put_json(RESOURCES.work_bucket, key, document)
    except Exception as exc:  # the shadow's failure is its own, never the decision's
        logger.exception("shadow scoring failed", extra={"batch_index": batch_index})
        count("ShadowFailures")
        return {"status": "FAILED", "reason": type(exc).__name__}
    if document["status"] == "SKIPPED":
        count("ShadowSkipped")
        logger.warning("shadow skipped: not enough time left", extra={k: document[k] for k in _SKIP_FIELDS})
    elif document["status"] != "SCORED":
        count("ShadowFailures")
    else:
        count("ShadowEndpointLatency", value=document["latency_ms"], unit="Milliseconds")
    return {k: document.get(k) for k in ("status", "reason", "endpoint_name", "latency_ms")} | {
        "result_key": key,
        "result_sha256": digest,
        "pointer_version": pointer.version,
    }


_SKIP_FIELDS = ("batch_index", "remaining_s", "needed_s")


def _shadow_witness(endpoint_name: str) -> SageMakerModelWitness:
    """The deployment witness of a shadow endpoint: candidates' model data only (the shadow deployment
    and the re-screen read the same prefix), bounded clients (kyc.aws.shadow_traffic)."""
    if endpoint_name not in SHADOW_WITNESSES:
        SHADOW_WITNESSES[endpoint_name] = shadow_endpoint_witness(
            endpoint_name,
            data_bucket=_WITNESS_SETTINGS.data_bucket,
            data_prefix=_WITNESS_SETTINGS.data_prefix + CANDIDATES,
            ttl_s=_WITNESS_SETTINGS.ttl_s,
        )
    return SHADOW_WITNESSES[endpoint_name]


def _model_record(reported: dict[str, str], deployed_sha256: str | None) -> dict[str, str]:
    """The model as the endpoint reported it, plus the artefact hash the deployment recorded
    (``ModelArtefactSha256``, or the production pointer's) when there is one: the calibration
    binding compares both."""
    if deployed_sha256:
        return reported | {"deployed_artefact_sha256": deployed_sha256}
    return reported


def _endpoint() -> tuple[str, str | None, dict[str, Any] | None]:
    """(endpoint, deployed artefact hash, pointer version) this batch is scored on.

    Without a production pointer: the template's endpoint. With one (``kycscreen promote``): the
    endpoint it names, cached as decide caches the same parameter, so the two switch together."""
    if POINTER_SOURCE is None:
        return RESOURCES.endpoint_name, DEPLOYED_ARTEFACT_SHA256, None
    fetched = POINTER_SOURCE.get(RESOURCES.policy_parameter, max_age=RESOURCES.policy_cache_seconds)
    _, deployment = split_pointer(json.loads(fetched["document"]))
    if deployment is None:
        return RESOURCES.endpoint_name, DEPLOYED_ARTEFACT_SHA256, None
    pointer = {"parameter": fetched["parameter"], "parameter_version": fetched["parameter_version"]}
    return deployment["endpoint_name"], deployment.get("artefact_sha256"), pointer | deployment


def _scorer(endpoint_name: str) -> SageMakerFrameScorer:
    if endpoint_name not in SCORERS:
        SCORERS[endpoint_name] = SageMakerFrameScorer(endpoint_name)
    return SCORERS[endpoint_name]


def _witness(endpoint_name: str) -> SageMakerModelWitness:
    """One witness per endpoint the pointer may name (its cache follows that endpoint's deployments)."""
    if endpoint_name not in WITNESSES:
        WITNESSES[endpoint_name] = SageMakerModelWitness(
            endpoint_name,
            data_bucket=_WITNESS_SETTINGS.data_bucket,
            data_prefix=_WITNESS_SETTINGS.data_prefix,
            ttl_s=_WITNESS_SETTINGS.ttl_s,
        )
    return WITNESSES[endpoint_name]


def _result(
    batch_index: int,
    status: str,
    result_key: str,
    frames_scored: int,
    reason: str | None,
    shadow: dict[str, Any] | None = None,
) -> dict:
    """What goes back into Step Functions state: a pointer and a count, never scores or frames
    (``shadow``: where the live shadow scores of this batch are, when a candidate is shadowed)."""
    return {
        "batch_index": batch_index,
        "status": status,
        "result_key": result_key,
        "frames_scored": frames_scored,
        "reason": reason,
        "shadow": {k: shadow[k] for k in ("status", "result_key")}
        if shadow and shadow.get("result_key")
        else None,
    }


def _load_batch(manifest: dict[str, Any], batch_index: int) -> list[FrameImage]:
    """Fetch the batch's frames (one object: kyc.media.framestore) and check each against its hash."""
    reader = FrameReader(manifest, lambda key: STORE.get_bytes(RESOURCES.work_bucket, key))
    frames = []
    for entry, data in reader.batch(batch_index):
        if sha256_hex(data) != entry["sha256"]:
            raise FrameIntegrityError(f"frame {entry['index']} does not match its manifest hash")
        frames.append(
            FrameImage(frame_id=frame_id(entry["index"]), content_type=entry["content_type"], data=data)
        )
    return frames


def frame_id(index: int) -> str:
    return f"{index:03d}"


def _score_dict(score: Any) -> dict[str, Any]:
    return {
        "frame_id": score.frame_id,
        "p_fake": score.p_fake,
        "faces": [{"box": list(f.box), "confidence": f.confidence, "p_fake": f.p_fake} for f in score.faces],
        "quality": list(score.quality),
    }


class FrameIntegrityError(Exception):
    reason = ReasonCode.SOURCE_CHANGED
