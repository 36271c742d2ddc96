"""C2PA Content Credentials through the local stack: template.yaml in moto, the real state machine,
the real validate and decide handlers, the reference model server.

Clips are signed at test time with a throw-away CA (tests/fixtures/c2pa_clips.py) from one PyAV clip
and, where present, a real phone capture from the shared corpus. Oracle: what we declared in the
manifest, the byte we flipped, and the decision the same unsigned clip gets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyclocal.stack import LocalStack
from tests.fixtures.c2pa_clips import make_ca, manifest, sign, signed_set
from tests.fixtures.clips import make_clip
from tests.integration.conftest import CORPUS, screen

PHONE = CORPUS / "axm__pixel7_videoOnly_cleaned.mp4"  # a real Pixel 7 capture, 1.2 s, accepted


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("c2pa-stack")
    ca = make_ca()
    clip = make_clip(root / "clip.mp4", width=320, height=240, fps=15, seconds=2.0)
    files = signed_set(clip, root, ca)
    if PHONE.exists():
        files["phone_synthetic"] = sign(
            PHONE, root / "phone-synthetic.mp4", ca, manifest("compositeSynthetic")
        )
    return files


def _lineage(stack: LocalStack, item: dict) -> dict:
    key = item["artefacts"]["lineage_key"]
    body = stack.client("s3").get_object(Bucket=stack.resources.audit_bucket, Key=key)["Body"].read()
    return json.loads(body)


def test_declared_synthetic_clip_is_rejected(stack: LocalStack, signed: dict[str, Path]) -> None:
    item = screen(stack, signed["synthetic"])

    assert item["decision"] == "REJECT" and item["reasons"][0] == "DECLARED_SYNTHETIC"
    c2pa = item["provenance"]["c2pa"]
    assert c2pa["state"] == "present" and c2pa["trust"] == "untrusted"
    assert [s["type"] for s in c2pa["source_types"]] == ["trainedAlgorithmicMedia"]
    evidence = _lineage(stack, item)["decision"]["provenance"]
    assert evidence["findings"] == [{"reason": "DECLARED_SYNTHETIC", "effect": "REJECT"}]


def test_declared_synthetic_phone_capture_is_rejected(stack: LocalStack, signed: dict[str, Path]) -> None:
    if "phone_synthetic" not in signed:
        pytest.skip("corpus not present")
    item = screen(stack, signed["phone_synthetic"])

    assert item["decision"] == "REJECT" and item["reasons"][0] == "DECLARED_SYNTHETIC"
    assert item["provenance"]["container"]["encoder"] == "Lavf60.16.100"


def test_manifest_tampered_after_signing_is_at_most_review(
    stack: LocalStack, signed: dict[str, Path]
) -> None:
    item = screen(stack, signed["tampered"])

    assert item["decision"] in ("REVIEW", "REJECT") and "PROVENANCE_INVALID" in item["reasons"]
    assert "assertion.bmffHash.mismatch" in item["provenance"]["c2pa"]["failures"]


def test_unsigned_and_capture_signed_clips_decide_as_before(
    stack: LocalStack, signed: dict[str, Path]
) -> None:
    unsigned = screen(stack, signed["unsigned"])
    captured = screen(stack, signed["captured"])

    assert unsigned["provenance"]["c2pa"]["state"] == "absent" and unsigned["provenance"]["findings"] == []
    assert captured["provenance"]["capture_declared"] is True and captured["provenance"]["findings"] == []
    assert (captured["decision"], captured["reasons"]) == (unsigned["decision"], unsigned["reasons"])
    assert not {"DECLARED_SYNTHETIC", "PROVENANCE_INVALID"} & set(unsigned["reasons"])


def test_garbage_manifest_is_decided_not_crashed_on(stack: LocalStack, signed: dict[str, Path]) -> None:
    item = screen(stack, signed["garbage"])

    assert item["decision"] in ("REVIEW", "REJECT") and "PROVENANCE_INVALID" in item["reasons"]
    assert item["provenance"]["c2pa"]["state"] == "unreadable"
