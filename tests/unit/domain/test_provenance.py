"""Provenance rules: declared synthetic -> REJECT, invalid manifest -> at most REVIEW, forensics off by
default. The summaries here are written by hand in the shape the reader records (the reader itself is
tested on real signed clips in tests/unit/media/test_c2pa_manifest.py)."""

from __future__ import annotations

import pytest

from kyc.domain.outcomes import Decision
from kyc.domain.policy import (
    DecisionPolicy,
    Effect,
    Finding,
    FrameEvidence,
    PolicyError,
    apply_findings,
    decide_outcome,
)
from kyc.domain.provenance import ProvenancePolicy, assess, evidence_counts, forensic_signals, sheet_lines
from kyc.domain.reasons import ReasonCode

UPLOAD = "2026-11-29T12:00:00Z"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
POLICY = DecisionPolicy(min_frames_scored=2)


def manifest(
    *types: str, failures: tuple[str, ...] = ("signingCredential.untrusted",), role: str = "active"
) -> dict:
    return {
        "state": "present",
        "validation_state": "Valid",
        "failures": list(failures),
        "ingredient_failures": [],
        "source_types": [{"type": t, "uri": IPTC + t, "manifest": role} for t in types],
    }


def verdict(p_fake: float) -> object:
    frames = [FrameEvidence(f"{i:03d}", p_fake, 1) for i in range(4)]
    return decide_outcome(frames, frames_sampled=4, policy=POLICY)


def decided(p_fake: float, c2pa: dict | None, container: dict | None = None, **rules: object) -> object:
    assessment = assess(c2pa, container, received_at=UPLOAD, policy=ProvenancePolicy(**rules))
    return apply_findings(verdict(p_fake), assessment.findings)


@pytest.mark.parametrize("source", ["trainedAlgorithmicMedia", "compositeSynthetic", "algorithmicMedia",
                                    "compositeWithTrainedAlgorithmicMedia"])  # fmt: skip
@pytest.mark.parametrize("p_fake", [0.01, 0.5, 0.99])
def test_declared_synthetic_is_rejected_whatever_the_model_says(source: str, p_fake: float) -> None:
    result = decided(p_fake, manifest(source))

    assert result.decision == Decision.REJECT and result.reasons[0] == ReasonCode.DECLARED_SYNTHETIC


def test_declared_synthetic_in_an_ingredient_counts_too() -> None:
    ingredient = manifest("trainedAlgorithmicMedia", role="ingredient")["source_types"]
    c2pa = manifest("digitalCapture") | {
        "source_types": manifest("digitalCapture")["source_types"] + ingredient
    }
    assert decided(0.01, c2pa).decision == Decision.REJECT


def test_declared_synthetic_rejects_even_when_scoring_failed() -> None:
    failed = decide_outcome([], frames_sampled=4, policy=POLICY, failed_batches=1)
    assert failed.decision == Decision.ERROR
    findings = assess(
        manifest("trainedAlgorithmicMedia"), None, received_at=UPLOAD, policy=ProvenancePolicy()
    ).findings

    assert apply_findings(failed, findings).decision == Decision.REJECT


def test_synthetic_rule_and_vocabulary_are_parameters() -> None:
    assert (
        decided(0.01, manifest("trainedAlgorithmicMedia"), reject_declared_synthetic=False).decision
        == Decision.PASS
    )
    custom = {"screenCapture"}
    assert decided(0.01, manifest("screenCapture"), synthetic_source_types=custom).decision == Decision.REJECT
    assert (
        decided(0.01, manifest("trainedAlgorithmicMedia"), synthetic_source_types=custom).decision
        == Decision.PASS
    )


def test_untrusted_signer_alone_is_not_invalid() -> None:
    result = decided(0.01, manifest("digitalCapture"))

    assert result.decision == Decision.PASS and ReasonCode.PROVENANCE_INVALID not in result.reasons


@pytest.mark.parametrize(
    "c2pa",
    [
        manifest("digitalCapture", failures=("signingCredential.untrusted", "assertion.bmffHash.mismatch")),
        manifest("digitalCapture", failures=("claimSignature.mismatch",)),
        manifest("digitalCapture", failures=()) | {"validation_state": "Invalid"},
        {"state": "unreadable", "detail": "Verify: unexpected end of file"},
        {"state": "oversized", "detail": "5 MB"},
    ],
)
def test_invalid_or_unusable_manifest_is_at_most_review(c2pa: dict) -> None:
    passed, rejected = decided(0.01, c2pa), decided(0.99, c2pa)

    assert passed.decision == Decision.REVIEW and ReasonCode.PROVENANCE_INVALID in passed.reasons
    assert rejected.decision == Decision.REJECT  # NO_PASS never softens a REJECT
    assert decided(0.01, c2pa, review_invalid_manifest=False).decision == Decision.PASS


@pytest.mark.parametrize("c2pa", [None, {"state": "absent"}, {"state": "unsupported"}, {"state": "remote"}])
def test_no_manifest_is_neutral(c2pa: dict | None) -> None:
    for p_fake, expected in ((0.01, Decision.PASS), (0.5, Decision.REVIEW), (0.99, Decision.REJECT)):
        result = decided(p_fake, c2pa)
        assert result.decision == expected and result == verdict(p_fake)


def test_valid_capture_manifest_is_evidence_never_a_pass() -> None:
    trusted = manifest("digitalCapture", failures=()) | {"validation_state": "Trusted", "trust": "trusted"}
    assessment = assess(trusted, None, received_at=UPLOAD, policy=ProvenancePolicy())

    assert assessment.capture_declared and assessment.findings == ()
    assert decided(0.5, trusted).decision == Decision.REVIEW
    assert decided(0.99, trusted).decision == Decision.REJECT


APPLE = {
    "make": "Apple",
    "model": "iPhone 14 Pro",
    "major_brand": "qt  ",
    "handler": "Core Media Video",
    "codec": "hevc",
    "encoder": None,
    "video_encoder": "HEVC",
    "creation_time": "2026-11-29T11:58:00Z",
    "movie_created": "2026-11-29T11:58:00+00:00",
    "movie_modified": "2026-11-29T11:58:00+00:00",
}


def names(container: dict, **policy: object) -> list[str]:
    return [
        s.name for s in forensic_signals(container, received_at=UPLOAD, policy=ProvenancePolicy(**policy))
    ]


def test_consistent_phone_capture_raises_no_signal() -> None:
    assert names(APPLE) == []


@pytest.mark.parametrize(
    ("change", "signal"),
    [
        ({"encoder": "Lavf60.16.100"}, "editing_software"),
        ({"software": "Adobe Premiere Pro 2025"}, "editing_software"),
        ({"major_brand": "isom"}, "device_mismatch"),
        ({"handler": "VideoHandler"}, "device_mismatch"),
        ({"codec": "vp9"}, "device_mismatch"),
        ({"creation_time": "2026-12-01T00:00:00Z", "movie_created": None}, "created_after_upload"),
        ({"creation_time": "2025-01-01T00:00:00Z", "movie_created": None}, "created_long_before_upload"),
        ({"movie_modified": "2026-11-29T11:59:30+00:00"}, "modified_after_creation"),
    ],
)
def test_each_forensic_signal(change: dict, signal: str) -> None:
    assert signal in names(APPLE | change)


def test_clock_skew_and_age_limits_are_parameters() -> None:
    slightly_ahead = APPLE | {"movie_created": "2026-11-29T12:02:00+00:00", "movie_modified": None}
    assert names(slightly_ahead) == []  # within the default 5 minutes of skew
    assert names(slightly_ahead, clock_skew_s=60) == ["created_after_upload"]
    week_old = APPLE | {"movie_created": "2026-11-22T12:00:00+00:00", "movie_modified": None}
    assert names(week_old) == [] and names(week_old, max_age_days=3) == ["created_long_before_upload"]


def test_forensic_rules_are_off_by_default_and_bound_to_review_when_on() -> None:
    edited = APPLE | {"encoder": "Lavf60.16.100", "major_brand": "isom"}

    assert decided(0.01, None, edited).decision == Decision.PASS
    on = decided(0.01, None, edited, forensic_rules={"editing_software", "device_mismatch"})
    assert on.decision == Decision.REVIEW
    assert {ReasonCode.EDITING_SOFTWARE, ReasonCode.DEVICE_MISMATCH} <= set(on.reasons)
    assert decided(0.99, None, edited, forensic_rules={"editing_software"}).decision == Decision.REJECT


def test_unknown_forensic_rule_is_refused() -> None:
    with pytest.raises(PolicyError):
        ProvenancePolicy(forensic_rules={"editing_softwear"})


def test_assessment_records_everything_it_read() -> None:
    c2pa = manifest("trainedAlgorithmicMedia")
    record = assess(c2pa, APPLE, received_at=UPLOAD, policy=ProvenancePolicy()).to_dict()

    assert record["c2pa"] == c2pa and record["container"] == APPLE
    assert record["synthetic_sources"] == ["trainedAlgorithmicMedia"]
    assert record["findings"] == [{"reason": "DECLARED_SYNTHETIC", "effect": "REJECT"}]
    assert (
        Finding(ReasonCode.DECLARED_SYNTHETIC, Effect.REJECT)
        in assess(c2pa, None, received_at=None, policy=ProvenancePolicy()).findings
    )


def test_evidence_counts_per_label_class() -> None:
    synthetic = assess(
        manifest("trainedAlgorithmicMedia"), None, received_at=UPLOAD, policy=ProvenancePolicy()
    )
    edited = assess(
        {"state": "absent"}, APPLE | {"encoder": "Lavf60"}, received_at=UPLOAD, policy=ProvenancePolicy()
    )
    records = [synthetic.to_dict(), edited.to_dict(), None]

    counts = evidence_counts(["attack", "genuine", "genuine"], records)

    assert counts["attack"] == {
        "c2pa:present": 1,
        "finding:DECLARED_SYNTHETIC": 1,
        "source:trainedAlgorithmicMedia": 1,
    }
    assert counts["genuine"] == {"c2pa:absent": 1, "c2pa:not read": 1, "signal:editing_software": 1}


def test_sheet_lines_say_what_a_reviewer_needs() -> None:
    evidence = assess(manifest("trainedAlgorithmicMedia"), APPLE | {"encoder": "Lavf60"}, received_at=UPLOAD,
                      policy=ProvenancePolicy()).to_dict()  # fmt: skip

    first, second = sheet_lines(evidence)

    assert "c2pa present" in first and "signer" in first and "trainedAlgorithmicMedia" in first
    assert "DECLARED_SYNTHETIC" in first and second == "forensics editing_software"
    assert sheet_lines(None) == []
