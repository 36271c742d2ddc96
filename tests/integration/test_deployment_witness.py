"""Issue 24: what an endpoint serves is what SageMaker and S3 say, for promotion as for scoring.

On the local stack (moto server over HTTP, the template's functions, the real model server):
- a candidate whose SageMaker model says (container environment ``KYC_MODEL_SHA256``) it is the
  package's bytes while its model data is other weights, same name and version: the shadow deployment
  and `kycscreen promote` refuse it, naming the bytes S3 holds; the honest deployment is promoted;
- a calibration that names the serving image by digest: the honest deployment PASSes with the image
  bound; the same model data on an image deployed by tag (moto's SageMaker resolves nothing, so a tag
  is never a binding) or on another digest is REVIEW MODEL_NOT_CALIBRATED naming
  ``model.witness.image_digest``.

Oracles: hashlib over the model files, the digest the test itself chose, SSM's parameter history."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kyc.aws import model_registry as reg
from kyclocal import loop
from kyclocal.calibration_demo import build_labelled_set, write_demo_model
from kyclocal.endpoints import CONFIG_NAME, LOCAL_IMAGE, LOCAL_IMAGE_DIGEST, MODEL_FILE
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.integration.test_calibration_journey import _cli

pytestmark = pytest.mark.integration


def _reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


@pytest.fixture(autouse=True)
def _fresh_moto() -> None:
    _reset_moto()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _onnx(config: Path) -> Path:
    return config.parent / json.loads(config.read_text())["path"]


def _put_model_data(stack: LocalStack, folder: str, config: Path) -> str:
    """The model file where candidates live, uncompressed, with the SHA-256 S3 verifies; its config beside."""
    bucket = stack.parameters["ModelDataBucket"]
    key = f"{loop.candidates_prefix(stack)}{folder}/"
    s3 = stack.client("s3")
    s3.put_object(
        Bucket=bucket, Key=key + MODEL_FILE, Body=_onnx(config).read_bytes(), ChecksumAlgorithm="SHA256"
    )
    body = json.dumps(json.loads(config.read_text()) | {"path": MODEL_FILE}).encode()
    s3.put_object(Bucket=bucket, Key=key + CONFIG_NAME, Body=body)
    return f"s3://{bucket}/{key}{MODEL_FILE}"


def _endpoint(stack: LocalStack, name: str, model_data_url: str, environment: dict[str, str]) -> None:
    """A SageMaker model, config and endpoint, created as whoever holds CreateModel may create them."""
    from kyclocal.stack import MODEL_ROLE_ARN

    sm = stack.client("sagemaker")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=MODEL_ROLE_ARN,
        PrimaryContainer={
            "Image": LOCAL_IMAGE,
            "Environment": environment,
            "ModelDataSource": {
                "S3DataSource": {"S3Uri": model_data_url, "S3DataType": "S3Object", "CompressionType": "None"}
            },
        },
    )
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[variant | {"InitialInstanceCount": 1}]
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def _package(stack: LocalStack, sha: str, model_data_url: str, policy: dict) -> str:
    """A registered package for ``sha`` (gate passed, policy bound to it), awaiting a person's approval."""
    key = f"models/{sha}/policy.json"
    stack.client("s3").put_object(
        Bucket=stack.resources.audit_bucket,
        Key=key,
        Body=json.dumps(policy).encode(),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=stack.kms_key_id,
    )
    models = loop.registry(stack)
    models.ensure_group()
    package = models.register(
        image=LOCAL_IMAGE,
        model_data_url=model_data_url,
        description="candidate",
        metadata={
            reg.MODEL_SHA256: sha,
            reg.POLICY_BOUND_TO: sha,
            reg.GATE_PASSED: "true",
            reg.POLICY_URI: f"s3://{stack.resources.audit_bucket}/{key}",
        },
    )
    return package.arn


def _shadowed(stack: LocalStack, arn: str, endpoint: str, policy: dict, sha: str) -> None:
    """What the shadow deployment and a clean re-screen record on the package (issue 21's steps)."""
    document = policy | {
        "deployment": {
            "endpoint_name": endpoint,
            "variant": "AllTraffic",
            "artefact_sha256": sha,
            "model_package_arn": arn,
        }
    }
    name = stack.outputs["ShadowPolicyParameterName"]
    version = stack.client("ssm").put_parameter(
        Name=name, Type="SecureString", KeyId=stack.kms_key_id, Value=json.dumps(document), Overwrite=True
    )["Version"]
    # the clean re-screen's report (promotion reads the candidate's traffic mix, the drift baseline it
    # installs, from it): no decision re-screened, so no baseline of its own (the fallback stays)
    stack.client("s3").put_object(
        Bucket=stack.resources.audit_bucket,
        Key="rescreen/r/report.json",
        Body=json.dumps({"failed": 0, "review_queue": []}).encode(),
    )
    loop.registry(stack).annotate(
        arn,
        {
            reg.SHADOW_ENDPOINT: endpoint,
            reg.SHADOW_POLICY_PARAMETER: f"{name}:{version}",
            reg.RESCREEN_REPORT_URI: f"s3://{stack.resources.audit_bucket}/rescreen/r/report.json",
            reg.RESCREEN_FAILED: "0",
        },
    )


def test_a_model_whose_environment_claims_the_package_bytes_is_not_promoted(tmp_path: Path) -> None:
    champion = write_demo_model(tmp_path / "champion")
    candidate = write_demo_model(tmp_path / "candidate", weight_red=30.0, bias=-12.0)
    liar = write_demo_model(tmp_path / "liar", weight_red=0.0, bias=-10.0)  # a constant near 0: PASSes all
    sha, liar_sha = _sha(_onnx(candidate)), _sha(_onnx(liar))
    assert sha != liar_sha
    policy = {"version": "candidate-1", "calibration": {"model": {"artefact_sha256": sha}}}
    settings = LocalStackSettings(
        model="onnx", onnx_config=champion, frame_count=8, policy={"version": "champion"}
    )
    with LocalStack(settings) as stack:
        # not -v1: the refused shadow deployment below created that endpoint (then deleted it, keeping
        # its config and model for inspection)
        endpoint = f"{stack.parameters['EndpointName']}-v1-claims"
        production = loop.pointer(stack)
        before = production.current()

        # 1. the registry names the package's hash, the model data under it is the liar's bytes: the
        #    shadow deployment (the template's function, through EventBridge's rule) refuses it
        lying_url = _put_model_data(stack, f"{sha}-lying", liar)
        arn = _package(stack, sha, lying_url, policy)
        result = loop.approve(stack, arn, approver="alice", note="read the report")
        assert result["status"] == "REFUSED", result
        assert f"does not serve {sha}" in result["reason"] and liar_sha in result["reason"]
        assert reg.SHADOW_ENDPOINT not in loop.registry(stack).describe(arn).metadata
        # issue 21 (c): the endpoint the refused approval created no longer runs (nor costs); what was
        # refused can still be described
        sm = stack.client("sagemaker")
        refused = f"{stack.parameters['EndpointName']}-v1"
        assert refused not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
        kept = sm.describe_endpoint_config(EndpointConfigName=refused)["ProductionVariants"][0]["ModelName"]
        assert (
            sm.describe_model(ModelName=kept)["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"]
            == lying_url
        )

        # 2. a model created by hand, same name and version, its environment claiming the package's hash
        #    (what promotion used to believe), its model data the liar's: promotion is refused
        _endpoint(stack, endpoint, lying_url, {"KYC_MODEL_SHA256": sha})
        _shadowed(stack, arn, endpoint, policy, sha)
        with pytest.raises(loop.LoopError) as refused:
            loop.promote(stack, arn)
        message = str(refused.value)
        assert message.startswith("promotion refused:") and f"does not serve {sha}" in message
        assert f"SageMaker and S3 say the model data is {liar_sha}" in message  # hashlib's oracle
        assert production.current() == before  # the pointer never moved

        # 3. the honest deployment of the same package is promoted, in one write of the pointer
        honest = f"{stack.parameters['EndpointName']}-v2"
        _endpoint(stack, honest, _put_model_data(stack, sha, candidate), {})
        _shadowed(stack, arn, honest, policy, sha)
        promoted = loop.promote(stack, arn)
        assert promoted.document["deployment"] == {
            "endpoint_name": honest,
            "variant": "AllTraffic",
            "artefact_sha256": sha,
            "model_package_arn": arn,
        }
        assert promoted.version == (before.version if before else 0) + 1


# ------------------------------------------------------------------------------------ the image
def test_a_calibration_that_names_the_image_holds_an_image_swapped_under_a_tag(tmp_path: Path) -> None:
    from kyclocal.commands import evaluate
    from kyclocal.commands.run import screen_files
    from kycserve.models import load_model

    model = write_demo_model(tmp_path)
    # 2 s clips: this test is about the image, and 20 frames give every bin two frames to choose from
    labels = build_labelled_set(tmp_path, seconds=2.0)
    policy_path = tmp_path / "policy.json"
    code, out = _cli(
        evaluate,
        [
            *("evaluate", str(labels), "--json", "--model", "onnx", "--onnx-config", str(model)),
            *("--frames", "8", "--pass-threshold", "0.3", "--reject-threshold", "0.8"),
            *("--write-policy", str(policy_path), "--image-digest", LOCAL_IMAGE_DIGEST),
        ],
    )
    assert code == 0, out
    document = json.loads(policy_path.read_text())
    assert document["calibration"]["model"]["image_digest"] == LOCAL_IMAGE_DIGEST  # the image deployed
    _reset_moto()  # a new stack: the evaluation's screenings are not this one's history
    genuine = tmp_path / "genuine-neutral.mp4"
    settings = LocalStackSettings(
        model="onnx",
        onnx_config=model,
        frame_count=8,
        policy=document,
        # the same bytes on another image: the container's report does not change, so the witness
        # sees the swap at its next DescribeEndpoint (AWS: within KYC_MODEL_WITNESS_TTL_S, 60 s)
        extra_env={"KYC_MODEL_WITNESS_TTL_S": "0"},
    )
    with LocalStack(settings) as stack:
        (row,) = screen_files(stack, [genuine])
        binding = stack.decision(row["submission_id"])["calibration_binding"]
        assert (row["decision"], row["reasons"], binding["differs"]) == ("PASS", ["LOW_FAKE_SCORE"], []), row
        assert binding["image"] == {"bound": True, "expected": LOCAL_IMAGE_DIGEST}

        served = load_model("onnx", onnx_config=model)  # the same bytes, calibrated
        for image, said, clip in (
            # swapped under a tag (a clip of its own each time: the same clip twice is MEDIA_REUSED)
            ("kycserve:local", "is a tag SageMaker reports no digest for", "genuine-cool.mp4"),
            ("kycserve@sha256:" + hashlib.sha256(b"another build").hexdigest(), None, "genuine-pale.mp4"),
        ):
            stack.deploy_model(served, image=image)
            (row,) = screen_files(stack, [tmp_path / clip])
            record = stack.decision(row["submission_id"])
            binding = record["calibration_binding"]
            assert (record["decision"], record["reasons"]) == ("REVIEW", ["MODEL_NOT_CALIBRATED"]), image
            assert binding["differs"] == ["model.witness.image_digest"], binding  # the bytes still bound
            assert binding["witnesses"]["sagemaker_s3"] == [_sha(_onnx(model))]
            if said:
                assert binding["witnesses"]["sagemaker_image"] == []
                assert any(said in u for u in binding["witnesses"]["sagemaker_image_unresolved"])
            else:
                assert binding["witnesses"]["sagemaker_image"] == [image.split("@", 1)[1]]
