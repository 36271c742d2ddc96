"""ValidateUpload reads the C2PA manifest of an accepted upload on the bytes it downloaded, with trust
anchors from the configured SSM parameter (moto in-process; clips signed at test time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.c2pa_clips import ThrowawayCA, append_manifest_box, make_ca, manifest, sign
from tests.fixtures.clips import make_clip
from tests.unit.functions import test_validate_extract as base
from tests.unit.functions.handler_loader import FakeContext, load_handler

aws = base.aws  # the moto fixture of the validate tests


@pytest.fixture(scope="module")
def ca() -> ThrowawayCA:
    return make_ca()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory, ca: ThrowawayCA) -> Path:
    root = tmp_path_factory.mktemp("signed")
    clip = make_clip(root / "clip.mp4", width=320, height=240, fps=15, seconds=2.0)
    return sign(clip, root / "synthetic.mp4", ca, manifest("trainedAlgorithmicMedia"))


def test_validate_records_the_manifest_of_an_accepted_upload(aws: dict[str, Any], synthetic: Path) -> None:
    app = load_handler("validate", {}, aws["monkeypatch"])

    result = app.lambda_handler({"submission": base._submission(aws, synthetic.read_bytes())}, FakeContext())

    assert result["accepted"] is True
    c2pa = result["provenance"]["c2pa"]
    assert c2pa["state"] == "present" and c2pa["trust"] == "untrusted"
    assert [s["type"] for s in c2pa["source_types"]] == ["trainedAlgorithmicMedia"]
    assert result["provenance"]["container"]["codec"] == "h264"
    assert "forensics" not in result  # carried under provenance only
    assert len(json.dumps(result)) < 8192  # it travels in Step Functions state


def test_validate_trusts_the_anchors_in_the_configured_parameter(
    aws: dict[str, Any], synthetic: Path, ca: ThrowawayCA
) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/kyc/c2pa-anchors", Type="String", Value=ca.root_pem.decode(), Tier="Advanced"
    )
    app = load_handler(
        "validate", {"KYC_PROVENANCE_TRUST_PARAMETER": "/kyc/c2pa-anchors"}, aws["monkeypatch"]
    )

    result = app.lambda_handler({"submission": base._submission(aws, synthetic.read_bytes())}, FakeContext())

    c2pa = result["provenance"]["c2pa"]
    assert c2pa["trust"] == "trusted" and c2pa["validation_state"] == "Trusted" and c2pa["failures"] == []


def test_validate_refused_upload_reads_no_provenance(aws: dict[str, Any]) -> None:
    app = load_handler("validate", {}, aws["monkeypatch"])

    result = app.lambda_handler(
        {"submission": base._submission(aws, b"#EXTM3U\n#EXTINF:1,\nx.ts\n")}, FakeContext()
    )

    assert result["accepted"] is False and result["provenance"] == {"c2pa": None, "container": None}


def test_validate_huge_manifest_is_bounded_and_the_upload_still_screened(
    aws: dict[str, Any], synthetic: Path, tmp_path: Path
) -> None:
    huge = append_manifest_box(synthetic, tmp_path / "huge.mp4", 6 * 1024 * 1024)
    app = load_handler("validate", {}, aws["monkeypatch"])

    result = app.lambda_handler({"submission": base._submission(aws, huge.read_bytes())}, FakeContext())

    assert result["accepted"] is True
    c2pa = result["provenance"]["c2pa"]
    assert c2pa["state"] == "oversized" and c2pa["manifest_bytes"] > 6 * 1024 * 1024
