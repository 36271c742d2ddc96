"""Promotion that cannot skip a step (issue 21 item 3): the pointer, the refusals, the re-screen report.

Expected values are written out by hand from the inputs, never taken from the code under test.
"""

from __future__ import annotations

import pytest

from kyc.domain.policy import DecisionPolicy
from kyc.domain.promotion import (
    DEPLOYMENT_KEY,
    PromotionError,
    pointer_document,
    promotion_refusals,
    rescreen_report,
    split_pointer,
)

SHA = "ab" * 32
OTHER = "cd" * 32


def _policy(bound: str | None = SHA) -> dict:
    calibration = None
    if bound is not None:
        calibration = {"model": {"name": "m", "version": "1", "artefact_sha256": bound}}
    return {"version": "p-2", "pass_threshold": 0.2, "reject_threshold": 0.7, "calibration": calibration}


def _ready(**changes) -> dict:
    package = {
        "approval_status": "Approved",
        "gate_passed": "true",
        "model_sha256": SHA,
        "policy_bound_to_sha256": SHA,
        "shadow_endpoint": "kyc-candidate-3",
        "rescreen": {"report_uri": "s3://audit/rescreen/3.json", "failed": 0},
    }
    return package | changes


def test_the_pointer_carries_the_policy_and_where_its_model_is_served() -> None:
    document = pointer_document(
        _policy(),
        endpoint_name="kyc-candidate-3",
        variant="AllTraffic",
        artefact_sha256=SHA,
        model_package_arn="arn:pkg/3",
    )
    policy, deployment = split_pointer(document)
    assert policy == _policy()
    assert deployment == {
        "endpoint_name": "kyc-candidate-3",
        "variant": "AllTraffic",
        "artefact_sha256": SHA,
        "model_package_arn": "arn:pkg/3",
    }


def test_a_policy_document_without_a_deployment_is_a_plain_policy() -> None:
    assert split_pointer(_policy()) == (_policy(), None)
    with pytest.raises(PromotionError):
        split_pointer(_policy() | {DEPLOYMENT_KEY: {"variant": "x"}})


@pytest.mark.parametrize("bound", [OTHER, None])
def test_a_policy_bound_to_other_bytes_or_to_none_is_never_installed(bound: str | None) -> None:
    with pytest.raises(PromotionError, match="bound"):
        pointer_document(
            _policy(bound), endpoint_name="e", variant="v", artefact_sha256=SHA, model_package_arn="a"
        )


def test_an_artefact_hash_that_is_not_a_sha256_is_refused() -> None:
    with pytest.raises(PromotionError, match="SHA-256"):
        pointer_document(
            _policy("x"), endpoint_name="e", variant="v", artefact_sha256="x", model_package_arn="a"
        )


def test_decide_reads_the_pointer_s_policy_part_as_a_policy() -> None:
    document = pointer_document(
        _policy(), endpoint_name="e", variant="v", artefact_sha256=SHA, model_package_arn="a"
    )
    with pytest.raises(Exception, match="unknown policy keys: deployment"):
        DecisionPolicy.from_mapping(document)  # why decide must split it first
    policy_part = split_pointer(document)[0]
    assert policy_part == _policy()
    policy = DecisionPolicy.from_mapping({k: v for k, v in policy_part.items() if k != "calibration"})
    assert (policy.pass_threshold, policy.reject_threshold) == (0.2, 0.7)


def test_a_package_with_every_step_done_may_be_promoted() -> None:
    assert promotion_refusals(_ready()) == []


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"approval_status": "PendingManualApproval"}, "not Approved"),
        ({"approval_status": "Rejected"}, "not Approved"),
        ({"gate_passed": "false"}, "gate"),
        ({"policy_bound_to_sha256": OTHER}, "bound"),
        ({"model_sha256": None}, "bound"),
        ({"shadow_endpoint": None}, "shadow"),
        ({"rescreen": None}, "re-screened"),
        ({"rescreen": {"report_uri": "s3://a/b", "failed": 2}}, "2 failed"),
    ],
)
def test_each_missing_step_refuses_the_promotion(changes: dict, needle: str) -> None:
    reasons = promotion_refusals(_ready(**changes))
    assert len(reasons) == 1 and needle in reasons[0]


def test_the_rescreen_report_counts_changes_by_direction_and_queues_pass_to_reject() -> None:
    items = [
        {"submission_id": "a", "recorded": "PASS", "candidate": "REJECT", "reasons": ["SCORE_ABOVE"]},
        {"submission_id": "b", "recorded": "PASS", "candidate": "PASS"},
        {"submission_id": "c", "recorded": "PASS", "candidate": "REVIEW"},
        {"submission_id": "d", "recorded": "REJECT", "candidate": "PASS"},
        {"submission_id": "e", "recorded": "REVIEW", "candidate": None},
        {"submission_id": "f", "recorded": "PASS", "candidate": "REJECT"},
    ]
    report = rescreen_report(items)
    assert report["submissions"] == 6 and report["compared"] == 5
    assert report["failed"] == 1 and report["failed_submissions"] == ["e"]
    assert report["changes"] == {"PASS->REJECT": 2, "PASS->REVIEW": 1, "REJECT->PASS": 1}
    assert (report["changed"], report["unchanged"]) == (4, 1)
    assert (report["stricter"], report["laxer"]) == (3, 1)
    assert [e["submission_id"] for e in report["review_queue"]] == ["a", "f"]
    assert report["review_queue"][0]["candidate_reasons"] == ["SCORE_ABOVE"]
