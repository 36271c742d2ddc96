"""The learning loop's part of the local state (issue 21): moto's SageMaker and SSM across restarts.

``kyclocal.state`` saves S3, the decisions and the logs; without this, stopping `kycscreen up` forgot the
Model Registry, the candidates' models and endpoints and the production pointer's history, so the
promoted champion and `kycscreen rollback`'s "one step back" were gone. moto has no snapshot of its own,
so this saves what the APIs describe and re-creates it through the same APIs, in order:

- Model Registry: each group, then each package version in version order (same ARN, same version),
  with its approval status, approval description (who approved, why) and customer metadata;
- models, endpoint configs, endpoints (each endpoint pointing at the same config, model and model data:
  the model data objects are saved with S3 by ``kyclocal.state``, checksum included);
- the production pointer (``PolicyParameterName``), the shadow pointer and any other parameter of the
  local account: every version in order, with its labels, its version number and its time (the history
  is the audit trail of what decided when).

What this session's start already created wins over the saved copy for the template's own endpoint and
its model (this session serves the model it was started with); the pointer's saved history wins over
the start's ``--policy`` (otherwise every restart would undo a promotion): a different ``--policy`` is
reported, and `kycscreen promote` or `kycscreen reset` changes it.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kyclocal.stack import LocalStack

LOG = logging.getLogger("kyclocal.state")
LOOP_FILE = Path("loop") / "sagemaker-ssm.json"
_VARIANT_FIELDS = ("VariantName", "ModelName", "InitialInstanceCount", "InstanceType", "InitialVariantWeight")
_LOCAL_MODEL = re.compile(r"^kyc-local-model-(\d+)$")


class LoopStateError(RuntimeError):
    """The saved registry cannot be re-created as it was (another ARN, another version)."""


# --------------------------------------------------------------------------- save
def save_loop(stack: LocalStack) -> dict[str, Any]:
    """The registry, models, endpoint configs, endpoints and pointer histories, as the APIs describe them."""
    sm, ssm = stack.client("sagemaker"), stack.client("ssm")
    groups, packages = [], []
    for group in _all(sm.list_model_package_groups, "ModelPackageGroupSummaryList"):
        name = group["ModelPackageGroupName"]
        described = sm.describe_model_package_group(ModelPackageGroupName=name)
        groups.append({"name": name, "description": described.get("ModelPackageGroupDescription")})
        for listed in _all(sm.list_model_packages, "ModelPackageSummaryList", ModelPackageGroupName=name):
            d = sm.describe_model_package(ModelPackageName=listed["ModelPackageArn"])
            packages.append(
                {
                    "group": name,
                    "arn": d["ModelPackageArn"],
                    "version": d.get("ModelPackageVersion"),
                    "description": d.get("ModelPackageDescription"),
                    "status": d.get("ModelApprovalStatus"),
                    "approval_description": d.get("ApprovalDescription"),
                    "inference": d.get("InferenceSpecification"),
                    "metadata": d.get("CustomerMetadataProperties") or {},
                    "created": d.get("CreationTime"),
                }
            )
    models = []
    for listed in _all(sm.list_models, "Models"):
        d = sm.describe_model(ModelName=listed["ModelName"])
        models.append(
            {
                "name": d["ModelName"],
                "container": d.get("PrimaryContainer"),
                "role": d.get("ExecutionRoleArn"),
            }
        )
    configs = []
    for listed in _all(sm.list_endpoint_configs, "EndpointConfigs"):
        d = sm.describe_endpoint_config(EndpointConfigName=listed["EndpointConfigName"])
        variants = [{k: v[k] for k in _VARIANT_FIELDS if k in v} for v in d.get("ProductionVariants", [])]
        configs.append(
            {"name": d["EndpointConfigName"], "variants": variants, "kms": bool(d.get("KmsKeyId"))}
        )
    endpoints = [
        {
            "name": e["EndpointName"],
            "config": sm.describe_endpoint(EndpointName=e["EndpointName"])["EndpointConfigName"],
        }
        for e in _all(sm.list_endpoints, "Endpoints")
    ]
    names = sorted(set(pointer_names(stack)) | set(_parameter_names(ssm)))
    parameters = [p for p in (_history(ssm, name) for name in names) if p]
    document = {
        "groups": groups,
        "packages": sorted(packages, key=lambda p: (p["group"], p["version"] or 0)),
        "models": models,
        "endpoint_configs": configs,
        "endpoints": endpoints,
        "parameters": parameters,
    }
    return json.loads(json.dumps(document, default=_iso))


def pointer_names(stack: Any) -> list[str]:
    """The loop's SSM parameters: the production pointer and the shadow pointer."""
    names = [stack.parameters.get("PolicyParameterName"), stack.outputs.get("ShadowPolicyParameterName")]
    return [n for n in names if n]


def _parameter_names(ssm: Any) -> list[str]:
    """Every parameter of the local account: a pointer restored from an earlier start is kept even
    when this start does not use it (`kycscreen run` without ``--policy`` after a promotion in `up`)."""
    return [p["Name"] for p in _all(ssm.describe_parameters, "Parameters")]


def _history(ssm: Any, name: str) -> dict[str, Any] | None:
    versions: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Name": name, "WithDecryption": True, "MaxResults": 50}
    try:
        while True:
            page = ssm.get_parameter_history(**kwargs)
            versions += page["Parameters"]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except ssm.exceptions.ParameterNotFound:
        return None
    kept = ("Version", "Value", "Type", "Labels", "LastModifiedDate", "Description", "DataType")
    return {
        "name": name,
        "versions": sorted(({k: v[k] for k in kept if k in v} for v in versions), key=lambda v: v["Version"]),
    }


# --------------------------------------------------------------------------- restore
def restore_loop(stack: LocalStack, document: dict[str, Any]) -> dict[str, int]:
    """Re-create a saved registry, its endpoints and the pointers in a freshly started stack."""
    sm = stack.client("sagemaker")
    for group in document.get("groups", []):
        try:
            sm.describe_model_package_group(ModelPackageGroupName=group["name"])
        except sm.exceptions.ClientError:
            sm.create_model_package_group(
                ModelPackageGroupName=group["name"],
                ModelPackageGroupDescription=group.get("description") or "",
            )
    packages = 0
    for saved in document.get("packages", []):
        packages += _restore_package(sm, saved)
    have = {m["ModelName"] for m in _all(sm.list_models, "Models")}
    for model in document.get("models", []):
        if model["name"] not in have:  # this session's own deployment keeps its model
            container = {k: v for k, v in (model.get("container") or {}).items() if v is not None}
            sm.create_model(
                ModelName=model["name"], PrimaryContainer=container, ExecutionRoleArn=model["role"]
            )
    have = {c["EndpointConfigName"] for c in _all(sm.list_endpoint_configs, "EndpointConfigs")}
    for config in document.get("endpoint_configs", []):
        if config["name"] not in have:
            extra = {"KmsKeyId": stack.kms_key_id} if config.get("kms") else {}
            sm.create_endpoint_config(
                EndpointConfigName=config["name"], ProductionVariants=config["variants"], **extra
            )
    have = {e["EndpointName"] for e in _all(sm.list_endpoints, "Endpoints")}
    endpoints = 0
    for endpoint in document.get("endpoints", []):
        if endpoint["name"] not in have:
            sm.create_endpoint(EndpointName=endpoint["name"], EndpointConfigName=endpoint["config"])
            endpoints += 1
    _continue_deployment_count(stack, document)
    versions = sum(_restore_parameter(stack, p) for p in document.get("parameters", []))
    return {"model_packages": packages, "endpoints": endpoints, "pointer_versions": versions}


def _restore_package(sm: Any, saved: dict[str, Any]) -> int:
    existing = {
        p["ModelPackageArn"]
        for p in _all(sm.list_model_packages, "ModelPackageSummaryList", ModelPackageGroupName=saved["group"])
    }
    if saved["arn"] in existing:
        return 0
    arn = sm.create_model_package(
        ModelPackageGroupName=saved["group"],
        ModelPackageDescription=saved.get("description") or "",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification=saved["inference"],
        CustomerMetadataProperties=saved.get("metadata") or {},
    )["ModelPackageArn"]
    if arn != saved["arn"]:
        raise LoopStateError(
            f"the registry re-created {saved['arn']} as {arn}: its versions are not contiguous"
        )
    if saved.get("status") != "PendingManualApproval" or saved.get("approval_description"):
        kwargs = (
            {"ApprovalDescription": saved["approval_description"]}
            if saved.get("approval_description")
            else {}
        )
        sm.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus=saved["status"],
            CustomerMetadataProperties=saved.get("metadata") or {},  # moto replaces the whole set
            **kwargs,
        )
    _pin_package_time(arn, saved.get("created"))
    return 1


def _restore_parameter(stack: LocalStack, saved: dict[str, Any]) -> int:
    """Every saved version of one pointer, in order, as the current history (this start's value goes)."""
    ssm, name = stack.client("ssm"), saved["name"]
    versions = saved.get("versions") or []
    if not versions:
        return 0
    try:
        started_with = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        started_with = None
    else:
        ssm.delete_parameter(Name=name)
    for version in versions:
        kwargs: dict[str, Any] = {
            "Name": name,
            "Value": version["Value"],
            "Type": version["Type"],
            "Overwrite": True,
        }
        if version["Type"] == "SecureString":  # the saved key died with its stack: this stack's key
            kwargs["KeyId"] = stack.kms_key_id
        if version.get("Description"):
            kwargs["Description"] = version["Description"]
        if version.get("DataType"):
            kwargs["DataType"] = version["DataType"]
        made = ssm.put_parameter(**kwargs)["Version"]
        _pin_parameter_version(name, made, version["Version"], version.get("LastModifiedDate"))
        if version.get("Labels"):
            ssm.label_parameter_version(
                Name=name, ParameterVersion=version["Version"], Labels=version["Labels"]
            )
    if started_with is not None and started_with != versions[-1]["Value"]:
        LOG.warning(
            "%s: restored the saved pointer (version %s); the policy this start was given differs and is not "
            "in force (kycscreen promote or kycscreen reset to change it)",
            name,
            versions[-1]["Version"],
        )
    return len(versions)


def _continue_deployment_count(stack: Any, document: dict[str, Any]) -> None:
    """A later deployment in this session must not take a restored model's name."""
    numbers = [
        int(m.group(1)) for m in (_LOCAL_MODEL.match(x["name"]) for x in document.get("models", [])) if m
    ]
    if numbers and hasattr(stack, "_deployments"):
        stack._deployments = max(stack._deployments, *numbers)


# --------------------------------------------------------------------------- moto's backend (times, versions)
def _pin_parameter_version(name: str, made: int, version: int, last_modified: str | None) -> None:
    """The saved version number and time: the API cannot choose either (as ``state._pin_version`` for S3)."""
    from kyclocal.stack import ACCOUNT, REGION

    try:
        from moto.ssm.models import ssm_backends

        history = ssm_backends[ACCOUNT][REGION]._parameters[name]
    except (ImportError, KeyError, AttributeError):
        return
    for parameter in history:
        if parameter.version == made:
            parameter.version = version
            if last_modified:
                parameter.last_modified_date = _naive_utc(last_modified)
            return


def _pin_package_time(arn: str, created: str | None) -> None:
    from kyclocal.stack import ACCOUNT, REGION

    if not created:
        return
    try:
        from moto.sagemaker.models import sagemaker_backends

        package = sagemaker_backends[ACCOUNT][REGION].model_packages[arn]
    except (ImportError, KeyError, AttributeError):
        return
    package.creation_time = _naive_utc(created)


def _naive_utc(text: str) -> datetime:
    """moto keeps times as naive UTC datetimes."""
    from datetime import UTC

    moment = datetime.fromisoformat(text)
    return (moment.astimezone(UTC) if moment.tzinfo else moment).replace(tzinfo=None)


# --------------------------------------------------------------------------- helpers
def _all(call: Any, field: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = call(**kwargs)
        out += page.get(field, [])
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
