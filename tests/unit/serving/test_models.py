"""Both models over real HTTP: scores, the schema, /ping, and the container error paths."""

from __future__ import annotations

import hashlib
import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from kyc.domain.contract import encode_request, parse_response
from kycserve import ModelLoadError, load_model, start_server, stop
from kycserve.models import ModelOutputError
from kycserve.models.reference import MODEL_NAME, level_to_p_fake
from tests.unit.serving.helpers import solid_frame, textured_frame, write_onnx_config


def _response_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(resources.files("kyc.domain").joinpath("contract_v1.schema.json").read_text())
    schema.pop("oneOf")
    schema["$ref"] = "#/$defs/response"
    return jsonschema.Draft202012Validator(schema)


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def reference_url() -> Iterator[str]:
    server, thread, url = start_server(load_model("reference"))
    yield url
    stop(server, thread)


@pytest.fixture
def onnx_url(tmp_path: Path) -> Iterator[str]:
    server, thread, url = start_server(load_model("onnx", onnx_config=write_onnx_config(tmp_path)))
    yield url
    stop(server, thread)


def test_ping_reference_model_says_not_for_production(reference_url: str) -> None:
    with urllib.request.urlopen(reference_url + "/ping", timeout=5) as response:
        body = json.loads(response.read())
    assert response.status == 200
    assert "NOT-A-PRODUCTION-DETECTOR" in body["model"]["name"]
    assert "NOT A PRODUCTION DETECTOR" in body["model"]["description"]


def test_ping_no_model_loaded_returns_503() -> None:
    server, thread, url = start_server(None)
    try:
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(url + "/ping", timeout=5)
        assert raised.value.code == 503
    finally:
        stop(server, thread)


def test_reference_invocations_no_face_returns_null_score_matching_schema(reference_url: str) -> None:
    frames = [textured_frame("000", 1), solid_frame("001", (10, 20, 30))]
    status, body = _post(reference_url + "/invocations", encode_request(frames))
    assert status == 200
    _response_validator().validate(json.loads(body))
    batch = parse_response(body, ["000", "001"])
    assert batch.model.name == MODEL_NAME
    assert all(s.p_fake is None and s.quality == ("no_face",) for s in batch.scores)


def test_reference_centre_policy_no_face_returns_score_in_range() -> None:
    server, thread, url = start_server(load_model("reference", no_face="centre"))
    try:
        status, body = _post(url + "/invocations", encode_request([textured_frame("000", 2)]))
    finally:
        stop(server, thread)
    assert status == 200
    _response_validator().validate(json.loads(body))
    (score,) = parse_response(body, ["000"]).scores
    assert score.quality == ("no_face",)
    assert score.p_fake is not None and 0.0 <= score.p_fake <= 1.0


def test_reference_mapping_extremes_stay_finite() -> None:
    assert level_to_p_fake(-1e9) == pytest.approx(0.0, abs=1e-20)
    assert level_to_p_fake(1e9) == pytest.approx(1.0)
    assert level_to_p_fake(0.45) == pytest.approx(0.5)


@pytest.mark.parametrize("level", [math.nan, math.inf, -math.inf])
def test_reference_mapping_non_finite_level_raises(level: float) -> None:
    # min(60, nan) is 60 in Python: without the check a NaN level scored p_fake = 1.0.
    with pytest.raises(ModelOutputError):
        level_to_p_fake(level)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax", "probability"])
def test_onnx_nan_output_fails_instead_of_scoring(tmp_path: Path, activation: str) -> None:
    # A NaN bias makes the network answer NaN for every input, whatever the activation reads.
    config = write_onnx_config(tmp_path, weight_red=0.0, bias=math.nan, activation=activation)
    model = load_model("onnx", onnx_config=config)
    with pytest.raises(ModelOutputError):
        model.predict([solid_frame("000", (0, 0, 255))])


def test_onnx_nan_output_is_a_500_not_a_score(tmp_path: Path) -> None:
    config = write_onnx_config(tmp_path, weight_red=0.0, bias=math.nan, activation="sigmoid")
    server, thread, url = start_server(load_model("onnx", onnx_config=config))
    try:
        status, body = _post(url + "/invocations", encode_request([solid_frame("000", (0, 0, 255))]))
    finally:
        stop(server, thread)
    assert status == 500
    assert b"p_fake" not in body


def test_reference_undecodable_frame_returns_decode_failed(reference_url: str) -> None:
    from kyc.domain.contract import FrameImage

    frame = FrameImage("000", "image/jpeg", b"\xff\xd8\xff" + b"\0" * 64)
    status, body = _post(reference_url + "/invocations", encode_request([frame]))
    assert status == 200
    (score,) = parse_response(body, ["000"]).scores
    assert score.p_fake is None and score.quality == ("decode_failed",)


@pytest.mark.parametrize(
    ("bgr", "expected"),
    [
        ((0, 0, 255), 1 / (1 + math.exp(-0.5))),
        ((255, 0, 0), 1 / (1 + math.exp(0.5))),
        ((0, 0, 0), 1 / (1 + math.exp(0.5))),
    ],
)
def test_onnx_tiny_model_red_channel_returns_predictable_p_fake(
    onnx_url: str, bgr: tuple[int, int, int], expected: float
) -> None:
    status, body = _post(onnx_url + "/invocations", encode_request([solid_frame("000", bgr)]))
    assert status == 200
    _response_validator().validate(json.loads(body))
    batch = parse_response(body, ["000"])
    assert batch.model.name == "tiny-red"
    assert batch.scores[0].p_fake == pytest.approx(expected, abs=1e-5)


def test_onnx_bgr_colour_order_reads_blue_as_channel_zero(tmp_path: Path) -> None:
    model = load_model("onnx", onnx_config=write_onnx_config(tmp_path, colour_order="BGR"))
    (score,) = model.predict([solid_frame("000", (255, 0, 0))])
    assert score.p_fake == pytest.approx(1 / (1 + math.exp(-0.5)), abs=1e-5)


def test_onnx_mean_std_normalisation_returns_expected(tmp_path: Path) -> None:
    # (1 - 0.5) / 0.5 = 1 on the red channel -> logit 0.5.
    model = load_model(
        "onnx", onnx_config=write_onnx_config(tmp_path, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    )
    (score,) = model.predict([solid_frame("000", (0, 0, 255))])
    assert score.p_fake == pytest.approx(1 / (1 + math.exp(-0.5)), abs=1e-5)


def test_onnx_face_crop_no_face_returns_null(tmp_path: Path) -> None:
    model = load_model("onnx", onnx_config=write_onnx_config(tmp_path, face_crop=True))
    (score,) = model.predict([solid_frame("000", (0, 0, 255))])
    assert score.p_fake is None and score.quality == ("no_face",)


def test_onnx_bad_config_raises_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        load_model("onnx", onnx_config=write_onnx_config(tmp_path, layout="CHWN"))
    with pytest.raises(ModelLoadError):
        load_model("onnx", onnx_config=write_onnx_config(tmp_path, path="missing.onnx"))


def test_invocations_off_contract_request_returns_400(reference_url: str) -> None:
    status, _ = _post(reference_url + "/invocations", b'{"contract_version":"v1","frames":[]}')
    assert status == 400


def test_invocations_other_contract_version_header_returns_400(onnx_url: str) -> None:
    body = encode_request([solid_frame("000", (0, 0, 0))])
    status, _ = _post(onnx_url + "/invocations", body, {"X-Amzn-SageMaker-Custom-Attributes": "contract=v2"})
    assert status == 400


def test_onnx_server_reports_the_sha256_of_the_weights_it_loaded(tmp_path: Path) -> None:
    """Same name and version, other weights (inverted): the reported artefact hash tells them apart;
    the oracle is hashlib over each file's bytes, not the server's own code."""
    hashes = []
    for name, weight in (("honest", 20.0), ("inverted", -20.0)):
        (tmp_path / name).mkdir()
        config = write_onnx_config(tmp_path / name, weight_red=weight, bias=-10.0 if weight > 0 else 10.0)
        server, thread, url = start_server(load_model("onnx", onnx_config=config))
        try:
            status, body = _post(url + "/invocations", encode_request([solid_frame("000", (0, 0, 255))]))
        finally:
            stop(server, thread)
        assert status == 200
        _response_validator().validate(json.loads(body))
        model = parse_response(body, ["000"]).model
        assert (model.name, model.version) == ("tiny-red", "1.0.0")
        assert (
            model.artefact_sha256 == hashlib.sha256((tmp_path / name / "tiny.onnx").read_bytes()).hexdigest()
        )
        hashes.append(model.artefact_sha256)
    assert hashes[0] != hashes[1]


def test_reference_server_reports_the_hash_of_its_scoring_source(reference_url: str) -> None:
    status, body = _post(reference_url + "/invocations", encode_request([textured_frame("000", 2)]))
    assert status == 200
    reported = json.loads(body)["model"]["artefact_sha256"]
    models = Path(resources.files("kycserve.models"))  # type: ignore[arg-type]
    digest = hashlib.sha256()
    for name in ("reference.py", "spectrum.py", "faces.py"):
        digest.update((models / name).read_bytes())
    assert reported == digest.hexdigest()
