"""A registered model package as a SageMaker endpoint of its own, and what an endpoint serves.

Each model version is deployed to its own endpoint (``<prefix>-v<package version>``): the shadow
deployment creates it beside the champion's, and a promotion only moves the production pointer
(``kyc.aws.production_pointer``) to it, so rollback never needs the old endpoint rebuilt. What
SageMaker says an endpoint serves (DescribeEndpoint -> EndpointConfig -> Model) names the model's
artefact and its SHA-256 (container environment ``KYC_MODEL_SHA256``), a witness the pointer's writer
cannot rewrite after the fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kyc.aws.clients import client

VARIANT = "AllTraffic"
SHA_ENV = "KYC_MODEL_SHA256"


class DeploymentError(RuntimeError):
    """SageMaker refused, or an endpoint serves something else than what it was asked to."""


@dataclass(frozen=True)
class ServedModel:
    endpoint_name: str
    endpoint_config: str
    variant: str
    model_name: str
    image: str | None
    model_data_url: str | None
    artefact_sha256: str | None


def endpoint_name_for(prefix: str, package_version: int) -> str:
    return f"{prefix}-v{package_version}"[:63]


def deploy(
    *,
    endpoint_name: str,
    image: str,
    model_data_url: str,
    artefact_sha256: str,
    role_arn: str,
    kms_key_id: str,
    instance_type: str = "ml.m5.large",
    sagemaker_client: Any = None,
) -> ServedModel:
    """CreateModel, CreateEndpointConfig (volume under the stack key), CreateEndpoint; idempotent
    for the same endpoint name, and refused if the name already serves other bytes."""
    sm = sagemaker_client or client("sagemaker")
    try:
        served = served_model(endpoint_name, sm)
    except DeploymentError:
        served = None
    if served is not None:
        if served.artefact_sha256 != artefact_sha256:
            raise DeploymentError(f"{endpoint_name} already serves {served.artefact_sha256}")
        return served
    sm.create_model(
        ModelName=endpoint_name,
        ExecutionRoleArn=role_arn,
        PrimaryContainer={
            "Image": image,
            "ModelDataSource": {"S3DataSource": _model_data_source(model_data_url)},
            "Environment": {SHA_ENV: artefact_sha256},
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=endpoint_name,
        KmsKeyId=kms_key_id,
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": endpoint_name,
                "InitialInstanceCount": 1,
                "InstanceType": instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=endpoint_name)
    return served_model(endpoint_name, sm)


def _model_data_source(url: str) -> dict[str, str]:
    """One model data object: an archive SageMaker unpacks (``.tar.gz``) or, so that the deployment
    witness can name the bytes the policy is bound to (issue 24), one uncompressed file."""
    compression = "Gzip" if url.endswith(".tar.gz") else "None"
    return {"S3Uri": url, "S3DataType": "S3Object", "CompressionType": compression}


def served_model(endpoint_name: str, sagemaker_client: Any = None, variant: str | None = None) -> ServedModel:
    """What SageMaker says ``endpoint_name`` serves (the production variant named, or the first)."""
    sm = sagemaker_client or client("sagemaker")
    try:
        endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    except sm.exceptions.ClientError as exc:
        raise DeploymentError(f"{endpoint_name}: {exc}") from exc
    variants = config.get("ProductionVariants") or []
    chosen = [v for v in variants if variant is None or v["VariantName"] == variant]
    if not chosen:
        raise DeploymentError(f"{endpoint_name} has no variant {variant!r}")
    model = sm.describe_model(ModelName=chosen[0]["ModelName"])
    container = model.get("PrimaryContainer") or {}
    return ServedModel(
        endpoint_name=endpoint_name,
        endpoint_config=endpoint["EndpointConfigName"],
        variant=chosen[0]["VariantName"],
        model_name=model["ModelName"],
        image=container.get("Image"),
        model_data_url=container.get("ModelDataUrl")
        or ((container.get("ModelDataSource") or {}).get("S3DataSource") or {}).get("S3Uri"),
        artefact_sha256=(container.get("Environment") or {}).get(SHA_ENV),
    )
