"""Issue 21 adapters against moto: the Model Registry package, the production pointer's history, and
the local model server serving what SageMaker says an endpoint serves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.model_registry import ModelRegistry, RegistryError
from kyc.aws.production_pointer import PointerError, ProductionPointer
from kyc.aws.sagemaker_deployment import DeploymentError, deploy
from kyc.aws.sagemaker_frame_scorer import SageMakerFrameScorer, ScoringError
from kyclocal.endpoints import CONFIG_NAME, MODEL_FILE, LocalEndpoints
from kycserve import load_model, start_server, stop
from tests.unit.serving.helpers import solid_frame, write_onnx_config

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield {name: boto3.client(name, region_name=REGION) for name in ("sagemaker", "ssm", "s3", "kms")}


def _register(registry: ModelRegistry, sha: str = "ab" * 32) -> Any:
    registry.ensure_group()
    return registry.register(
        image="img:1",
        model_data_url="s3://b/models/x/model.tar.gz",
        description="candidate",
        metadata={"ModelSha256": sha, "PolicyBoundToSha256": sha, "GatePassed": "true"},
    )


def test_a_registered_package_waits_for_a_person_and_keeps_every_step_it_records(aws) -> None:
    registry = ModelRegistry("kyc-candidates", aws["sagemaker"])
    first, second = _register(registry), _register(registry, "cd" * 32)
    assert (first.version, second.version) == (1, 2)  # versions in the group, in order
    assert first.approval_status == "PendingManualApproval"
    approved = registry.approve(first.arn, approver="alice", note="read the report")
    assert approved.approval_status == "Approved" and "alice" in approved.approval_description
    with pytest.raises(RegistryError, match="not PendingManualApproval"):
        registry.approve(first.arn, approver="bob", note="twice")
    annotated = registry.annotate(first.arn, {"ShadowEndpoint": "kyc-v1"})
    annotated = registry.annotate(first.arn, {"RescreenFailed": "0"})
    # every earlier field survives a later annotation (moto replaces, AWS merges: we always send all)
    assert annotated.metadata == {
        "ModelSha256": "ab" * 32,
        "PolicyBoundToSha256": "ab" * 32,
        "GatePassed": "true",
        "ShadowEndpoint": "kyc-v1",
        "RescreenFailed": "0",
    }
    assert annotated.approval_status == "Approved"
    assert registry.describe(second.arn).approval_status == "PendingManualApproval"


def test_the_pointer_moves_one_version_at_a_time_and_rolls_back_from_ssm_history(aws) -> None:
    key = aws["kms"].create_key()["KeyMetadata"]["Arn"]
    pointer = ProductionPointer("/kyc/test/policy", key, aws["ssm"])
    assert pointer.current() is None
    v1 = pointer.put({"version": "champion"}, expected_version=None)
    v2 = pointer.put({"version": "candidate"}, expected_version=v1.version)
    with pytest.raises(PointerError, match="moved"):
        pointer.put({"version": "stale plan"}, expected_version=v1.version)
    assert pointer.previous().document == {"version": "champion"}
    back = pointer.put(pointer.previous().document, expected_version=v2.version)
    assert (back.version, pointer.current().document) == (3, {"version": "champion"})
    raw = aws["ssm"].get_parameter(Name="/kyc/test/policy")["Parameter"]
    assert raw["Type"] == "SecureString"


def test_the_local_server_serves_what_sagemaker_says_the_endpoint_serves(aws, tmp_path: Path) -> None:
    (tmp_path / "red").mkdir()
    (tmp_path / "blue").mkdir()
    red_config = write_onnx_config(tmp_path / "red", weight_red=20.0, bias=-10.0)  # red frame ~1
    blue_config = write_onnx_config(tmp_path / "blue", weight_red=-20.0, bias=10.0)  # red frame ~0
    sha = {
        n: hashlib.sha256((c.parent / json.loads(c.read_text())["path"]).read_bytes()).hexdigest()
        for n, c in (("red", red_config), ("blue", blue_config))
    }
    aws["s3"].create_bucket(Bucket="models")
    # the candidate's model file, uncompressed, with the SHA-256 S3 verifies (as kyclocal.loop uploads it)
    blue_model = blue_config.parent / json.loads(blue_config.read_text())["path"]
    aws["s3"].put_object(
        Bucket="models", Key=f"blue/{MODEL_FILE}", Body=blue_model.read_bytes(), ChecksumAlgorithm="SHA256"
    )
    config = json.loads(blue_config.read_text()) | {"path": MODEL_FILE}
    aws["s3"].put_object(Bucket="models", Key=f"blue/{CONFIG_NAME}", Body=json.dumps(config).encode())
    common = {
        "endpoint_name": "kyc-v2",
        "image": "img@sha256:" + "1" * 64,
        "model_data_url": f"s3://models/blue/{MODEL_FILE}",
        "role_arn": "arn:aws:iam::123456789012:role/m",
        "kms_key_id": "k",
        "data_bucket": "models",
        "sagemaker_client": aws["sagemaker"],
        "s3_client": aws["s3"],
    }
    account = deploy(**common, artefact_sha256=sha["blue"])
    # what SageMaker and S3 say, checked against hashlib's hash of the file
    assert account["artefact_sha256"] == sha["blue"] and account["image_digest"] == "sha256:" + "1" * 64
    assert deploy(**common, artefact_sha256=sha["blue"])["artefact_sha256"] == sha["blue"]  # idempotent
    with pytest.raises(DeploymentError, match=f"does not serve {sha['red']}.*model data is {sha['blue']}"):
        deploy(**common, artefact_sha256=sha["red"])
    server, thread, url = start_server(load_model("onnx", onnx_config=red_config))
    server.endpoints = LocalEndpoints(aws["sagemaker"], aws["s3"], default_endpoint="kyc")
    try:
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name=REGION)
        frames = [solid_frame("000", (0, 0, 255))]
        champion = SageMakerFrameScorer("kyc", client=runtime, max_attempts=1).score(frames)
        candidate = SageMakerFrameScorer("kyc-v2", client=runtime, max_attempts=1).score(frames)
        # the server hashes what it loaded: the witness is the bytes, not the name
        assert champion.model.artefact_sha256 == sha["red"]
        assert candidate.model.artefact_sha256 == sha["blue"]
        assert candidate.scores[0].p_fake < 0.5 < champion.scores[0].p_fake  # a red frame, two models
        with pytest.raises(ScoringError):
            SageMakerFrameScorer("kyc-v9", client=runtime, max_attempts=1, sleep=lambda _s: None).score(
                frames
            )
    finally:
        stop(server, thread)
