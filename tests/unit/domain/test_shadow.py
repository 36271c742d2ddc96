"""kyc.domain.shadow: what a shadowed candidate would decide, computed once for the re-screen and
live traffic. Oracles: the policy's thresholds applied by hand to constant scores."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from kyc.domain.shadow import (
    COMPARED,
    INCOMPLETE,
    UNWITNESSED,
    live_shadow,
    shadow_batch_key,
    shadow_verdict,
)

SHA = hashlib.sha256(b"candidate bytes").hexdigest()
POLICY = {"pass_threshold": 0.3, "reject_threshold": 0.8, "min_frames_scored": 2}


def _frames(p: float, n: int = 4, start: int = 0) -> list[dict[str, Any]]:
    face = {"box": [0.3, 0.2, 0.4, 0.5], "confidence": 0.99}
    return [
        {"frame_id": f"{i:03d}", "p_fake": p, "faces": [face | {"p_fake": p}], "quality": []}
        for i in range(start, start + n)
    ]


def test_verdict_applies_the_candidates_own_thresholds() -> None:
    # every frame at 0.95 >= reject 0.8; every frame at 0.05 < pass 0.3; 0.5 in between
    for p, expected in ((0.95, "REJECT"), (0.05, "PASS"), (0.5, "REVIEW")):
        verdict = shadow_verdict(
            _frames(p), frames_sampled=4, policy_document=POLICY, deployed_sha256=SHA, reported_sha256=SHA
        )
        assert str(verdict.decision) == expected, p


def test_verdict_from_other_bytes_than_the_pointer_names_is_never_a_pass() -> None:
    lax = shadow_verdict(
        _frames(0.05), frames_sampled=4, policy_document=POLICY, deployed_sha256=SHA, reported_sha256="0" * 64
    )
    assert str(lax.decision) == "REVIEW" and "MODEL_NOT_CALIBRATED" in lax.reasons
    strict = shadow_verdict(
        _frames(0.95), frames_sampled=4, policy_document=POLICY, deployed_sha256=SHA, reported_sha256=None
    )
    assert str(strict.decision) == "REJECT"  # a REJECT stands, as in the champion's binding


def _witness(sha: str | None = SHA, unreadable: str | None = None) -> dict[str, Any]:
    """A deployment witness account (kyc.domain.model_witness.WitnessAccount.to_dict) naming ``sha``."""
    return {
        "source": "sagemaker+s3",
        "artefact_sha256": sha,
        "unreadable": unreadable,
        "image_digest": "sha256:" + "1" * 64,
        "image_unresolved": None,
        "endpoint": "kyc-v2",
        "models": [{"model": "m", "model_data": "s3://models/candidates/m/model.onnx"}],
    }


def _doc(
    index: int,
    p: float,
    *,
    version: int = 3,
    status: str = "SCORED",
    witness: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "batch_index": index,
        "status": status,
        "reason": None if status == "SCORED" else "ENDPOINT_TIMEOUT",
        "endpoint_name": "kyc-v2",
        "pointer": {
            "parameter": "/kyc/s/shadow-policy",
            "parameter_version": version,
            "artefact_sha256": SHA,
        },
        "policy": POLICY,
        "model": {"name": "cand", "version": "2", "artefact_sha256": SHA},
        "frames": _frames(p, 2, start=2 * index) if status == "SCORED" else [],
        "model_witness": witness if witness is not None else _witness(),
    }


SCORED = [{"batch_index": 0, "status": "SCORED"}, {"batch_index": 1, "status": "SCORED"}]


def test_live_block_compares_the_candidate_with_the_recorded_decision() -> None:
    block = live_shadow(
        SCORED, {0: _doc(0, 0.95), 1: _doc(1, 0.95)}, frames_sampled=4, recorded_decision="PASS"
    )
    assert block is not None
    assert block["status"] == COMPARED and block["decision"] == "REJECT" and block["agrees"] is False
    assert block["pointer"] == {"parameter": "/kyc/s/shadow-policy", "parameter_version": 3}
    assert [f["frame_id"] for f in block["frames"]] == ["000", "001", "002", "003"]
    same = live_shadow(
        SCORED, {0: _doc(0, 0.05), 1: _doc(1, 0.05)}, frames_sampled=4, recorded_decision="PASS"
    )
    assert same is not None and same["decision"] == "PASS" and same["agrees"] is True


def test_no_shadow_scores_no_block() -> None:
    assert live_shadow(SCORED, {0: None, 1: None}, frames_sampled=4, recorded_decision="PASS") is None


def test_a_failed_missing_or_moved_shadow_gives_scores_but_no_would_be_decision() -> None:
    cases = {
        "failed": {0: _doc(0, 0.95), 1: _doc(1, 0.95, status="FAILED")},
        "missing": {0: _doc(0, 0.95), 1: None},
        "moved": {0: _doc(0, 0.95), 1: _doc(1, 0.95, version=4)},
    }
    for name, docs in cases.items():
        block = live_shadow(SCORED, docs, frames_sampled=4, recorded_decision="PASS")
        assert block is not None, name
        assert block["status"] == INCOMPLETE and block["decision"] is None and block["agrees"] is None, name
        assert block["problems"], name


def test_champion_batches_that_failed_are_not_asked_of_the_shadow() -> None:
    scoring = [{"batch_index": 0, "status": "SCORED"}, {"batch_index": 1, "status": "FAILED"}]
    block = live_shadow(scoring, {0: _doc(0, 0.95)}, frames_sampled=2, recorded_decision="ERROR")
    assert block is not None and block["status"] == COMPARED and len(block["batches"]) == 1


def test_shadow_scores_live_beside_the_champions() -> None:
    assert shadow_batch_key("s" * 64, 7) == f"scores/{'s' * 64}/shadow-batch-007.json"


OTHER = hashlib.sha256(b"other bytes under the same endpoint name").hexdigest()


@pytest.mark.parametrize(
    ("second", "differs"),
    [
        (_witness(OTHER), ["model.witness.artefact_sha256"]),  # another model deployed under the name
        (_witness(None, "DescribeEndpoint failed: ThrottlingException"), ["model.witness.unreadable"]),
        ({}, ["model.witness.unreadable"]),  # no witness recorded at all: fail closed
    ],
)
def test_a_candidate_its_witness_does_not_name_is_recorded_unwitnessed_and_compares_nothing(
    second: dict[str, Any], differs: list[str]
) -> None:
    # the container reports the pointer's bytes on both batches (model.artefact_sha256 == SHA): only
    # the witness of the second batch says otherwise, and one such batch is enough
    block = live_shadow(
        SCORED,
        {0: _doc(0, 0.95), 1: _doc(1, 0.95, witness=second)},
        frames_sampled=4,
        recorded_decision="PASS",
    )
    assert block is not None and block["status"] == UNWITNESSED, block
    assert block["witness_differs"] == differs
    assert block["agrees"] is None  # counted as neither an agreement nor a disagreement
    # the would-be decision is recorded, and it is no candidate's PASS: REJECT stands (as in the binding)
    assert block["decision"] == "REJECT" and "MODEL_NOT_CALIBRATED" not in block["reasons"]
    lax = live_shadow(
        SCORED,
        {0: _doc(0, 0.05), 1: _doc(1, 0.05, witness=second)},
        frames_sampled=4,
        recorded_decision="PASS",
    )
    assert lax is not None and lax["status"] == UNWITNESSED and lax["agrees"] is None
    assert lax["decision"] == "REVIEW" and "MODEL_NOT_CALIBRATED" in lax["reasons"]


def test_a_calibration_that_names_the_image_needs_the_witness_to_name_it_too() -> None:
    bound = POLICY | {
        "calibration": {"model": {"artefact_sha256": SHA, "image_digest": "sha256:" + "2" * 64}}
    }
    docs = {0: _doc(0, 0.05), 1: _doc(1, 0.05)}
    for doc in docs.values():
        doc["policy"] = bound
    block = live_shadow(SCORED, docs, frames_sampled=4, recorded_decision="PASS")
    assert block is not None and block["status"] == UNWITNESSED
    assert block["witness_differs"] == ["model.witness.image_digest"]
    for doc in docs.values():
        doc["model_witness"]["image_digest"] = "sha256:" + "2" * 64
    block = live_shadow(SCORED, docs, frames_sampled=4, recorded_decision="PASS")
    assert block is not None and block["status"] == COMPARED and block["agrees"] is True
    assert block["model_witness"]["artefact_sha256"] == SHA and block["witness_differs"] == []
