"""The deployment witness's account from SageMaker's and S3's descriptions (kyc.domain.model_witness).

Descriptions are shaped as the services answer (DescribeEndpoint, DescribeEndpointConfig,
DescribeModel, GetObjectAttributes); the expected hashes are computed here with hashlib from bytes."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kyc.domain.model_witness import (
    WitnessAccount,
    s3_sha256_hex,
    why_differs,
    witness_account,
    witness_differs,
)

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


# ----------------------------------------------------------------- issue 24: the serving image bound
DIGEST_A, DIGEST_B = "sha256:" + "a1" * 32, "sha256:" + "b2" * 32


def _imaged(image: str, deployed: list[dict[str, str]] | None = None) -> WitnessAccount:
    """An honest model-data account whose one model runs ``image``; ``deployed``: the variant's
    DescribeEndpoint ``DeployedImages`` (what SageMaker resolved at deployment)."""
    endpoint = _endpoint()
    endpoint["ProductionVariants"][0]["DeployedImages"] = deployed or []
    model = _model("m1", "m1/model.onnx")
    model["PrimaryContainer"]["Image"] = image
    return _account(
        endpoint,
        {"cfg-1": _config(AllTraffic="m1")},
        {"m1": model},
        {("models", "kyc/m1/model.onnx"): _object(GOOD)},
    )


REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kycserve"


def _resolved(specified: str, digest: str) -> dict[str, str]:
    return {"SpecifiedImage": f"{REPO}:{specified}", "ResolvedImage": f"{REPO}@{digest}"}


@pytest.mark.parametrize(
    ("image", "deployed", "digest", "unresolved"),
    [
        (f"{REPO}@{DIGEST_A}", [], DIGEST_A, None),  # digest form: the URI is the binding
        # a tag SageMaker resolved when it deployed the variant: the digest it runs, not the tag's now
        (
            f"{REPO}:2.3",
            [{"SpecifiedImage": f"{REPO}:2.3", "ResolvedImage": f"{REPO}@{DIGEST_B}"}],
            DIGEST_B,
            None,
        ),
        (f"{REPO}:2.3", [], None, "is a tag SageMaker reports no digest for"),  # a name, not a binding
        # the resolution names another image than the model's: it does not vouch for this one
        (
            f"{REPO}:2.3",
            [{"SpecifiedImage": f"{REPO}:2.4", "ResolvedImage": f"{REPO}@{DIGEST_B}"}],
            None,
            "tag",
        ),
        # the same tag resolved twice to different digests (moved between two deployments): ambiguous
        (
            f"{REPO}:2.3",
            [
                {"SpecifiedImage": f"{REPO}:2.3", "ResolvedImage": f"{REPO}@{DIGEST_A}"},
                {"SpecifiedImage": f"{REPO}:2.3", "ResolvedImage": f"{REPO}@{DIGEST_B}"},
            ],
            None,
            "resolved to 2 digests",
        ),
        (f"{REPO}@sha256:abc", [], None, "tag"),  # a truncated digest is not a digest
    ],
)
def test_the_image_is_named_only_by_digest(
    image: str, deployed: list, digest: str | None, unresolved: str | None
) -> None:
    account = _imaged(image, deployed)
    assert account.artefact_sha256 == hashlib.sha256(GOOD).hexdigest()  # the bytes stay witnessed
    assert account.image_digest == digest
    assert (
        (account.image_unresolved is None) if unresolved is None else (unresolved in account.image_unresolved)
    )
    assert account.to_dict()["image_digest"] == digest


def test_models_that_may_answer_on_two_images_name_none() -> None:
    endpoint = _endpoint(variants=("A", "B"))
    models = {n: _model(n, "m/model.onnx") for n in ("m1", "m2")}
    models["m1"]["PrimaryContainer"]["Image"] = f"{REPO}@{DIGEST_A}"
    models["m2"]["PrimaryContainer"]["Image"] = f"{REPO}@{DIGEST_B}"
    account = _account(
        endpoint,
        {"cfg-1": _config(A="m1", B="m2")},
        models,
        {("models", "kyc/m/model.onnx"): _object(GOOD)},
        variant=None,
    )
    assert account.artefact_sha256 == hashlib.sha256(GOOD).hexdigest()
    assert account.image_digest is None and "2 images" in account.image_unresolved


SHA_GOOD, SHA_OTHER = hashlib.sha256(GOOD).hexdigest(), hashlib.sha256(OTHER).hexdigest()


@pytest.mark.parametrize(
    ("account", "expected_image", "differs"),
    [
        ({"artefact_sha256": SHA_GOOD, "unreadable": None, "image_digest": DIGEST_A}, None, []),
        ({"artefact_sha256": SHA_GOOD, "unreadable": None, "image_digest": DIGEST_A}, DIGEST_A, []),
        # the container's environment may say anything: only the witness's hash counts
        ({"artefact_sha256": SHA_OTHER, "unreadable": None}, None, ["model.witness.artefact_sha256"]),
        ({"artefact_sha256": None, "unreadable": "no checksum"}, None, ["model.witness.unreadable"]),
        (None, None, ["model.witness.unreadable"]),
        # an image swapped (same tag, another digest), or one the witness could not resolve
        ({"artefact_sha256": SHA_GOOD, "image_digest": DIGEST_B}, DIGEST_A, ["model.witness.image_digest"]),
        (
            {"artefact_sha256": SHA_GOOD, "image_digest": None, "image_unresolved": "a tag"},
            DIGEST_A,
            ["model.witness.image_digest"],
        ),
        # a calibration that names no image keeps today's behaviour: the image is not compared
        ({"artefact_sha256": SHA_GOOD, "image_digest": None, "image_unresolved": "a tag"}, None, []),
        (
            {"artefact_sha256": SHA_OTHER, "image_digest": DIGEST_B},
            DIGEST_A,
            ["model.witness.artefact_sha256", "model.witness.image_digest"],
        ),
    ],
)
def test_witness_differs_is_the_one_comparison(
    account: dict | None, expected_image: str | None, differs: list[str]
) -> None:
    assert witness_differs(account, artefact_sha256=SHA_GOOD, image_digest=expected_image) == differs
    if differs:
        assert why_differs(account, differs)  # a sentence a person reads for each field
