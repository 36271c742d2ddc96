"""The deployment witness against moto's SageMaker and S3 over HTTP: what it reads, what it caches,
how it follows a promotion, and what it refuses. Expected hashes come from hashlib over the bytes."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from kyc.aws.sagemaker_model_witness import SageMakerModelWitness

REGION = "us-east-1"
BUCKET, PREFIX = "kyc-model-data", "models/"
ENDPOINT = "kyc-deepfake-detector"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        moto.stop()


@pytest.fixture
def aws(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    import requests

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    requests.post(f"{server}/moto-api/reset", timeout=10)
    clients = {s: boto3.client(s, region_name=REGION, endpoint_url=server) for s in ("sagemaker", "s3")}
    clients["s3"].create_bucket(Bucket=BUCKET)
    yield clients


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _deploy(
    aws: dict[str, Any], name: str, data: bytes | None, *, checksum: bool = True, key: str = ""
) -> str:
    """Model data to S3 (SHA-256 checked by S3 at upload), a model, an endpoint config; returns the config."""
    key = key or f"{PREFIX}{name}/model.onnx"
    if data is not None:
        extra = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
        aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=data, **extra)
    source = {"S3Uri": f"s3://{BUCKET}/{key}", "S3DataType": "S3Object", "CompressionType": "None"}
    aws["sagemaker"].create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/kycserve:1",
            "ModelDataSource": {"S3DataSource": source},
        },
    )
    aws["sagemaker"].create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.c5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    return f"{name}-config"


def _witness(aws: dict[str, Any], clock: Clock | None = None, prefix: str = PREFIX) -> SageMakerModelWitness:
    return SageMakerModelWitness(
        ENDPOINT,
        data_bucket=BUCKET,
        data_prefix=prefix,
        sagemaker=aws["sagemaker"],
        s3=aws["s3"],
        ttl_s=60.0,
        clock=clock or Clock(),
    )


def test_witness_names_the_bytes_s3_verified_and_caches_per_deployed_state(aws: dict[str, Any]) -> None:
    weights = b"calibrated weights " * 100
    aws["sagemaker"].create_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName=_deploy(aws, "detector-1", weights)
    )
    witness = _witness(aws)

    accounts = [witness.account("AllTraffic") for _ in range(50)]  # 50 batches in one warm container

    assert {a["artefact_sha256"] for a in accounts} == {hashlib.sha256(weights).hexdigest()}
    assert accounts[0]["unreadable"] is None and accounts[0]["endpoint_config"] == "detector-1-config"
    assert accounts[0]["models"][0]["model"] == "detector-1"
    assert witness.calls == 4  # DescribeEndpoint, DescribeEndpointConfig, DescribeModel, GetObjectAttributes


def test_witness_follows_a_promotion_without_being_told_a_model_name(aws: dict[str, Any]) -> None:
    first, second = b"champion weights", b"challenger weights"
    aws["sagemaker"].create_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName=_deploy(aws, "champion", first)
    )
    clock = Clock()
    witness = _witness(aws, clock)
    assert witness.account("AllTraffic")["artefact_sha256"] == hashlib.sha256(first).hexdigest()

    time.sleep(1.1)  # the endpoint's LastModifiedTime moves on with the switch
    # moto 5.2.5 has no UpdateEndpoint: the switch is played as delete and create under the same name
    aws["sagemaker"].delete_endpoint(EndpointName=ENDPOINT)
    config = _deploy(aws, "challenger", second)
    aws["sagemaker"].create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)
    within_ttl = witness.account("AllTraffic")
    assert within_ttl["artefact_sha256"] == hashlib.sha256(first).hexdigest()
    clock.now = 61.0

    account = witness.account("AllTraffic")
    assert account["artefact_sha256"] == hashlib.sha256(second).hexdigest()
    assert account["endpoint_config"] == "challenger-config"


def test_a_container_reporting_new_bytes_is_witnessed_at_once(aws: dict[str, Any]) -> None:
    """An honest switch: the first batch that reports another artefact makes the witness ask again."""
    first, second = b"champion weights", b"challenger weights"
    aws["sagemaker"].create_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName=_deploy(aws, "champion", first)
    )
    witness = _witness(aws)
    old = witness.account("AllTraffic", hashlib.sha256(first).hexdigest())
    time.sleep(1.1)
    aws["sagemaker"].delete_endpoint(EndpointName=ENDPOINT)
    aws["sagemaker"].create_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName=_deploy(aws, "challenger", second)
    )

    same = witness.account("AllTraffic", hashlib.sha256(first).hexdigest())  # a liar keeps the old hash
    new = witness.account("AllTraffic", hashlib.sha256(second).hexdigest())

    assert old["artefact_sha256"] == same["artefact_sha256"] == hashlib.sha256(first).hexdigest()  # TTL
    assert new["artefact_sha256"] == hashlib.sha256(second).hexdigest()


def test_model_data_swapped_after_deployment_is_unreadable(aws: dict[str, Any]) -> None:
    """Swap and restore: SageMaker copied the bytes at deployment; an object written since (even with
    the calibrated bytes again) no longer proves what the endpoint runs."""
    weights = b"calibrated weights"
    aws["sagemaker"].create_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName=_deploy(aws, "detector", weights)
    )
    time.sleep(1.1)  # S3's LastModified has one-second resolution
    aws["s3"].put_object(
        Bucket=BUCKET, Key=f"{PREFIX}detector/model.onnx", Body=weights, ChecksumAlgorithm="SHA256"
    )

    account = _witness(aws).account("AllTraffic")

    assert account["artefact_sha256"] is None
    assert "after the endpoint was deployed" in account["unreadable"]


@pytest.mark.parametrize(
    ("setup", "unreadable"),
    [
        ("no-endpoint", "DescribeEndpoint failed: ValidationException"),
        ("no-checksum", "no SHA-256 checksum"),
        ("outside-prefix", "outside the stack's model data location"),
        ("missing-object", "GetObjectAttributes"),
    ],
)
def test_what_cannot_be_witnessed_is_unreadable_and_not_cached(
    aws: dict[str, Any], setup: str, unreadable: str
) -> None:
    if setup != "no-endpoint":
        data = None if setup == "missing-object" else b"weights"
        key = "elsewhere/model.onnx" if setup == "outside-prefix" else ""
        config = _deploy(aws, "detector", data, checksum=setup != "no-checksum", key=key)
        aws["sagemaker"].create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)
    witness = _witness(aws)

    first = witness.account("AllTraffic")
    calls = witness.calls
    witness.account("AllTraffic")

    assert first["artefact_sha256"] is None and unreadable in first["unreadable"]
    assert witness.calls > calls or setup == "no-endpoint"  # asked again: a fixed grant or upload is seen


def test_without_a_model_data_bucket_nothing_is_asked(aws: dict[str, Any]) -> None:
    aws["sagemaker"].create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=_deploy(aws, "detector", b"w"))
    witness = SageMakerModelWitness(ENDPOINT, data_bucket="", sagemaker=aws["sagemaker"], s3=aws["s3"])

    account = witness.account("AllTraffic")

    assert account["artefact_sha256"] is None and "ModelDataBucket is not set" in account["unreadable"]
    assert witness.calls == 0


class SteppingClock(Clock):
    """Each service call costs ``step`` seconds: the clock advances whenever SageMaker or S3 is asked."""

    def __init__(self, witness_clients: dict[str, Any], step: float) -> None:
        super().__init__()
        for service in witness_clients.values():
            service.meta.events.register("before-send", self._advance)
        self.step = step

    def _advance(self, **_: Any) -> None:
        self.now += self.step


def test_a_deadline_stops_the_witness_before_the_next_call_and_binds_nothing(aws: dict[str, Any]) -> None:
    """Live shadow traffic gives the witness a deadline (kyc.aws.shadow_traffic): no call starts after
    it, so its time is bounded by the deadline plus one call. With 1 s per call and a 2.5 s deadline,
    DescribeEndpoint, DescribeEndpointConfig and DescribeModel start (at 0, 1 and 2 s) and
    GetObjectAttributes (at 3 s) does not: unreadable, not cached, and the next account completes."""
    weights = b"candidate weights " * 100
    aws["sagemaker"].create_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName=_deploy(aws, "cand-1", weights)
    )
    clock = SteppingClock(aws, step=1.0)
    witness = _witness(aws, clock)

    late = witness.account("AllTraffic", deadline=2.5)

    assert late["artefact_sha256"] is None and "WitnessOutOfTime" in late["unreadable"], late
    assert witness.calls == 3 and clock.now == 3.0  # the fourth call never went out
    whole = witness.account("AllTraffic", deadline=clock.now + 10)  # not cached: asked again, in time
    assert whole["artefact_sha256"] == hashlib.sha256(weights).hexdigest() and whole["unreadable"] is None
    assert (
        witness.account("AllTraffic")["artefact_sha256"] == whole["artefact_sha256"]
    )  # no deadline: as before
