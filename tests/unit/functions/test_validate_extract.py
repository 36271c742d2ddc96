"""ValidateUpload and ExtractFrames against S3 (moto in-process) with real clips decoded by PyAV."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.errors import SourceChangedError, SourceMissingError
from kyc.media import isolated
from tests.fixtures.clips import make_clip
from tests.unit.functions.handler_loader import FakeContext, expected_pseudonym, load_handler

INTAKE, WORK = "intake", "work"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", width=320, height=240, fps=15, seconds=2.0)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (INTAKE, WORK):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        yield {"s3": s3, "kms": key_id, "monkeypatch": monkeypatch}


def _submission(aws: dict[str, Any], body: bytes, key: str = "uploads/a b.mp4") -> dict[str, Any]:
    put = aws["s3"].put_object(Bucket=INTAKE, Key=key, Body=body)
    return {
        "submission_id": "s" * 64,
        "bucket": INTAKE,
        "key": key,
        "version_id": put["VersionId"],
        "etag": put["ETag"].strip('"'),
        "size": len(body),
    }


def test_validate_real_clip_is_accepted_with_hash_of_stored_bytes(aws: dict[str, Any], clip: Path) -> None:
    app = load_handler("validate", {}, aws["monkeypatch"])
    body = clip.read_bytes()

    result = app.lambda_handler({"submission": _submission(aws, body)}, FakeContext())

    assert result["accepted"] is True
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    assert result["media"]["codec"] == "h264"
    assert len(json.dumps(result)) < 4096  # it travels in Step Functions state


def test_validate_lineage_names_the_object_by_its_keyed_pseudonym(
    aws: dict[str, Any], clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    app = load_handler("validate", {}, aws["monkeypatch"])
    key = "uploads/ACME-CUST-0042/Jane Doe.mp4"

    app.lambda_handler({"submission": _submission(aws, clip.read_bytes(), key)}, FakeContext())

    [lineage] = [r.lineage for r in caplog.records if r.getMessage() == "lineage"]  # type: ignore[attr-defined]
    assert lineage["inputs"]["object"] == expected_pseudonym(key)
    text = " ".join(str(r.__dict__) for r in caplog.records)
    assert key not in text and "ACME-CUST-0042" not in text and "Jane Doe" not in text


def test_validate_playlist_is_refused_with_reason(aws: dict[str, Any]) -> None:
    app = load_handler("validate", {}, aws["monkeypatch"])

    result = app.lambda_handler(
        {"submission": _submission(aws, b"#EXTM3U\n#EXTINF:1,\nx.ts\n")}, FakeContext()
    )

    assert (result["accepted"], result["reason"]) == (False, "PLAYLIST_OR_SCRIPT")


def test_validate_oversized_upload_refused_without_download(aws: dict[str, Any], clip: Path) -> None:
    app = load_handler("validate", {"KYC_MAX_UPLOAD_BYTES": "1000"}, aws["monkeypatch"])
    submission = _submission(aws, clip.read_bytes())
    app.STORE.download = None  # any download attempt would now fail loudly

    result = app.lambda_handler({"submission": submission}, FakeContext())

    assert (result["accepted"], result["reason"], result["sha256"]) == (False, "TOO_LARGE", "")


def test_validate_missing_object_raises_for_error_decision(aws: dict[str, Any]) -> None:
    app = load_handler("validate", {}, aws["monkeypatch"])
    submission = {"submission_id": "s" * 64, "bucket": INTAKE, "key": "uploads/gone.mp4", "version_id": None}

    with pytest.raises(SourceMissingError):
        app.lambda_handler({"submission": submission}, FakeContext())


def _extract(aws: dict[str, Any]) -> Any:
    env = {"KYC_WORK_BUCKET": WORK, "KYC_KMS_KEY_ID": aws["kms"], "KYC_FRAME_COUNT": "8"}
    return load_handler("extract", env, aws["monkeypatch"])


def test_extract_stores_frames_under_kms_and_returns_pointers_only(aws: dict[str, Any], clip: Path) -> None:
    app = _extract(aws)
    body = clip.read_bytes()
    validation = {"accepted": True, "sha256": hashlib.sha256(body).hexdigest()}

    result = app.lambda_handler(
        {"submission": _submission(aws, body), "validation": validation}, FakeContext()
    )

    assert result["frames_sampled"] == 8 and result["refusal"] is None
    assert len(json.dumps(result)) < 2048
    raw = aws["s3"].get_object(Bucket=WORK, Key=result["manifest_key"])["Body"].read()
    assert hashlib.sha256(raw).hexdigest() == result["manifest_sha256"]
    manifest = json.loads(raw)
    assert sorted(i for b in manifest["batches"] for i in b["frames"]) == [
        f["index"] for f in manifest["frames"]
    ]
    # one object per scoring batch (docs/cost.md), each under the key; a frame is a byte range of it
    stored = aws["s3"].list_objects_v2(Bucket=WORK, Prefix=manifest["prefix"])["Contents"]
    assert sorted(o["Key"] for o in stored) == sorted(
        [manifest["prefix"] + "manifest.json"]
        + [manifest["prefix"] + b["object"] for b in manifest["batches"]]
    )
    for frame in manifest["frames"]:
        key = manifest["prefix"] + frame["object"]
        head = aws["s3"].head_object(Bucket=WORK, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == aws["kms"]
        data = aws["s3"].get_object(Bucket=WORK, Key=key)["Body"].read()
        data = data[frame["offset"] : frame["offset"] + frame["length"]]
        assert hashlib.sha256(data).hexdigest() == frame["sha256"]
        assert data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9"  # a whole JPEG, no more, no less


def test_extract_bytes_changed_since_validation_raises(aws: dict[str, Any], clip: Path) -> None:
    app = _extract(aws)
    validation = {"accepted": True, "sha256": "0" * 64}

    with pytest.raises(SourceChangedError):
        app.lambda_handler(
            {"submission": _submission(aws, clip.read_bytes()), "validation": validation}, FakeContext()
        )


def _crash(*_args: Any, **_kwargs: Any) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)  # runs in the sandboxed child only


def test_validate_decoder_crash_is_invalid_and_the_handler_carries_on(
    aws: dict[str, Any], clip: Path
) -> None:
    app = load_handler("validate", {}, aws["monkeypatch"])
    aws["monkeypatch"].setattr(isolated, "validate_upload", _crash)
    body = clip.read_bytes()

    result = app.lambda_handler({"submission": _submission(aws, body)}, FakeContext())

    assert (result["accepted"], result["reason"]) == (False, "DECODER_CRASHED")
    assert result["sha256"] == hashlib.sha256(body).hexdigest() and result["size"] == len(body)


def test_extract_decoder_crash_is_a_refusal_not_an_error(aws: dict[str, Any], clip: Path) -> None:
    app = _extract(aws)
    aws["monkeypatch"].setattr(isolated, "sample_frames", _crash)
    body = clip.read_bytes()
    validation = {"accepted": True, "sha256": hashlib.sha256(body).hexdigest()}

    result = app.lambda_handler(
        {"submission": _submission(aws, body), "validation": validation}, FakeContext()
    )

    assert result["refusal"]["reason"] == "DECODER_CRASHED" and result["manifest_key"] is None
