"""DecideOutcome with provenance evidence in the state: the findings bound the decision, and the evidence
is in the decision record and in lineage.json (moto, the real decide handler)."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.functions import test_score_decide as base
from tests.unit.functions.handler_loader import FakeContext

aws = base.aws  # the moto fixture of the decide tests
AUDIT, SID = base.AUDIT, base.SID

SYNTHETIC = {
    "state": "present",
    "validation_state": "Valid",
    "claim_generator": "SomeGenerator 2.0",
    "signer": {"issuer": "Gen Inc", "common_name": "Gen signer"},
    "trust": "untrusted",
    "failures": ["signingCredential.untrusted"],
    "ingredient_failures": [],
    "source_types": [
        {"type": "trainedAlgorithmicMedia", "uri": "x/trainedAlgorithmicMedia", "manifest": "active"}
    ],
    "actions": [{"action": "c2pa.created", "software_agent": "SomeGenerator", "manifest": "active"}],
}
TAMPERED = SYNTHETIC | {
    "validation_state": "Invalid",
    "failures": ["signingCredential.untrusted", "assertion.bmffHash.mismatch"],
    "source_types": [{"type": "digitalCapture", "uri": "x/digitalCapture", "manifest": "active"}],
}
EDITED = {"encoder": "Lavf60.16.100", "major_brand": "isom", "handler": "VideoHandler", "codec": "h264"}


def _run(
    aws: dict[str, Any], scores: list[float], c2pa: dict | None, container: dict | None = None, **env: str
):
    state = base._scored_state(aws, scores)
    state["validation"]["provenance"] = {"c2pa": c2pa, "container": container}
    state["submission"]["received_at"] = "2026-11-29T12:00:00Z"
    app = base._decide(aws, **env)
    return app.lambda_handler({"mode": "decide", "execution_arn": "arn:x", "state": state}, FakeContext())


def _lineage(aws: dict[str, Any]) -> dict[str, Any]:
    return json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/lineage.json")["Body"].read())


def test_declared_synthetic_rejects_a_clip_the_model_passed(aws: dict[str, Any]) -> None:
    result = _run(aws, [0.05] * 4, SYNTHETIC)

    assert result["decision"] == "REJECT" and result["reasons"][0] == "DECLARED_SYNTHETIC"
    assert "LOW_FAKE_SCORE" not in result["reasons"]
    item = base._item(aws)
    assert item["provenance"]["c2pa"]["claim_generator"] == "SomeGenerator 2.0"
    assert item["provenance"]["findings"] == [{"reason": "DECLARED_SYNTHETIC", "effect": "REJECT"}]
    evidence = _lineage(aws)["decision"]["provenance"]
    assert evidence["synthetic_sources"] == ["trainedAlgorithmicMedia"]
    assert evidence["policy"]["reject_declared_synthetic"] is True


def test_declared_synthetic_rule_off_leaves_the_model_decision(aws: dict[str, Any]) -> None:
    result = _run(aws, [0.05] * 4, SYNTHETIC, KYC_PROVENANCE_REJECT_SYNTHETIC="false")

    assert result["decision"] == "PASS"
    assert base._item(aws)["provenance"]["synthetic_sources"] == ["trainedAlgorithmicMedia"]  # still recorded


def test_manifest_edited_after_signing_is_at_most_review(aws: dict[str, Any]) -> None:
    result = _run(aws, [0.05] * 4, TAMPERED)

    assert result["decision"] == "REVIEW" and "PROVENANCE_INVALID" in result["reasons"]
    assert (
        "validation failure: assertion.bmffHash.mismatch"
        in base._item(aws)["provenance"]["manifest_problems"]
    )


def test_unsigned_clip_decides_as_before_with_forensics_recorded(aws: dict[str, Any]) -> None:
    result = _run(aws, [0.05] * 4, {"state": "absent"}, EDITED)

    assert (result["decision"], result["reasons"]) == ("PASS", ["LOW_FAKE_SCORE"])
    signals = _lineage(aws)["decision"]["provenance"]["signals"]
    assert [s["name"] for s in signals] == ["editing_software"]


def test_forensic_rule_turned_on_bounds_a_pass_to_review(aws: dict[str, Any]) -> None:
    result = _run(aws, [0.05] * 4, None, EDITED, KYC_FORENSIC_RULES="editing_software")

    assert result["decision"] == "REVIEW" and "EDITING_SOFTWARE" in result["reasons"]


def test_kept_audit_trail_explains_without_narrowing_down_the_applicant(aws: dict[str, Any]) -> None:
    phone = {
        "major_brand": "qt  ",
        "handler": "Core Media Video",
        "codec": "hevc",
        "make": "Apple",
        "model": "iPhone 14 Pro",
        "software": "16.4.1",
        "creation_time": "2026-11-29T11:58:07Z",
        "movie_created": "2026-11-29T11:58:07+00:00",
        "movie_modified": "2026-11-29T11:58:07+00:00",
    }
    signer = SYNTHETIC | {"signer": {"issuer": "Gen Inc", "common_name": "Jane Doe", "serial": "123456789"}}

    _run(aws, [0.05] * 4, signer, phone)

    lineage = json.dumps(_lineage(aws))
    for private in ("iPhone 14 Pro", "16.4.1", "11:58:07", "Jane Doe", "123456789"):
        assert private not in lineage, private
    evidence = _lineage(aws)["decision"]["provenance"]
    assert evidence["findings"] == [{"reason": "DECLARED_SYNTHETIC", "effect": "REJECT"}]
    assert evidence["c2pa"]["signer"] == {"issuer": "Gen Inc", "alg": None}
    assert evidence["container"]["make"] == "Apple" and evidence["container"]["codec"] == "hevc"
    item = base._item(aws)  # the record has everything; an erasure drops it (not on the keep list)
    assert item["provenance"]["container"]["model"] == "iPhone 14 Pro"
    assert item["provenance"]["c2pa"]["signer"]["common_name"] == "Jane Doe"

    from kyc.domain.erasure import KEPT_FIELDS

    assert "provenance" not in KEPT_FIELDS
