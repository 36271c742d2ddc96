"""ShadowDeploy (issue 21): the approval event is a trigger, never evidence. Against moto: a package
that is not Approved, did not pass the gate, or whose policy is bound to other bytes is refused and
nothing is deployed; an approved, bound package gets its own endpoint and a shadow pointer, but only
when the deployment witness (SageMaker + S3, issue 24) names exactly its bytes and calibrated image."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.model_registry import ModelRegistry
from tests.unit.functions.handler_loader import FakeContext, load_handler

MODEL = b"the candidate's model bytes"
SHA = hashlib.sha256(MODEL).hexdigest()  # hashlib oracle: the package's bytes
DATA = "model-data"
GROUP = "kyc-test-candidates"
SHADOW = "/kyc/kyc-test/shadow-policy"
PRODUCTION = "/kyc/kyc-test/policy"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="audit")
        s3.create_bucket(Bucket=DATA)
        key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        app = load_handler(
            "shadow",
            {
                "KYC_ENDPOINT_NAME": "kyc-detector",
                "KYC_AUDIT_BUCKET": "audit",
                "KYC_KMS_KEY_ID": key,
                "KYC_MODEL_PACKAGE_GROUP": GROUP,
                "KYC_MODEL_ROLE_ARN": "arn:aws:iam::123456789012:role/model",
                "KYC_SHADOW_POLICY_PARAMETER": SHADOW,
                "KYC_POLICY_PARAMETER": PRODUCTION,
                "KYC_MODEL_DATA_BUCKET": DATA,
                "KYC_MODEL_DATA_PREFIX": "",
            },
            monkeypatch,
        )
        registry = ModelRegistry(GROUP, boto3.client("sagemaker", region_name="us-east-1"))
        registry.ensure_group()
        yield {"app": app, "s3": s3, "registry": registry, "key": key}


def _package(
    env: dict[str, Any],
    *,
    bound: str = SHA,
    gate: str = "true",
    data: bytes = MODEL,
    image: str = "img@sha256:" + "1" * 64,
    image_digest: str | None = None,
) -> str:
    model = {"name": "m", "version": "1", "artefact_sha256": bound}
    model |= {"image_digest": image_digest} if image_digest else {}
    policy = {"version": "p-1", "calibration": {"model": model}}
    env["s3"].put_object(Bucket="audit", Key=f"models/{SHA}/policy.json", Body=json.dumps(policy).encode())
    key = f"candidates/{SHA}/model.onnx"  # the model data, with the SHA-256 S3 verifies at upload
    env["s3"].put_object(Bucket=DATA, Key=key, Body=data, ChecksumAlgorithm="SHA256")
    return (
        env["registry"]
        .register(
            image=image,
            model_data_url=f"s3://{DATA}/{key}",
            description="candidate",
            metadata={
                "ModelSha256": SHA,
                "PolicyBoundToSha256": bound,
                "GatePassed": gate,
                "PolicyS3Uri": f"s3://audit/models/{SHA}/policy.json",
            },
        )
        .arn
    )


def _event(arn: str) -> dict[str, Any]:
    return {"detail-type": "SageMaker Model Package State Change", "detail": {"ModelPackageArn": arn}}


def _endpoints() -> list[str]:
    return [
        e["EndpointName"]
        for e in boto3.client("sagemaker", region_name="us-east-1").list_endpoints()["Endpoints"]
    ]


@pytest.mark.parametrize(
    ("approve", "bound", "gate", "reason"),
    [
        (False, SHA, "true", "not Approved"),  # an event claiming approval does not make it so
        (True, SHA, "false", "gate"),
        (True, "cd" * 32, "true", "bound"),
    ],
)
def test_a_package_that_skipped_a_step_is_refused_and_nothing_is_deployed(
    env: dict[str, Any], approve: bool, bound: str, gate: str, reason: str
) -> None:
    arn = _package(env, bound=bound, gate=gate)
    if approve:
        env["registry"].approve(arn, approver="alice", note="n")
    result = env["app"].lambda_handler(_event(arn), FakeContext())
    assert result["status"] == "REFUSED" and reason in result["reason"]
    assert _endpoints() == []
    assert "ShadowEndpoint" not in env["registry"].describe(arn).metadata


def test_an_approved_bound_package_gets_its_own_endpoint_and_a_shadow_pointer(env: dict[str, Any]) -> None:
    arn = _package(env)
    env["registry"].approve(arn, approver="alice", note="n")
    result = env["app"].lambda_handler(_event(arn), FakeContext())
    assert result == {"model_package_arn": arn, "status": "SHADOWED", "endpoint_name": "kyc-detector-v1"}
    sm = boto3.client("sagemaker", region_name="us-east-1")
    model = sm.describe_model(ModelName="kyc-detector-v1")
    source = model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
    assert source["S3Uri"] == f"s3://{DATA}/candidates/{SHA}/model.onnx"
    assert "Environment" not in model["PrimaryContainer"]  # no self-declared hash: the witness is S3's
    shadow = boto3.client("ssm", region_name="us-east-1").get_parameter(Name=SHADOW, WithDecryption=True)
    document = json.loads(shadow["Parameter"]["Value"])
    assert document["deployment"]["endpoint_name"] == "kyc-detector-v1"
    assert document["deployment"]["model_package_arn"] == arn
    assert env["registry"].describe(arn).metadata["ShadowEndpoint"] == "kyc-detector-v1"
    assert _endpoints() == ["kyc-detector-v1"]  # the champion's endpoint is not this stack's to touch


@pytest.mark.parametrize(
    ("data", "image", "image_digest", "said"),
    [
        # the registry names the package's hash, the object under it holds other bytes
        (b"other weights", "img@sha256:" + "1" * 64, None, "SageMaker and S3 say the model data is "),
        # the calibration names an image digest, the package deploys a tag nobody resolved
        (MODEL, "img:latest", "sha256:" + "1" * 64, "is a tag SageMaker reports no digest for"),
        # the calibration names one image digest, the package deploys another
        (MODEL, "img@sha256:" + "2" * 64, "sha256:" + "1" * 64, "the serving image is sha256:" + "2" * 64),
    ],
)
def test_a_deployment_the_witness_does_not_vouch_for_is_refused_and_not_shadowed(
    env: dict[str, Any], data: bytes, image: str, image_digest: str | None, said: str
) -> None:
    arn = _package(env, data=data, image=image, image_digest=image_digest)
    env["registry"].approve(arn, approver="alice", note="n")
    result = env["app"].lambda_handler(_event(arn), FakeContext())
    assert result["status"] == "REFUSED", result
    assert said in result["reason"] and f"does not serve {SHA}" in result["reason"]
    if data != MODEL:
        assert hashlib.sha256(data).hexdigest() in result["reason"]  # what S3 says, by hashlib's oracle
    ssm = boto3.client("ssm", region_name="us-east-1")
    assert ssm.describe_parameters()["Parameters"] == []  # no shadow pointer: nothing decides with it
    assert "ShadowEndpoint" not in env["registry"].describe(arn).metadata


def test_an_image_bound_by_digest_is_shadowed(env: dict[str, Any]) -> None:
    arn = _package(env, image="img@sha256:" + "1" * 64, image_digest="sha256:" + "1" * 64)
    env["registry"].approve(arn, approver="alice", note="n")
    assert env["app"].lambda_handler(_event(arn), FakeContext())["status"] == "SHADOWED"


def test_a_refused_deployment_stops_costing_and_keeps_what_was_refused(env: dict[str, Any]) -> None:
    """(c) The endpoint the refused approval created is deleted (no instance keeps running); its endpoint
    config and model stay, so what was refused can still be described. An endpoint of that name that
    existed before the approval is not this approval's to delete."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    arn = _package(env, data=b"other weights")  # the witness names other bytes than the package's
    env["registry"].approve(arn, approver="alice", note="n")
    result = env["app"].lambda_handler(_event(arn), FakeContext())
    assert result["status"] == "REFUSED", result
    assert _endpoints() == []  # nothing left running
    config = sm.describe_endpoint_config(EndpointConfigName="kyc-detector-v1")
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"].endswith("/model.onnx")

    # someone else's endpoint under the candidate's name, serving other bytes: refused, and left alone
    sm.create_endpoint(EndpointName="kyc-detector-v1", EndpointConfigName="kyc-detector-v1")
    again = env["app"].lambda_handler(_event(arn), FakeContext())
    assert again["status"] == "REFUSED", again
    assert _endpoints() == ["kyc-detector-v1"]


# --- issue 21 retire: a rejected candidate's endpoint stops billing ------------------------------------


def _described(name: str) -> dict[str, Any] | None:
    """SageMaker's own answer (the oracle), not the function's record: None when there is no endpoint."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    try:
        return sm.describe_endpoint(EndpointName=name)
    except sm.exceptions.ClientError:
        return None


def _shadowed(env: dict[str, Any]) -> str:
    arn = _package(env)
    env["registry"].approve(arn, approver="alice", note="n")
    assert env["app"].lambda_handler(_event(arn), FakeContext())["status"] == "SHADOWED"
    assert _described("kyc-detector-v1") is not None
    return arn


def _reject(env: dict[str, Any], arn: str) -> dict[str, Any]:
    env["registry"].reject(arn, approver="bob", note="worse on replays")
    return env["app"].lambda_handler(_event(arn), FakeContext())


def _versions(name: str) -> list[dict[str, Any]]:
    ssm = boto3.client("ssm", region_name="us-east-1")
    history = ssm.get_parameter_history(Name=name, WithDecryption=True)["Parameters"]
    return [json.loads(p["Value"]) for p in history]


def test_a_rejected_shadowed_candidate_loses_its_endpoint_and_its_shadow_traffic(env: dict[str, Any]) -> None:
    """The endpoint the shadow step created is deleted (DescribeEndpoint: gone), its config and model stay
    for audit, the shadow pointer that named it is cleared first, and the package records what happened;
    a repeated event is a no-op (no second write anywhere)."""
    arn = _shadowed(env)
    result = _reject(env, arn)
    assert result["status"] == "RETIRED", result
    assert _described("kyc-detector-v1") is None
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.describe_endpoint_config(EndpointConfigName="kyc-detector-v1")["ProductionVariants"]
    assert sm.describe_model(ModelName="kyc-detector-v1")["PrimaryContainer"]
    versions = _versions(SHADOW)
    assert len(versions) == 2 and "deployment" not in versions[-1]
    assert versions[-1] == {"cleared_by": "reject", "rejected_model_package_arn": arn}
    package = env["registry"].describe(arn)
    assert package.approval_status == "Rejected"
    assert package.approval_description == "rejected by bob: worse on replays"
    assert package.metadata["RetiredEndpoint"] == "kyc-detector-v1"
    assert package.metadata["RetireOutcome"] == "RETIRED"
    assert package.metadata["RetireClearedShadowPointer"] == f"{SHADOW}:2"

    again = _reject(env, arn)
    assert again["status"] == "ALREADY_GONE", again
    assert env["registry"].describe(arn).metadata == package.metadata  # nothing written again
    assert len(_versions(SHADOW)) == 2


def test_the_candidate_production_serves_is_never_deleted(env: dict[str, Any]) -> None:
    arn = _shadowed(env)
    deployment = {"endpoint_name": "kyc-detector-v1", "model_package_arn": arn}
    production = {"version": "p", "deployment": deployment}
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=PRODUCTION, Type="SecureString", KeyId=env["key"], Value=json.dumps(production)
    )
    result = _reject(env, arn)
    assert result["status"] == "REFUSED" and "serves production" in result["reason"], result
    assert _described("kyc-detector-v1")["EndpointStatus"] == "InService"
    assert "serves production" in env["registry"].describe(arn).metadata["RetireRefused"]
    assert len(_versions(SHADOW)) == 1  # refused: the shadow pointer is not touched either


def test_an_endpoint_the_stack_adopted_is_not_its_to_delete(env: dict[str, Any]) -> None:
    """Someone deployed the candidate's bytes under its name before the approval: the shadow step adopted
    it (the witness names the package's bytes) but did not create it, so the rejection leaves it."""
    from kyc.aws.sagemaker_deployment import deploy

    arn = _package(env)
    deploy(
        endpoint_name="kyc-detector-v1",
        image="img@sha256:" + "1" * 64,
        model_data_url=f"s3://{DATA}/candidates/{SHA}/model.onnx",
        artefact_sha256=SHA,
        role_arn="arn:aws:iam::123456789012:role/model",
        kms_key_id=env["key"],
        data_bucket=DATA,
        data_prefix="candidates/",
    )
    env["registry"].approve(arn, approver="alice", note="n")
    assert env["app"].lambda_handler(_event(arn), FakeContext())["status"] == "SHADOWED"
    assert env["registry"].describe(arn).metadata["ShadowEndpointCreated"] == "false"
    result = _reject(env, arn)
    assert result["status"] == "REFUSED" and "adopted" in result["reason"], result
    assert _described("kyc-detector-v1") is not None


def test_a_rejection_before_approval_deploys_and_deletes_nothing(env: dict[str, Any]) -> None:
    arn = _package(env)
    result = _reject(env, arn)
    assert result["status"] == "NOTHING_TO_RETIRE", result
    assert _endpoints() == []
    assert "RetiredEndpoint" not in env["registry"].describe(arn).metadata


def test_a_production_pointer_that_cannot_be_read_deletes_nothing(env: dict[str, Any]) -> None:
    """What serves production cannot be told (a deployment block without an endpoint): fail closed."""
    arn = _shadowed(env)
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=PRODUCTION, Type="SecureString", KeyId=env["key"], Value=json.dumps({"deployment": {"x": 1}})
    )
    result = _reject(env, arn)
    assert result["status"] == "REFUSED" and "cannot be read" in result["reason"], result
    assert _described("kyc-detector-v1") is not None


def test_a_late_approval_event_for_a_rejected_package_deploys_nothing(env: dict[str, Any]) -> None:
    """The event is a trigger, not evidence: an 'Approved' event delivered after the rejection (SageMaker
    may send several events per change) reads Rejected from the registry and deploys nothing."""
    arn = _package(env)
    env["registry"].approve(arn, approver="alice", note="n")
    env["registry"].reject(arn, approver="bob", note="changed my mind")
    approved_event = _event(arn) | {"detail": {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}}
    result = env["app"].lambda_handler(approved_event, FakeContext())
    assert result["status"] == "NOTHING_TO_RETIRE", result
    assert _endpoints() == []
    ssm = boto3.client("ssm", region_name="us-east-1")
    assert ssm.describe_parameters()["Parameters"] == []  # no shadow pointer either


def test_a_repeated_approval_event_does_not_disown_the_stacks_endpoint(env: dict[str, Any]) -> None:
    """SageMaker may send several events per change: the second finds the endpoint existing, and the
    package must still say the stack created it, or the rejection would leave it billing."""
    arn = _shadowed(env)
    assert env["app"].lambda_handler(_event(arn), FakeContext())["status"] == "SHADOWED"
    assert env["registry"].describe(arn).metadata["ShadowEndpointCreated"] == "true"
    assert _reject(env, arn)["status"] == "RETIRED"
    assert _described("kyc-detector-v1") is None
