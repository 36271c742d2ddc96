"""Rescreen: the backlog scored by a shadowed candidate; recorded decisions never change.

Two modes, the two states of RescreenStateMachine (statemachines/rescreen.asl.json):
- ``item`` (the Distributed Map's item processor): one retained submission. Its recorded frames
  (the frame manifest its lineage names) are scored on the candidate's endpoint and decided under the
  candidate's policy; the result is written to ``rescreen/<run>/items/`` in the audit bucket. Frames
  no longer retained (expired or erased) are NOT_RETAINED, not a failure.
- ``report``: every item of the run becomes the report (``kyc.domain.promotion.rescreen_report``):
  how many decisions would change and in which direction, and a review-queue entry per PASS that
  would now be REJECT; the package records the report's location and its failure count.
The decisions table is never written here: the role may not.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws import model_registry as reg
from kyc.aws.clients import client
from kyc.aws.errors import SourceMissingError
from kyc.aws.model_registry import ModelRegistry
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.aws.sagemaker_deployment import CANDIDATES
from kyc.aws.sagemaker_frame_scorer import SageMakerFrameScorer, ScoringError
from kyc.aws.sagemaker_model_witness import SageMakerModelWitness
from kyc.domain.contract import FrameImage
from kyc.domain.lineage import sha256_hex
from kyc.domain.model_witness import witness_differs
from kyc.domain.promotion import bound_image_digest, rescreen_report, split_pointer
from kyc.domain.shadow import shadow_verdict
from kyc.media.framestore import FrameReader
from kyc.observability import count, logger, metrics, tracer

RESOURCES = settings.stack_resources()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
PREFIX = "rescreen/"
_WITNESS_SETTINGS = settings.model_witness_settings()
# what SageMaker and S3 say the candidate's endpoint serves, per warm container (as score keeps it)
WITNESSES: dict[str, SageMakerModelWitness] = {}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = event["run"]
    if event.get("mode") == "report":
        return report(run)
    return rescreen_item(run, event["item"])


def _candidate(run: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(policy document, deployment) of the shadow pointer version the run was started with."""
    name = f"{os.environ['KYC_SHADOW_POLICY_PARAMETER']}:{int(run['shadow_policy_version'])}"
    value = client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    policy, deployment = split_pointer(json.loads(value))
    if deployment is None or deployment.get("model_package_arn") != run["model_package_arn"]:
        raise ValueError(f"{name} is not the shadow pointer of {run['model_package_arn']}")
    return policy, deployment


def rescreen_item(run: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    sid = item["submission_id"]
    result: dict[str, Any] = {"submission_id": sid, "recorded": item["recorded"], "candidate": None}
    try:
        policy_doc, deployment = _candidate(run)
        frames = _frames(item)
        if frames is None:
            result |= {"status": "NOT_RETAINED"}
        else:
            result |= _decide(frames, policy_doc, deployment)
    except ScoringError as exc:
        result |= {"status": "FAILED", "reason": str(exc.reason)}
    except Exception as exc:  # one item's failure is counted in the report, never hidden
        logger.exception("rescreen item failed", extra={"submission_id": sid})
        result |= {"status": "FAILED", "reason": type(exc).__name__}
    if result.get("status") == "FAILED":
        count("RescreenItemFailures")
    STORE.put_json(
        RESOURCES.audit_bucket, f"{PREFIX}{run['run_id']}/items/{sha256_hex(sid.encode())}.json", result
    )
    return {k: result.get(k) for k in ("submission_id", "status", "recorded", "candidate")}


def _frames(item: dict[str, Any]) -> list[FrameImage] | None:
    """The submission's recorded frames, checked against the hashes its lineage names."""
    try:
        lineage = STORE.get_json(RESOURCES.audit_bucket, item["lineage_key"])
        frames = lineage.get("frames") or {}
        if not frames.get("manifest_key"):
            return None  # decided without frames (nothing to score)
        manifest = STORE.get_json(RESOURCES.work_bucket, frames["manifest_key"])
    except SourceMissingError:  # expired or erased: not retained, not a failure
        return None
    reader = FrameReader(manifest, lambda key: STORE.get_bytes(RESOURCES.work_bucket, key))
    out = []
    for index in range(len(manifest["batches"])):
        for entry, data in reader.batch(index):
            if sha256_hex(data) != entry["sha256"]:
                raise ValueError(f"frame {entry['index']} does not match its manifest hash")
            out.append(FrameImage(f"{entry['index']:03d}", entry["content_type"], data))
    return out


def _decide(
    frames: list[FrameImage], policy_doc: dict[str, Any], deployment: dict[str, Any]
) -> dict[str, Any]:
    """The candidate's decision on these frames under its own policy: the model-dependent part of
    the decision (``kyc.domain.shadow.shadow_verdict``, the one live shadow traffic uses too)."""
    call = SageMakerFrameScorer(deployment["endpoint_name"]).score(frames)
    # the endpoint serves other bytes (or another image) than the shadow pointer's: the witness says so,
    # not the container; a container that reports other bytes is not believed either way
    reported = call.model.to_dict().get("artefact_sha256")
    account = _witness(deployment["endpoint_name"]).account(call.invoked_variant, reported)
    differs = witness_differs(
        account, artefact_sha256=deployment["artefact_sha256"], image_digest=bound_image_digest(policy_doc)
    )
    if reported != deployment["artefact_sha256"]:
        differs.append("model.artefact_sha256")
    verdict = shadow_verdict(
        [
            {"frame_id": s.frame_id, "p_fake": s.p_fake, "faces": s.faces, "quality": s.quality}
            for s in call.scores
        ],
        frames_sampled=len(frames),
        policy_document=policy_doc,
        deployed_sha256=deployment["artefact_sha256"],
        reported_sha256=reported,
        witness_differs=differs,
    )
    return {
        "status": "COMPARED",
        "candidate": str(verdict.decision),
        "reasons": list(verdict.reasons),
        "score": verdict.score,
        "model": call.model.to_dict(),
        "model_witness": account,
        "witness_differs": differs,
        "frames": [{"frame_id": s.frame_id, "p_fake": s.p_fake} for s in call.scores],  # shadow scores
    }


def _witness(endpoint_name: str) -> SageMakerModelWitness:
    if endpoint_name not in WITNESSES:
        WITNESSES[endpoint_name] = SageMakerModelWitness(
            endpoint_name,
            data_bucket=_WITNESS_SETTINGS.data_bucket,
            data_prefix=_WITNESS_SETTINGS.data_prefix + CANDIDATES,
            ttl_s=_WITNESS_SETTINGS.ttl_s,
        )
    return WITNESSES[endpoint_name]


def report(run: dict[str, Any]) -> dict[str, Any]:
    s3 = client("s3")
    prefix = f"{PREFIX}{run['run_id']}/items/"
    items = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=RESOURCES.audit_bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            items.append(STORE.get_json(RESOURCES.audit_bucket, obj["Key"]))
    retained = [i for i in items if i.get("status") != "NOT_RETAINED"]
    document = rescreen_report(retained) | {
        "run_id": run["run_id"],
        "model_package_arn": run["model_package_arn"],
        "shadow_policy_version": run["shadow_policy_version"],
        "not_retained": len(items) - len(retained),
        "manifest": run.get("manifest"),
    }
    missing = int(run.get("expected", len(items))) - len(items)
    if missing > 0:  # items that never wrote a result (the Map tolerated their failure): failures too
        document["failed"] += missing
        document["missing"] = missing
    key = f"{PREFIX}{run['run_id']}/report.json"
    STORE.put_json(RESOURCES.audit_bucket, key, document)
    uri = f"s3://{RESOURCES.audit_bucket}/{key}"
    ModelRegistry(os.environ["KYC_MODEL_PACKAGE_GROUP"]).annotate(
        run["model_package_arn"], {reg.RESCREEN_REPORT_URI: uri, reg.RESCREEN_FAILED: str(document["failed"])}
    )
    count("RescreenFailures", value=document["failed"])
    if document["compared"]:
        count(
            "ShadowDisagreementPercent",
            value=100.0 * document["changed"] / document["compared"],
            unit="Percent",
        )
    return {"report_uri": uri} | {k: document[k] for k in ("submissions", "compared", "changed", "failed")}
