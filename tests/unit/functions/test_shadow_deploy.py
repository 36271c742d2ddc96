"""ShadowDeploy (issue 21): the approval event is a trigger, never evidence. Against moto: a package
that is not Approved, did not pass the gate, or whose policy is bound to other bytes is refused and
nothing is deployed; an approved, bound package gets its own endpoint and a shadow pointer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.model_registry import ModelRegistry
from tests.unit.functions.handler_loader import FakeContext, load_handler

SHA = "ab" * 32
GROUP = "kyc-test-candidates"
SHADOW = "/kyc/kyc-test/shadow-policy"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="audit")
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
            },
            monkeypatch,
        )
        registry = ModelRegistry(GROUP, boto3.client("sagemaker", region_name="us-east-1"))
        registry.ensure_group()
        yield {"app": app, "s3": s3, "registry": registry}


def _package(env: dict[str, Any], *, bound: str = SHA, gate: str = "true") -> str:
    policy = {
        "version": "p-1",
        "calibration": {"model": {"name": "m", "version": "1", "artefact_sha256": bound}},
    }
    env["s3"].put_object(Bucket="audit", Key=f"models/{SHA}/policy.json", Body=json.dumps(policy).encode())
    return (
        env["registry"]
        .register(
            image="img",
            model_data_url=f"s3://audit/models/{SHA}/model.tar.gz",
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
    assert model["PrimaryContainer"]["Environment"]["KYC_MODEL_SHA256"] == SHA
    shadow = boto3.client("ssm", region_name="us-east-1").get_parameter(Name=SHADOW, WithDecryption=True)
    document = json.loads(shadow["Parameter"]["Value"])
    assert document["deployment"]["endpoint_name"] == "kyc-detector-v1"
    assert document["deployment"]["model_package_arn"] == arn
    assert env["registry"].describe(arn).metadata["ShadowEndpoint"] == "kyc-detector-v1"
    assert _endpoints() == ["kyc-detector-v1"]  # the champion's endpoint is not this stack's to touch
