"""A registered model package as a SageMaker endpoint of its own.

Each model version is deployed to its own endpoint (``<prefix>-v<package version>``): the shadow
deployment creates it beside the champion's, and a promotion only moves the production pointer
(``kyc.aws.production_pointer``) to it, so rollback never needs the old endpoint rebuilt. What an
endpoint serves is answered in one place, the deployment witness (``kyc.aws.sagemaker_model_witness``:
SageMaker's DescribeEndpoint -> EndpointConfig -> Model, then S3's verified SHA-256 of the model data),
never by anything the model's creator writes about itself (an environment variable is a claim).
"""

from __future__ import annotations

from typing import Any

from kyc.aws.clients import client
from kyc.aws.sagemaker_model_witness import SageMakerModelWitness
from kyc.domain.model_witness import why_differs, witness_differs

VARIANT = "AllTraffic"
# candidates' model data lives under <ModelDataPrefix>candidates/: the shadow and re-screen roles may
# read checksums there and nowhere else, and their witness looks nowhere else
CANDIDATES = "candidates/"


class DeploymentError(RuntimeError):
    """SageMaker refused, or an endpoint serves something else than what it was asked to."""


def endpoint_name_for(prefix: str, package_version: int) -> str:
    return f"{prefix}-v{package_version}"[:63]


def witnessed(
    endpoint_name: str,
    *,
    artefact_sha256: str,
    image_digest: str | None,
    data_bucket: str,
    data_prefix: str = "",
    sagemaker_client: Any = None,
    s3_client: Any = None,
) -> dict[str, Any]:
    """The witness's account of ``endpoint_name`` if it names exactly ``artefact_sha256`` (and
    ``image_digest`` when one is given); otherwise DeploymentError saying what it names instead."""
    account = SageMakerModelWitness(
        endpoint_name,
        data_bucket=data_bucket,
        data_prefix=data_prefix,
        sagemaker=sagemaker_client or client("sagemaker"),
        s3=s3_client or client("s3"),
    ).account(None)
    differs = witness_differs(account, artefact_sha256=artefact_sha256, image_digest=image_digest)
    if differs:
        raise DeploymentError(
            f"{endpoint_name} does not serve {artefact_sha256}"
            + (f" on image {image_digest}" if image_digest else "")
            + f": {why_differs(account, differs)}"
        )
    return account


def deploy(
    *,
    endpoint_name: str,
    image: str,
    model_data_url: str,
    artefact_sha256: str,
    role_arn: str,
    kms_key_id: str,
    data_bucket: str,
    data_prefix: str = "",
    image_digest: str | None = None,
    instance_type: str = "ml.m5.large",
    sagemaker_client: Any = None,
    s3_client: Any = None,
) -> dict[str, Any]:
    """CreateModel, CreateEndpointConfig (volume under the stack key), CreateEndpoint; idempotent
    for the same endpoint name. Returns the deployment witness's account, and refuses (DeploymentError)
    unless it names exactly ``artefact_sha256``: an endpoint of that name that already serves other
    bytes, or model data the witness cannot vouch for (no S3 SHA-256, outside ModelDataBucket)."""
    sm = sagemaker_client or client("sagemaker")
    check = {
        "artefact_sha256": artefact_sha256,
        "image_digest": image_digest,
        "data_bucket": data_bucket,
        "data_prefix": data_prefix,
        "sagemaker_client": sm,
        "s3_client": s3_client,
    }
    if _exists(sm, endpoint_name):
        return witnessed(endpoint_name, **check)
    sm.create_model(
        ModelName=endpoint_name,
        ExecutionRoleArn=role_arn,
        PrimaryContainer={
            "Image": image,
            "ModelDataSource": {"S3DataSource": _model_data_source(model_data_url)},
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
    return witnessed(endpoint_name, **check)


def endpoint_exists(endpoint_name: str, sagemaker_client: Any = None) -> bool:
    """Whether an endpoint of this name exists (in any status)."""
    return _exists(sagemaker_client or client("sagemaker"), endpoint_name)


def retire_endpoint(endpoint_name: str, sagemaker_client: Any = None) -> None:
    """DeleteEndpoint: the endpoint's instances stop costing money. Its endpoint config and model cost
    nothing and stay, so what was refused can still be described (DescribeEndpointConfig/Model)."""
    (sagemaker_client or client("sagemaker")).delete_endpoint(EndpointName=endpoint_name)


def endpoint_status(endpoint_name: str, sagemaker_client: Any = None) -> str | None:
    """SageMaker's EndpointStatus (``InService``, ``Deleting``, ...), or None when there is no such
    endpoint."""
    return _status(sagemaker_client or client("sagemaker"), endpoint_name)


def _exists(sm: Any, endpoint_name: str) -> bool:
    return _status(sm, endpoint_name) is not None


def _status(sm: Any, endpoint_name: str) -> str | None:
    try:
        described = sm.describe_endpoint(EndpointName=endpoint_name)
    except sm.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return None
        raise DeploymentError(f"{endpoint_name}: {exc}") from exc
    return str(described.get("EndpointStatus") or "Unknown")


def _model_data_source(url: str) -> dict[str, str]:
    """One model data object: an archive SageMaker unpacks (``.tar.gz``) or, so that the deployment
    witness can name the bytes the policy is bound to (issue 24), one uncompressed file."""
    compression = "Gzip" if url.endswith(".tar.gz") else "None"
    return {"S3Uri": url, "S3DataType": "S3Object", "CompressionType": compression}
