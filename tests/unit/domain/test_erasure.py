"""Pseudonymisation on erasure: nothing that names the applicant is left, the decision evidence is."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime

import pytest

from kyc.domain.erasure import (
    KEPT_FIELDS,
    PERSONAL_FIELDS,
    DeletedVersions,
    PersonalDataLeftError,
    build_erasure_evidence,
    erasure_targets,
    is_erased,
    merge_deleted,
    personal_values_left,
    pseudonymise_record,
    sibling_submissions,
)
from kyc.domain.identity import submission_id
from kyc.domain.outcomes import Decision
from kyc.domain.reasons import ReasonCode
from kyc.domain.record import DecisionContext, DecisionSummary, build_decision_item
from tests.fixtures.macs import TEST_MAC

RAW_KEY = "uploads/ACME-42/Jane Doe 1990-01-01/selfie.mp4"
REFERENCE = "ACME-42"
NOW = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)


def _oracle(value: str) -> str:
    """The keyed pseudonym computed by hand: HMAC-SHA256 under the test key, labelled with it."""
    return f"hmac:{TEST_MAC.label}:" + hmac.new(TEST_MAC.key, value.encode(), hashlib.sha256).hexdigest()


def _item() -> dict:
    summary = DecisionSummary(
        Decision.REJECT,
        (ReasonCode.HIGH_FAKE_SCORE,),
        score=0.93,
        frames_sampled=8,
        frames_scored=8,
        frames_with_face=8,
        policy={"version": "p-1", "pass_threshold": 0.3},
        model={"name": "m", "version": "1"},
    )
    context = DecisionContext(
        submission={
            "submission_id": "a" * 64,
            "bucket": "intake",
            "key": RAW_KEY,
            "version_id": "v1",
            "etag": "e",
            "size": 10,
            "client_reference": REFERENCE,
            "received_at": "2026-11-28T16:59:00Z",
        },
        execution_arn="arn:aws:states:us-east-1:1:execution:sm:" + "a" * 64,
        recorded_by="decide",
        validation={
            "sha256": "b" * 64,
            "size": 10,
            "media": {"codec": "h264", "width": 320, "tags": {"location": "+48.85+002.35/"}},
        },
        artefacts={"scores_key": "decisions/x/scores.json"},
        code_version={"git": "abc"},
    )
    return build_decision_item(summary, context, now=NOW, retention_days=1825)


def _erase(item: dict) -> dict:
    return pseudonymise_record(
        item, erased_at=NOW, reason="GDPR_ART17_REQUEST", evidence={"key": "k"}, mac=TEST_MAC
    )


def test_pseudonymise_record_decision_item_no_raw_key_or_reference_left() -> None:
    erased = _erase(_item())
    text = json.dumps(erased)
    assert RAW_KEY not in text and REFERENCE not in text
    assert "client_reference" not in erased  # also gone from ClientReferenceIndex
    assert erased["source"]["key"] == _oracle(RAW_KEY)


def test_pseudonymise_record_decision_item_keeps_record_keeping_fields() -> None:
    item = _item()
    erased = _erase(item)
    for name in ("submission_id", "decision", "reasons", "score", "policy", "model", "decided_at"):
        assert erased[name] == item[name]
    assert erased["source"]["sha256"] == "b" * 64
    assert erased["expires_at"] == item["expires_at"]  # the AML retention clock is unchanged
    assert erased["erased_at"].startswith("2026-11-28T17:00") and erased["erasure_reason"]


def test_pseudonymise_record_media_tags_dropped() -> None:
    erased = _erase(_item())
    assert erased["media"] == {"codec": "h264", "width": 320}


def test_pseudonymise_record_unknown_field_dropped() -> None:
    erased = _erase(_item() | {"reviewer_note": "looks like Jane"})
    assert "reviewer_note" not in erased


def test_pseudonymise_record_reference_pseudonym_is_not_indexed() -> None:
    erased = _erase(_item())
    assert erased["client_reference_pseudonym"] == _oracle(REFERENCE)


def test_pseudonymise_record_carries_only_keyed_pseudonyms() -> None:
    """No unkeyed digest of the key or the reference is left to test candidates against offline."""
    erased = _erase(_item())
    text = json.dumps(erased)
    for value in (RAW_KEY, REFERENCE):
        assert hashlib.sha256(value.encode()).hexdigest()[:16] not in text
    pseudonyms = re.findall(r"hmac:[a-z0-9]+:[0-9a-f]{64}", text)
    assert sorted(pseudonyms) == sorted([_oracle(RAW_KEY), _oracle(REFERENCE)])
    assert "sha256:" not in text


def test_pseudonymise_record_twice_same_result() -> None:
    item = _item()
    assert _erase(item) == _erase(item)
    assert is_erased(_erase(item)) and not is_erased(item)


def test_pseudonymise_record_key_leaking_into_kept_field_raises() -> None:
    item = _item()
    item["artefacts"] = {"copy": f"s3://intake/{RAW_KEY}"}
    with pytest.raises(PersonalDataLeftError):
        _erase(item)


def test_build_decision_item_every_field_classified_kept_or_personal() -> None:
    # A field added to the record must be classified here first (docs/erasure.md).
    assert set(_item()) <= KEPT_FIELDS | PERSONAL_FIELDS


def test_personal_values_left_short_value_matches_whole_strings_only() -> None:
    assert personal_values_left({"a": "x7", "b": "ab7x7c"}, ["x7"]) == ["$.a"]


def test_sibling_submissions_other_versions_listed() -> None:
    sid = submission_id("intake", RAW_KEY, "v1")
    siblings = sibling_submissions("intake", RAW_KEY, ["v1", "v2", "null"], exclude=sid)
    assert siblings == [submission_id("intake", RAW_KEY, "v2")]


def test_erasure_targets_only_submission_prefixes() -> None:
    targets = erasure_targets("s1")
    assert targets.work_prefixes == ("frames/s1/", "scores/s1/")
    assert targets.review_keys == ("reviews/s1/contact-sheet.png",)
    assert targets.evidence_key == "decisions/s1/erasure.json"


def test_build_erasure_evidence_intake_keys_pseudonymised() -> None:
    item = _item()
    sweeps = [
        DeletedVersions("intake", {RAW_KEY: 2}, {RAW_KEY: 1}),
        DeletedVersions("work", {"frames/s1/000.jpg": 1}),
    ]
    evidence = build_erasure_evidence(
        item=item,
        erased_at=NOW,
        reason="GDPR_ART17_REQUEST",
        request={"by": "client_reference"},
        deleted=sweeps,
        intake_bucket="intake",
        siblings=[],
        code_version={},
        mac=TEST_MAC,
    )
    assert RAW_KEY not in json.dumps(evidence)
    assert evidence["deleted"][0]["objects"][0] == {
        "key": _oracle(RAW_KEY),
        "versions": 2,
        "delete_markers": 1,
    }
    assert evidence["deleted"][1]["objects"][0]["key"] == "frames/s1/000.jpg"
    assert "client_reference" in evidence["dropped_fields"]


def test_merge_deleted_retry_adds_counts() -> None:
    first = [DeletedVersions("w", {"a": 2}).to_dict()]
    second = [DeletedVersions("w", {"a": 1, "b": 1}).to_dict()]
    merged = merge_deleted(first, second)
    assert merged == [
        {
            "bucket": "w",
            "objects": [
                {"key": "a", "versions": 3, "delete_markers": 0},
                {"key": "b", "versions": 1, "delete_markers": 0},
            ],
            "total": 4,
        }
    ]


# ---------------------------------------------------------------- review records (issue 20)
def test_review_record_keeps_the_verdict_and_pseudonymous_people_and_drops_free_text():
    from kyc.domain.erasure import pseudonymise_review_item

    verdict = {
        "review_id": "a" * 64,
        "record": "verdict#v000001",
        "record_kind": "verdict",
        "recorded_at": "2026-12-06T10:00:00.000+00:00",
        "verdict_id": "v000001",
        "verdict": "attack",
        "attack_type": "mask",
        "reason": "Jane Doe, born 1990, held a printed photo",
        "reviewer_id": "rv-000000000000a11c",
        "supersedes": None,
        "requires_approval": True,
        "evidence_key": "decisions/aaa/reviews/verdict-v000001.json",
        "evidence_sha256": "c" * 64,
        "ttl": 1900000000,
        "added_later": "unclassified",
    }
    at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    out = pseudonymise_review_item(verdict, erased_at=at)
    assert "Jane Doe" not in str(out) and "reason" not in out and "added_later" not in out
    assert out == {k: v for k, v in verdict.items() if k not in ("reason", "added_later")} | {
        "erased_at": "2026-12-07T08:00:00.000+00:00"
    }
    approval = {"review_id": "a" * 64, "record": "approval#v000001", "approver_id": "rv-1",
                "approved_at": "2026-12-06T11:00:00.000+00:00", "note": "call +44 20 7946 0000"}  # fmt: skip
    kept = pseudonymise_review_item(approval, erased_at=at)
    assert "note" not in kept and kept["approver_id"] == "rv-1"
    # a retry keeps the first erasure's time
    assert pseudonymise_review_item(out, erased_at=at.replace(year=2027))["erased_at"] == out["erased_at"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "uploads/hmac-1234abcd-9f86/0123456789abcdef0123456789abcdef.mp4",
            "0123456789abcdef0123456789abcdef",
        ),
        ("uploads/anonymous/fedcba98765432100123456789abcdef.webm", "fedcba98765432100123456789abcdef"),
        ("uploads/ACME-42/Jane Doe/selfie.mp4", None),  # a key the API did not generate
        ("uploads/x/0123456789ABCDEF0123456789ABCDEF.mp4", None),  # not the API's lowercase hex
        ("uploads/x/0123456789abcdef0123456789abcde.mp4", None),  # 31 characters
        ("", None),
        (None, None),
    ],
)
def test_screening_id_is_the_stem_of_an_api_generated_key(key, expected):
    from kyc.domain.erasure import screening_id_of

    assert screening_id_of(key) == expected
