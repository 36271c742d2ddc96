"""kyc.domain.same_person: which evidence frames show another person, from the recorded similarities.

Oracle: similarity matrices written by hand for a known cut (frames before it alike, after it alike,
across it not), so the expected sides are known without running the code."""

from __future__ import annotations

import pytest

from kyc.domain.faces import FaceEvidenceError
from kyc.domain.reasons import ReasonCode
from kyc.domain.same_person import identity_check

THRESHOLD = 0.78


def _spliced(count: int, cut: int, *, within: float = 0.9, across: float = 0.5) -> dict:
    frames = [f"{i:03d}" for i in range(count)]
    rows = [
        [1.0 if i == j else within if (i < cut) == (j < cut) else across for j in range(count)]
        for i in range(count)
    ]
    return {"method": "hand", "frames": frames, "similarity": rows}


@pytest.mark.parametrize("cut", [1, 3, 4, 7])
def test_a_cut_anywhere_is_found_with_the_frames_on_each_side(cut: int) -> None:
    record = _spliced(8, cut)
    check = identity_check(record, set(record["frames"]), THRESHOLD)

    assert check.changed and [f.reason for f in check.findings] == [ReasonCode.IDENTITY_CHANGED]
    assert sorted([list(check.sides[0]), list(check.sides[1])]) == sorted(
        [record["frames"][:cut], record["frames"][cut:]]
    )
    assert check.min_similarity == 0.5


def test_one_person_throughout_is_no_finding() -> None:
    record = _spliced(8, 0)  # no cut: every pair 0.9
    check = identity_check(record, set(record["frames"]), THRESHOLD)
    assert not check.changed and check.findings == () and check.min_similarity == 0.9


def test_only_evidence_frames_count() -> None:
    """Frame 007 shows someone else but failed a gate (e.g. blurred): it is not evidence, no change."""
    record = _spliced(8, 7)
    evidence = set(record["frames"][:7])
    assert not identity_check(record, evidence, THRESHOLD).changed
    assert identity_check(record, evidence | {"007"}, THRESHOLD).changed


def test_the_threshold_is_the_policy_s() -> None:
    record = _spliced(6, 3, across=0.8)
    assert not identity_check(record, set(record["frames"]), 0.78).changed
    assert identity_check(record, set(record["frames"]), 0.85).changed


def test_no_record_or_an_undescribed_evidence_frame_is_no_face_evidence() -> None:
    record = _spliced(4, 0)
    missing = identity_check(None, {"000"}, THRESHOLD)
    undescribed = identity_check(record, {"000", "009"}, THRESHOLD)
    for check in (missing, undescribed):
        assert [f.reason for f in check.findings] == [ReasonCode.NO_FACE_EVIDENCE] and not check.changed


@pytest.mark.parametrize(
    "record",
    [
        {"frames": ["000", "001"], "similarity": [[1.0, 0.5]]},  # not square
        {"frames": ["000", "000"], "similarity": [[1.0, 0.5], [0.5, 1.0]]},  # repeated frame
        {"frames": ["000", "001"], "similarity": [[1.0, 1.5], [1.5, 1.0]]},  # out of range
        {"frames": ["000", "001"], "similarity": [[1.0, float("nan")], [0.5, 1.0]]},
        {"frames": ["000"]},
    ],
)
def test_a_malformed_record_is_a_pipeline_fault(record: dict) -> None:
    with pytest.raises(FaceEvidenceError):
        identity_check(record, {"000"}, THRESHOLD)
