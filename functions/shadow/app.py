"""ShadowDeploy: an approved model package, deployed beside the champion; nothing decides with it yet.

Triggered by EventBridge's "SageMaker Model Package State Change" (ModelApprovalStatus Approved) for the
stack's model package group. The event is a trigger, not evidence: the package is read back from the
registry, and deployed only if a person approved it, it passed the gate and its policy is bound to its
model's SHA-256. The candidate gets an endpoint of its own (``<EndpointName>-v<version>``) and its
policy is written to the shadow parameter as a pointer document; the package records both. The
deployment counts only when the deployment witness (SageMaker + S3, ``kyc.aws.sagemaker_model_witness``)
names exactly the package's bytes (and the image its calibration names): otherwise REFUSED, no
shadow policy is written, and the endpoint, if this approval created it, is deleted (its config and
model stay for inspection; they cost nothing). The production pointer is untouched (`kycscreen
promote` moves it).

The same function retires a rejected candidate (issue 21 retire: RetireCandidateRule, the same event
with ModelApprovalStatus Rejected): what the registry says now decides which, never the event, so a
late approval event for a package rejected since does not deploy it. The rules are
``kyc.aws.candidate_retirement``'s: the endpoint the stack's shadow step created is deleted unless the
production pointer names it; the outcome is recorded on the package.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws import model_registry as reg
from kyc.aws.candidate_retirement import StackNames, retire_rejected
from kyc.aws.clients import client
from kyc.aws.model_registry import ModelRegistry
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.aws.sagemaker_deployment import (
    CANDIDATES,
    VARIANT,
    DeploymentError,
    deploy,
    endpoint_exists,
    endpoint_name_for,
    retire_endpoint,
)
from kyc.domain import retirement
from kyc.domain.promotion import bound_image_digest, pointer_document
from kyc.observability import count, log_lineage, logger, metrics, tracer

RESOURCES = settings.stack_resources()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
# where candidates' model data lives: the witness reads its S3 checksum there and nowhere else
WITNESS = settings.model_witness_settings()


class ShadowRefused(Exception):
    """The package may not be shadowed (the reason says why); nothing was deployed."""


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    import os

    arn = event["detail"]["ModelPackageArn"]
    registry = ModelRegistry(os.environ["KYC_MODEL_PACKAGE_GROUP"])
    package = registry.describe(arn)
    if package.approval_status == reg.REJECTED:
        return retire(package, registry, os.environ)
    try:
        account, version = shadow(package, registry, os.environ)
    except ShadowRefused as exc:
        count("ShadowDeployRefused")
        logger.error("shadow deployment refused", extra={"model_package_arn": arn, "reason": str(exc)})
        return {"model_package_arn": arn, "status": "REFUSED", "reason": str(exc)}
    log_lineage(
        "shadow",
        arn.rsplit("/", 1)[-1],
        model_package_arn=arn,
        endpoint_name=account["endpoint"],
        artefact_sha256=account["artefact_sha256"],
        model_witness=account,
        shadow_policy_version=version,
    )
    count("ShadowDeployed")
    return {"model_package_arn": arn, "status": "SHADOWED", "endpoint_name": account["endpoint"]}


def shadow(package: reg.RegisteredPackage, registry: ModelRegistry, env: Any) -> tuple[dict[str, Any], int]:
    """Deploy and record the shadow; returns (the deployment witness's account, shadow policy version)."""
    if package.approval_status != reg.APPROVED:
        raise ShadowRefused(f"{package.arn} is {package.approval_status}, not Approved")
    meta = package.metadata
    if meta.get(reg.GATE_PASSED) != "true":
        raise ShadowRefused("the package did not pass the gate")
    sha = meta.get(reg.MODEL_SHA256, "")
    policy = _policy(meta.get(reg.POLICY_URI, ""))
    try:
        document = pointer_document(
            policy,
            endpoint_name=endpoint_name_for(RESOURCES.endpoint_name, package.version or 0),
            variant=VARIANT,
            artefact_sha256=sha,
            model_package_arn=package.arn,
        )
    except ValueError as exc:
        raise ShadowRefused(str(exc)) from exc
    endpoint = document["deployment"]["endpoint_name"]
    created = not endpoint_exists(endpoint)
    try:
        account = deploy(
            endpoint_name=endpoint,
            image=package.image or "",
            model_data_url=package.model_data_url or "",
            artefact_sha256=sha,
            image_digest=bound_image_digest(policy),
            role_arn=env["KYC_MODEL_ROLE_ARN"],
            kms_key_id=RESOURCES.kms_key_id,
            data_bucket=WITNESS.data_bucket,
            data_prefix=WITNESS.data_prefix + CANDIDATES,
        )
    except DeploymentError as exc:
        if created:  # the endpoint this approval created serves what its witness refused: stop its cost
            _retire(endpoint)
        raise ShadowRefused(str(exc)) from exc
    version = client("ssm").put_parameter(
        Name=env["KYC_SHADOW_POLICY_PARAMETER"],
        Type="SecureString",
        KeyId=RESOURCES.kms_key_id,
        Value=json.dumps(document, sort_keys=True),
        Overwrite=True,
    )["Version"]
    registry.annotate(
        package.arn,
        {
            reg.SHADOW_ENDPOINT: account["endpoint"],
            reg.SHADOW_POLICY_PARAMETER: f"{env['KYC_SHADOW_POLICY_PARAMETER']}:{version}",
            # issue 21 retire: only an endpoint this stack created is its to delete later; a repeated
            # event (SageMaker may send several per change) finds it existing and must not disown it
            reg.SHADOW_ENDPOINT_CREATED: "true" if created or _created_before(meta, endpoint) else "false",
        },
    )
    return account, int(version)


def _created_before(meta: dict[str, str], endpoint: str) -> bool:
    return meta.get(reg.SHADOW_ENDPOINT) == endpoint and meta.get(reg.SHADOW_ENDPOINT_CREATED) == "true"


def retire(package: reg.RegisteredPackage, registry: ModelRegistry, env: Any) -> dict[str, Any]:
    """A rejected package's endpoint stops billing, or the reason it stays is logged and counted."""
    names = StackNames(
        endpoint_prefix=RESOURCES.endpoint_name,
        production_parameter=env.get("KYC_POLICY_PARAMETER", ""),
        shadow_parameter=env["KYC_SHADOW_POLICY_PARAMETER"],
        kms_key_id=RESOURCES.kms_key_id,
        data_bucket=WITNESS.data_bucket,
        data_prefix=WITNESS.data_prefix + CANDIDATES,
    )
    try:
        policy: dict[str, Any] | None = _policy(package.metadata.get(reg.POLICY_URI, ""))
    except Exception:  # no calibrated image to check: the witness still checks the bytes
        logger.warning("rejected package's policy unreadable", extra={"model_package_arn": package.arn})
        policy = None
    done = retire_rejected(package, registry, names, policy=policy)
    extra = done.to_dict()
    if done.status == retirement.REFUSED:
        count("CandidateRetireRefused")
        logger.error("rejected candidate's endpoint kept", extra=extra)
    elif done.status == retirement.RETIRED:
        count("CandidateEndpointsRetired")
        log_lineage("retire", package.arn.rsplit("/", 1)[-1], **extra)
    else:
        logger.info("rejected candidate: no endpoint to delete", extra=extra)
    return extra


def _retire(endpoint: str) -> None:
    """Delete a refused endpoint this function created (its config and model stay for inspection);
    one that existed before is not this approval's to delete. A failed delete is logged and counted
    (ShadowEndpointRetireFailures), never hides the refusal."""
    try:
        retire_endpoint(endpoint)
    except Exception:
        logger.exception("refused shadow endpoint could not be deleted", extra={"endpoint_name": endpoint})
        count("ShadowEndpointRetireFailures")
        return
    count("ShadowEndpointsRetired")
    logger.info("refused shadow endpoint deleted", extra={"endpoint_name": endpoint})


def _policy(uri: str) -> dict[str, Any]:
    if not uri.startswith(f"s3://{RESOURCES.audit_bucket}/models/"):
        raise ShadowRefused(f"the package's policy {uri!r} is not in the stack's audit bucket")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return STORE.get_json(bucket, key)
