"""The model contract: sizes, batching, and every way a response can be off-contract."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kyc.domain.contract import (
    MAX_REQUEST_BYTES,
    REQUEST_BUDGET_BYTES,
    ContractError,
    ContractViolationError,
    Face,
    FrameImage,
    FrameScore,
    ModelInfo,
    decode_request,
    encode_request,
    encode_response,
    encoded_request_size,
    parse_response,
    plan_batches,
)

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 100
MODEL = ModelInfo("m", "1")


def _validator(name: str) -> jsonschema.Draft202012Validator:
    """The checked-in schema narrowed to its request or response definition."""
    schema = json.loads(resources.files("kyc.domain").joinpath("contract_v1.schema.json").read_text())
    schema.pop("oneOf")
    schema["$ref"] = f"#/$defs/{name}"
    return jsonschema.Draft202012Validator(schema)


def _response(frames: list[dict], model: dict | None = None) -> bytes:
    return json.dumps(
        {"contract_version": "v1", "model": model or {"name": "m", "version": "1"}, "frames": frames}
    ).encode()


def test_request_round_trip_returns_same_frames() -> None:
    frames = [FrameImage("000", "image/jpeg", JPEG), FrameImage("001", "image/png", b"\x89PNG\r\n\x1a\nabc")]
    assert decode_request(encode_request(frames)) == frames


def test_request_schema_accepts_encoded_request() -> None:
    body = json.loads(encode_request([FrameImage("000", "image/jpeg", JPEG)]))
    _validator("request").validate(body)


@given(
    st.lists(
        st.tuples(st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True), st.integers(0, 3000)),
        min_size=1,
        max_size=12,
        unique_by=lambda t: t[0],
    )
)
def test_encoded_request_size_any_ids_is_upper_bound(spec: list[tuple[str, int]]) -> None:
    frames = [FrameImage(fid, "image/jpeg", JPEG[:4] + b"\0" * size) for fid, size in spec]
    assert len(encode_request(frames)) <= encoded_request_size([len(f.data) for f in frames])


def test_encoded_request_size_longest_ids_is_exact() -> None:
    frames = [FrameImage(f"{i:064d}", "image/jpeg", JPEG + b"\0" * i) for i in range(5)]
    assert len(encode_request(frames)) == encoded_request_size([len(f.data) for f in frames])


def test_plan_batches_mixed_sizes_fit_budget_and_keep_order() -> None:
    sizes = [900_000, 100, 1_200_000, 50_000, 2_000_000, 10] + [1000] * 20
    batches = plan_batches(sizes)
    assert [i for b in batches for i in b] == list(range(len(sizes)))
    for batch in batches:
        assert len(batch) <= 8
        assert encoded_request_size([sizes[i] for i in batch]) <= REQUEST_BUDGET_BYTES


def test_plan_batches_32_small_frames_gives_4_batches_of_8() -> None:
    assert [len(b) for b in plan_batches([150_000] * 32)] == [8, 8, 8, 8]


def test_plan_batches_frame_too_big_raises() -> None:
    with pytest.raises(ContractError):
        plan_batches([10, 5_000_000])


def test_plan_batches_budget_above_invoke_limit_raises() -> None:
    with pytest.raises(ContractError):
        plan_batches([10], max_request_bytes=MAX_REQUEST_BYTES + 1)


@pytest.mark.parametrize(
    "frames",
    [
        [],
        [FrameImage("bad id", "image/jpeg", JPEG)],
        [FrameImage("a", "image/gif", b"GIF89a")],
        [FrameImage("a", "image/png", JPEG)],
        [FrameImage("a", "image/jpeg", JPEG), FrameImage("a", "image/jpeg", JPEG)],
    ],
)
def test_encode_request_off_contract_raises(frames: list[FrameImage]) -> None:
    with pytest.raises(ContractError):
        encode_request(frames)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"contract_version":"v2","frames":[]}',
        b'{"contract_version":"v1","frames":[{"data":"***"}]}',
    ],
)
def test_decode_request_off_contract_raises(body: bytes) -> None:
    with pytest.raises(ContractError):
        decode_request(body)


def test_parse_response_valid_returns_scores_in_request_order() -> None:
    body = _response(
        [
            {"frame_id": "b", "p_fake": None, "quality": ["no_face"]},
            {
                "frame_id": "a",
                "p_fake": 0.25,
                "faces": [{"box": [0.1, 0.2, 0.3, 0.4], "confidence": 1, "p_fake": 0.25}],
            },
        ]
    )
    batch = parse_response(body, ["a", "b"])
    assert batch.model == MODEL
    assert batch.scores == (
        FrameScore("a", 0.25, (Face((0.1, 0.2, 0.3, 0.4), 1.0, 0.25),), ()),
        FrameScore("b", None, (), ("no_face",)),
    )


def test_encode_response_round_trip_passes_schema_and_parser() -> None:
    scores = [FrameScore("a", 0.5, (Face((0.0, 0.0, 1.0, 1.0), 0.9, 0.5),), ("multiple_faces",))]
    body = encode_response(MODEL, scores)
    _validator("response").validate(json.loads(body))
    assert parse_response(body, ["a"]).scores == tuple(scores)


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        (b"{not json", ["a"]),
        (b'"a string"', ["a"]),
        (
            json.dumps({"contract_version": "v1", "frames": [{"frame_id": "a", "p_fake": 0.1}]}).encode(),
            ["a"],
        ),
        (_response([{"frame_id": "a", "p_fake": 0.1}], {"name": "", "version": "1"}), ["a"]),
        (_response([{"frame_id": "a", "p_fake": 0.1}]), ["a", "b"]),
        (_response([{"frame_id": "a", "p_fake": 0.1}, {"frame_id": "b", "p_fake": 0.1}]), ["a"]),
        (_response([{"frame_id": "a", "p_fake": 0.1}, {"frame_id": "a", "p_fake": 0.1}]), ["a", "a"]),
        (_response([{"frame_id": "a", "p_fake": 1.5}]), ["a"]),
        (_response([{"frame_id": "a", "p_fake": -0.01}]), ["a"]),
        (
            b'{"contract_version":"v1","model":{"name":"m","version":"1"},"frames":[{"frame_id":"a","p_fake":NaN}]}',
            ["a"],
        ),
        (_response([{"frame_id": "a", "p_fake": True}]), ["a"]),
        (_response([{"frame_id": "a", "p_fake": "0.1"}]), ["a"]),
        (_response([{"frame_id": "a"}]), ["a"]),
        (
            _response(
                [
                    {
                        "frame_id": "a",
                        "p_fake": 0.1,
                        "faces": [{"box": [0, 0, 2, 1], "confidence": 1, "p_fake": 0.1}],
                    }
                ]
            ),
            ["a"],
        ),
        (_response([{"frame_id": "a", "p_fake": 0.1, "quality": ["Bad Flag"]}]), ["a"]),
        (
            json.dumps(
                {"contract_version": "v0", "model": {"name": "m", "version": "1"}, "frames": []}
            ).encode(),
            [],
        ),
    ],
)
def test_parse_response_off_contract_raises_violation(body: bytes, ids: list[str]) -> None:
    with pytest.raises(ContractViolationError):
        parse_response(body, ids)
