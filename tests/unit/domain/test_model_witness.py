"""The deployment witness's account from SageMaker's and S3's descriptions (kyc.domain.model_witness).

Descriptions are shaped as the services answer (DescribeEndpoint, DescribeEndpointConfig,
DescribeModel, GetObjectAttributes); the expected hashes are computed here with hashlib from bytes."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kyc.domain.model_witness import s3_sha256_hex, witness_account

DEPLOYED = datetime(2026, 12, 1, 12, tzinfo=UTC)
GOOD, OTHER = b"calibrated weights", b"other weights, same name and version"


def _endpoint(
    config: str = "cfg-1", *, pending: str | None = None, variants: tuple[str, ...] = ("AllTraffic",)
):
    endpoint: dict[str, Any] = {
        "EndpointName": "kyc-deepfake-detector",
        "EndpointConfigName": config,
        "EndpointStatus": "InService" if pending is None else "Updating",
        "LastModifiedTime": DEPLOYED,
        "ProductionVariants": [
            {
                "VariantName": v,
                "DeployedImages": [{"SpecifiedImage": "kycserve:1", "ResolvedImage": "kycserve@sha256:ab"}],
            }
            for v in variants
        ],
    }
    if pending:
        endpoint["PendingDeploymentSummary"] = {"EndpointConfigName": pending}
    return endpoint


def _config(**variant_models: str) -> dict[str, Any]:
    return {"ProductionVariants": [{"VariantName": v, "ModelName": m} for v, m in variant_models.items()]}


def _model(name: str, key: str, *, source: str | None = "S3Object") -> dict[str, Any]:
    container: dict[str, Any] = {"Image": "kycserve:1"}
    if source is None:
        container["ModelDataUrl"] = f"s3://models/kyc/{key}"
    else:
        container["ModelDataSource"] = {
            "S3DataSource": {
                "S3Uri": f"s3://models/kyc/{key}",
                "S3DataType": source,
                "CompressionType": "None",
            }
        }
    return {"ModelName": name, "PrimaryContainer": container}


def _object(data: bytes, *, modified: datetime = DEPLOYED - timedelta(minutes=5)) -> dict[str, Any]:
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {"Checksum": {"ChecksumSHA256": checksum, "ChecksumType": "FULL_OBJECT"}, "LastModified": modified}


def _account(endpoint: dict, configs: dict, models: dict, objects: dict, variant: str | None = "AllTraffic"):
    return witness_account(
        endpoint, configs, models, objects, invoked_variant=variant, data_bucket="models", data_prefix="kyc/"
    )


def test_honest_deployment_names_the_bytes_s3_verified() -> None:
    account = _account(
        _endpoint(),
        {"cfg-1": _config(AllTraffic="m1")},
        {"m1": _model("m1", "m1/model.onnx")},
        {("models", "kyc/m1/model.onnx"): _object(GOOD)},
    )

    assert (account.artefact_sha256, account.unreadable) == (hashlib.sha256(GOOD).hexdigest(), None)
    record = account.to_dict()
    assert record["models"][0]["model_data"] == "s3://models/kyc/m1/model.onnx"
    assert record["images"] == ["kycserve@sha256:ab"]  # the image digest SageMaker resolved, for the record


def test_model_data_url_is_read_as_well_as_model_data_source() -> None:
    account = _account(
        _endpoint(),
        {"cfg-1": _config(AllTraffic="m1")},
        {"m1": _model("m1", "m1/model.tar.gz", source=None)},
        {("models", "kyc/m1/model.tar.gz"): _object(OTHER)},
    )
    assert account.artefact_sha256 == hashlib.sha256(OTHER).hexdigest()


def test_the_variant_that_answered_is_the_one_witnessed() -> None:
    configs = {"cfg-1": _config(champion="m1", canary="m2")}
    models = {"m1": _model("m1", "m1.onnx"), "m2": _model("m2", "m2.onnx")}
    objects = {("models", "kyc/m1.onnx"): _object(GOOD), ("models", "kyc/m2.onnx"): _object(OTHER)}
    endpoint = _endpoint(variants=("champion", "canary"))

    assert (
        _account(endpoint, configs, models, objects, "champion").artefact_sha256
        == hashlib.sha256(GOOD).hexdigest()
    )
    assert (
        _account(endpoint, configs, models, objects, "canary").artefact_sha256
        == hashlib.sha256(OTHER).hexdigest()
    )
    unknown = _account(endpoint, configs, models, objects, None)  # either may have answered
    assert unknown.artefact_sha256 is None and "2 artefacts" in str(unknown.unreadable)
    stranger = _account(endpoint, configs, models, objects, "shadow")
    assert "shadow" in str(stranger.unreadable)


def test_an_update_in_flight_counts_both_configs() -> None:
    configs = {"cfg-1": _config(AllTraffic="m1"), "cfg-2": _config(AllTraffic="m2")}
    models = {"m1": _model("m1", "m1.onnx"), "m2": _model("m2", "m2.onnx")}
    objects = {("models", "kyc/m1.onnx"): _object(GOOD), ("models", "kyc/m2.onnx"): _object(OTHER)}

    account = _account(_endpoint("cfg-1", pending="cfg-2"), configs, models, objects)

    assert account.artefact_sha256 is None and "2 artefacts" in str(account.unreadable)


@pytest.mark.parametrize(
    ("model", "obj", "unreadable"),
    [
        (_model("m1", "m1/", source="S3Prefix"), None, "prefix"),
        (_model("m1", "m1.onnx"), None, "could not be read"),
        (_model("m1", "m1.onnx"), {"LastModified": DEPLOYED}, "no SHA-256 checksum"),
        (
            _model("m1", "m1.onnx"),
            {"Checksum": {"ChecksumSHA256": "q83vEjRWeJA=-3", "ChecksumType": "COMPOSITE"}},
            "composite",
        ),
        # the object changed after SageMaker copied it: a swap and restore would describe idle bytes
        (
            _model("m1", "m1.onnx"),
            _object(GOOD, modified=DEPLOYED + timedelta(seconds=1)),
            "after the endpoint",
        ),
        (
            {"ModelName": "m1", "PrimaryContainer": {"ModelDataUrl": "s3://elsewhere/m1.onnx"}},
            None,
            "outside",
        ),
        ({"ModelName": "m1", "PrimaryContainer": {}, "Containers": [{}, {}]}, None, "several containers"),
    ],
)
def test_what_the_witness_cannot_vouch_for_is_unreadable(
    model: dict, obj: dict | None, unreadable: str
) -> None:
    objects = {("models", "kyc/m1.onnx"): obj} if obj is not None else {}

    account = _account(_endpoint(), {"cfg-1": _config(AllTraffic="m1")}, {"m1": model}, objects)

    assert account.artefact_sha256 is None and unreadable in str(account.unreadable)


def test_s3_checksum_is_the_file_sha256_in_hex() -> None:
    data = bytes(range(256)) * 7
    attributes = {"Checksum": {"ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode()}}
    assert s3_sha256_hex(attributes) == hashlib.sha256(data).hexdigest()
