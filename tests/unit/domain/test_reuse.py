"""Reuse matching rules: band keys and their pigeonhole guarantee, the clip-level rule (several
frames, one earlier submission, never itself), the window and retention, the decision's bound."""

from __future__ import annotations

import calendar
import random

import pytest

from kyc.domain.outcomes import Decision
from kyc.domain.policy import DecisionPolicy, FrameEvidence, apply_findings, decide_outcome
from kyc.domain.reasons import ReasonCode
from kyc.domain.reuse import (
    BANDS,
    IndexedFrame,
    ReuseParams,
    ReuseParamsError,
    bands,
    combine,
    exact_matches,
    expires_at,
    index_entries,
    index_time,
    manifest_frames,
    perceptual_matches,
    reuse_findings,
    reuse_result,
    window_start,
)

AT = "2026-11-01T10:00:00.000000Z"
PARAMS = ReuseParams(max_distance=8, min_matching_frames=4)


def _flip(value: int, bits: list[int]) -> int:
    for b in bits:
        value ^= 1 << b
    return value


def _frames(sid: str, hashes: list[int]) -> list[IndexedFrame]:
    return [IndexedFrame(sid, i, h, AT) for i, h in enumerate(hashes)]


def test_bands_split_the_hash_into_four_16_bit_keys_by_hand() -> None:
    assert bands(0x0123456789ABCDEF) == ("b0#0123", "b1#4567", "b2#89ab", "b3#cdef")


def test_within_three_bits_always_shares_a_band() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        h = rng.getrandbits(64)
        near = _flip(h, rng.sample(range(64), rng.randint(0, BANDS - 1)))
        assert set(bands(h)) & set(bands(near))
    # four flips, one per band, can share none: the guarantee ends at BANDS - 1
    assert not set(bands(0)) & set(bands(_flip(0, [0, 16, 32, 48])))


def test_clip_matches_when_enough_frames_are_close_to_one_submission() -> None:
    rng = random.Random(1)
    original = [rng.getrandbits(64) for _ in range(8)]
    copy = [_flip(h, rng.sample(range(64), 6)) for h in original]  # 6 bits off each
    found = perceptual_matches(copy, _frames("A", original), own_submission_id="B", params=PARAMS)
    assert [(m.submission_id, m.frames_matched, m.frames_compared) for m in found] == [("A", 8, 8)]
    assert found[0].to_dict()["max_distance"] == 6 and found[0].strength == 1.0


def test_one_coincidental_frame_never_flags() -> None:
    rng = random.Random(2)
    original = [rng.getrandbits(64) for _ in range(8)]
    other = [rng.getrandbits(64) for _ in range(8)]
    other[3] = original[5]  # one identical frame (a black title card, a logo)
    assert perceptual_matches(other, _frames("A", original), own_submission_id="B", params=PARAMS) == []
    three = list(other)
    three[0], three[1] = original[0], original[1]
    assert perceptual_matches(three, _frames("A", original), own_submission_id="B", params=PARAMS) == []
    four = list(three)
    four[2] = original[2]
    assert len(perceptual_matches(four, _frames("A", original), own_submission_id="B", params=PARAMS)) == 1


def test_frames_must_match_the_same_earlier_submission() -> None:
    rng = random.Random(3)
    own = [rng.getrandbits(64) for _ in range(8)]
    spread = [IndexedFrame(f"S{i}", 0, h, AT) for i, h in enumerate(own)]  # each frame in another clip
    assert perceptual_matches(own, spread, own_submission_id="X", params=PARAMS) == []


def test_many_own_frames_close_to_one_earlier_frame_count_each_own_frame() -> None:
    """A static clip: all of its frames resemble the one frame an earlier clip had. Each own frame
    counts, so this is a match (the pictures are the same), but one own frame alone would not be."""
    still = 0x0F0F_F0F0_1234_ABCD
    own = [_flip(still, [i]) for i in range(6)]
    assert len(perceptual_matches(own, _frames("A", [still]), own_submission_id="B", params=PARAMS)) == 1
    assert perceptual_matches(own[:1], _frames("A", [still]), own_submission_id="B", params=PARAMS) == []


def test_short_clip_needs_all_its_frames_and_a_single_frame_clip_never_matches() -> None:
    rng = random.Random(4)
    original = [rng.getrandbits(64) for _ in range(3)]
    assert (
        len(perceptual_matches(original, _frames("A", original), own_submission_id="B", params=PARAMS)) == 1
    )
    two_of_three = [original[0], original[1], rng.getrandbits(64)]
    assert (
        perceptual_matches(two_of_three, _frames("A", original), own_submission_id="B", params=PARAMS) == []
    )


def test_own_entries_never_match_and_distance_bound_is_inclusive() -> None:
    rng = random.Random(6)
    original = [rng.getrandbits(64) for _ in range(4)]
    assert perceptual_matches(original, _frames("A", original), own_submission_id="A", params=PARAMS) == []
    at_bound = [_flip(h, list(range(8))) for h in original]
    beyond = [_flip(h, list(range(9))) for h in original]
    assert perceptual_matches(at_bound, _frames("A", original), own_submission_id="B", params=PARAMS)
    assert not perceptual_matches(beyond, _frames("A", original), own_submission_id="B", params=PARAMS)


def test_exact_matches_skip_self_and_combine_orders_exact_first() -> None:
    entries = [
        {"submission_id": "self", "indexed_at": AT},
        {"submission_id": "E", "indexed_at": "2026-11-01T09:00:00.000000Z"},
    ]
    exact = exact_matches(entries, own_submission_id="self")
    assert [m.submission_id for m in exact] == ["E"]
    rng = random.Random(7)
    original = [rng.getrandbits(64) for _ in range(4)]
    near = perceptual_matches(
        original, _frames("E", original) + _frames("P", original), own_submission_id="x", params=PARAMS
    )
    combined = combine(exact, near)
    assert [(m.submission_id, m.kind) for m in combined] == [("E", "exact"), ("P", "perceptual")]
    result = reuse_result(combined, params=PARAMS, frames_indexed=4, lookups=17)
    assert result["matched"] and result["matches"][0]["submission_id"] == "E"


def test_window_retention_and_sortable_times() -> None:
    params = ReuseParams(window_days=30, retention_days=7)
    assert params.effective_window_days == 7  # never looks past what the index keeps
    assert window_start("2026-11-08T10:00:00Z", params) == "2026-11-01T10:00:00.000000Z"
    assert expires_at("2026-11-08T10:00:00Z", params) == calendar.timegm((2026, 11, 15, 10, 0, 0))
    assert index_time("2026-11-08T11:00:00+01:00") == "2026-11-08T10:00:00.000000Z"
    assert index_time("2026-11-08T10:00:00.5Z") < index_time("2026-11-08T10:00:01Z")
    with pytest.raises(ReuseParamsError):
        ReuseParams(min_matching_frames=1)
    with pytest.raises(ReuseParamsError):
        ReuseParams(max_distance=True)  # type: ignore[arg-type]


def test_index_entries_are_deterministic_and_keyed_by_submission() -> None:
    manifest = {"frames": [{"index": 0, "phash": "0123456789abcdef"}, {"index": 5, "phash": None}]}
    frames = manifest_frames(manifest)
    assert frames == [(0, 0x0123456789ABCDEF)]  # the flat frame is not indexed
    kwargs = {
        "submission_id": "S",
        "received_at": "2026-11-08T10:00:00Z",
        "sha256": "ab" * 32,
        "frames": frames,
    }
    first, again = index_entries(**kwargs, params=PARAMS), index_entries(**kwargs, params=PARAMS)
    assert first == again
    assert [(e["pk"], e["sk"]) for e in first] == [
        ("sha#" + "ab" * 32, "2026-11-08T10:00:00.000000Z#S"),
        ("b0#0123", "2026-11-08T10:00:00.000000Z#S#0000"),
        ("b1#4567", "2026-11-08T10:00:00.000000Z#S#0000"),
        ("b2#89ab", "2026-11-08T10:00:00.000000Z#S#0000"),
        ("b3#cdef", "2026-11-08T10:00:00.000000Z#S#0000"),
    ]
    assert {e["expires_at"] for e in first} == {expires_at("2026-11-08T10:00:00Z", PARAMS)}


def _verdict(p_fake: float):
    evidence = [FrameEvidence(f"f{i}", p_fake, face_count=1) for i in range(8)]
    return decide_outcome(evidence, frames_sampled=8, policy=DecisionPolicy())


def test_a_match_turns_pass_into_review_and_keeps_reject() -> None:
    matched = {"checked": True, "matched": True, "matches": [{"submission_id": "A"}]}
    passed = apply_findings(_verdict(0.01), reuse_findings(matched))
    assert passed.decision == Decision.REVIEW and ReasonCode.MEDIA_REUSED in passed.reasons
    rejected = apply_findings(_verdict(0.99), reuse_findings(matched))
    assert rejected.decision == Decision.REJECT and ReasonCode.MEDIA_REUSED in rejected.reasons
    assert reuse_findings({"checked": True, "matched": False}) == []
    assert reuse_findings(None) == []
    assert apply_findings(_verdict(0.01), reuse_findings(None)).decision == Decision.PASS
