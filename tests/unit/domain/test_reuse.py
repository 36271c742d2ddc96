"""Reuse rules: multi-index bands and their pigeonhole guarantee at the documented radius, the
clip-level rule (several frames, one earlier submission, never itself, never a later one), what a
match means over time (same recording, face swap, shared scene), window and retention, the bound on
the decision. Expected values are written by hand or come from a brute-force search."""

from __future__ import annotations

import calendar
import math
import random

import pytest

from kyc.domain.outcomes import Decision
from kyc.domain.policy import DecisionPolicy, FrameEvidence, apply_findings, decide_outcome
from kyc.domain.reasons import ReasonCode
from kyc.domain.reuse import (
    FACE_RADIUS,
    FrameSignature,
    IndexedFrame,
    ReuseParams,
    ReuseParamsError,
    band_layout,
    bands,
    combine,
    exact_matches,
    expires_at,
    face_boxes,
    face_rolls,
    frames_in_step,
    index_entries,
    index_time,
    path_correlation,
    perceptual_matches,
    required_frames,
    reuse_findings,
    reuse_result,
    sheet_lines,
    window_start,
)

AT = "2026-11-01T10:00:00.000000Z"
LATER = "2026-11-01T10:00:01.000000Z"
PARAMS = ReuseParams(max_distance=8, min_matching_frames=4)


def _flip(value: int, bits: list[int]) -> int:
    for b in bits:
        value ^= 1 << b
    return value


def _path(t: float, person: float = 0.0, mirror: bool = False) -> tuple[float, float, float]:
    """A person's own sway: three sinusoids whose frequencies and phases the person sets."""
    rng = random.Random(person)
    terms = [(rng.uniform(0.5, 3.0), rng.uniform(0, 6.3), rng.uniform(0.02, 0.08)) for _ in range(6)]
    x = 0.5 + sum(a * math.sin(f * t + p) for f, p, a in terms[:3])
    y = 0.42 + sum(a * math.sin(f * t + p) for f, p, a in terms[3:])
    return (1 - x if mirror else x, y, 0.3)


BODY = 0x0B0D_0B0D_0B0D


def _clip(
    scenes: list[int], *, face: int | None = 0xF0F0, body: int | None = BODY, phase: float = 0.0, **kw
) -> list[FrameSignature]:
    """Frames 0.2 s apart, the face moving along a path set by ``phase``; ``flip_y`` moves it the
    other way up and down (``None`` face and body: no face evidence)."""
    frames = []
    for i, h in enumerate(scenes):
        x, y, size = _path(0.2 * i, phase, kw.get("mirror", False))
        pos = (x, 0.84 - y if kw.get("flip_y") else y, size)
        frames.append(FrameSignature(i, 0.2 * i, h, face, pos if face is not None else None, body))
    return frames


def _indexed(sid: str, frames: list[FrameSignature], at: str = AT) -> list[IndexedFrame]:
    return [IndexedFrame(sid, at, f) for f in frames]


def _kinds(own: list[FrameSignature], candidates: list[IndexedFrame], at: str = LATER) -> dict[str, str]:
    found = perceptual_matches(own, candidates, own_submission_id="NEW", own_indexed_at=at, params=PARAMS)
    return {m.submission_id: m.kind for m in found}


# --- multi-index hashing -------------------------------------------------------------------------


def test_band_layout_is_radius_plus_one_contiguous_bands_covering_64_bits() -> None:
    layout = band_layout(8)
    assert len(layout) == 9
    assert [w for _, w in layout] == [8, 7, 7, 7, 7, 7, 7, 7, 7]  # 64 = 8 + 8 x 7, by hand
    assert layout[0] == (56, 8) and layout[-1] == (0, 7)
    assert band_layout(3) == ((48, 16), (32, 16), (16, 16), (0, 16))
    covered = 0
    for shift, width in layout:
        mask = ((1 << width) - 1) << shift
        assert covered & mask == 0
        covered |= mask
    assert covered == (1 << 64) - 1


def test_bands_by_hand_name_the_hash_version_and_layout() -> None:
    keys = bands(0x0123456789ABCDEF, 3)
    assert keys == ("r2m4b0#123", "r2m4b1#4567", "r2m4b2#89ab", "r2m4b3#cdef")
    assert bands(0x0123456789ABCDEF, 8)[0] == "r2m9b0#1"  # the top 8 bits, 0x01
    # an index written by r1 is read with r1's keys (and r1's hashes: functions/reuse/app.py)
    assert bands(0x0123456789ABCDEF, 3, "r1") == ("r1m4b0#123", "r1m4b1#4567", "r1m4b2#89ab", "r1m4b3#cdef")


@pytest.mark.parametrize("radius", [3, 5, 8])
def test_every_hash_within_the_radius_shares_a_band_and_the_old_layout_did_not(radius: int) -> None:
    rng = random.Random(radius)
    for _ in range(3000):
        h = rng.getrandbits(64)
        near = _flip(h, rng.sample(range(64), rng.randint(0, radius)))
        assert set(bands(h, radius)) & set(bands(near, radius))
    # the case: 4 bands of 16 bits miss a hash 4 bits away with one flip in each band
    h = rng.getrandbits(64)
    spread = _flip(h, [0, 16, 32, 48])
    assert not set(bands(h, 3)) & set(bands(spread, 3))
    assert set(bands(h, 8)) & set(bands(spread, 8))
    worst = _flip(h, [56, 49, 42, 35, 28, 21, 14, 7])  # one flip in each of 8 of the 9 bands
    assert set(bands(h, 8)) & set(bands(worst, 8))


# --- the clip-level rule and what it means -------------------------------------------------------


def test_the_same_recording_with_the_same_face_is_reused_even_mirrored() -> None:
    rng = random.Random(1)
    scenes = [rng.getrandbits(64) for _ in range(10)]
    earlier = _indexed("OLD", _clip(scenes))
    copy = _clip([_flip(h, rng.sample(range(64), 6)) for h in scenes], mirror=True)
    assert _kinds(copy, earlier) == {"OLD": "perceptual"}
    # 9 bits off on every frame: beyond the radius, no match
    far = _clip([_flip(h, rng.sample(range(64), 9)) for h in scenes])
    assert _kinds(far, earlier) == {}


def test_the_same_recording_with_another_face_is_a_face_swap() -> None:
    rng = random.Random(2)
    scenes = [rng.getrandbits(64) for _ in range(10)]
    swapped = _clip(scenes, face=0xF0F0 ^ 0xFFFF_FFFF_0000)  # 32 bits off: another face
    assert _kinds(swapped, _indexed("OLD", _clip(scenes))) == {"OLD": "face_swap"}


# A stranger at a kiosk passes the spots the earlier applicant passed, at other moments: frame i of
# the later clip looks like frame SCRAMBLE[i] of the earlier one, an order no speed or offset lines up.
SCRAMBLE = (5, 2, 7, 0, 3, 6, 1, 4, 9, 8)


def _moments(clip: list[FrameSignature], order: tuple[int, ...]) -> list[FrameSignature]:
    """The clip's scenes shown in ``order`` (the other parts of each frame unchanged)."""
    return [
        FrameSignature(f.index, f.pts_s, clip[o].scene, f.face, f.position, f.body)
        for f, o in zip(clip, order, strict=True)
    ]


def test_another_person_in_the_same_fixed_scene_is_a_shared_scene_not_reuse() -> None:
    rng = random.Random(3)
    scenes = [rng.getrandbits(64) for _ in range(10)]
    earlier = _indexed("OLD", _clip(scenes))
    other_body = BODY ^ 0xFFFF_FFFF_0000_0000
    near = [_flip(h, rng.sample(range(64), 4)) for h in scenes]
    stranger = _moments(_clip(near, face=0xABCDEF, body=other_body, phase=2.5), SCRAMBLE)
    assert frames_in_step(stranger, _clip(scenes), PARAMS.max_distance) <= 5  # hand-checked: <= half
    assert _kinds(stranger, earlier) == {"OLD": "shared_scene"}
    # the same body too (a uniform): still scattered in time, still no finding
    assert _kinds(_moments(_clip(near, face=0xABCDEF, phase=2.5), SCRAMBLE), earlier) == {
        "OLD": "shared_scene"
    }
    # the same person filmed again there in other clothes: not reuse either
    assert _kinds(_clip(near, body=other_body, phase=2.5), earlier) == {"OLD": "shared_scene"}


def test_another_face_is_a_face_swap_only_when_the_meetings_are_in_step() -> None:
    """Issue 24: the same scene with another face is a swap over a stolen recording only when the
    frames meet the earlier clip at the moments one time alignment gives (the recording's own
    timeline), whatever the body hash says (a pasted face of another size moves the body's window).
    Met at scattered moments it is a stranger at the same kiosk (no finding)."""
    rng = random.Random(11)
    scenes = [rng.getrandbits(64) for _ in range(8)]
    earlier = _indexed("OLD", _clip(scenes))
    other_face, other_body = 0xF0F0 ^ 0xFFFF_FFFF_0000, BODY ^ 0xFFFF_FFFF_0000_0000

    def later(bits: list[int], order: tuple[int, ...], body: int, speed: float = 1.0) -> list[FrameSignature]:
        return [
            FrameSignature(
                i,
                0.2 * i / speed,
                _flip(scenes[o], rng.sample(range(64), bits[i])),
                other_face,
                (0.5, 0.4, 0.3),
                body,
            )
            for i, o in enumerate(order)
        ]

    in_order = tuple(range(8))
    five = [8, 6, 8, 8, 6, 30, 30, 30]  # 5 of 8 met, at the edge of the radius
    assert _kinds(later(five, in_order, other_body), earlier) == {"OLD": "face_swap"}
    assert _kinds(later(five, in_order, BODY), earlier) == {"OLD": "face_swap"}
    # sped up 1.25x by the re-encoder: one speed lines it up again
    assert _kinds(later(five, in_order, other_body, speed=1.25), earlier) == {"OLD": "face_swap"}
    # the same meetings at scattered moments: a stranger; the same body does not make it one recording
    assert _kinds(later(five, SCRAMBLE[:8], BODY), earlier) == {"OLD": "shared_scene"}
    # only half the frames in step (4 of 8 met): not more than LOCKSTEP_SHARE, a chance meeting ...
    four = [8, 6, 8, 8, 30, 30, 30, 30]
    assert _kinds(later(four, in_order, other_body), earlier) == {"OLD": "shared_scene"}
    # ... unless the body around the face is the same on most frames as well (SWAP_BODY_SHARE)
    assert _kinds(later(four, in_order, BODY), earlier) == {"OLD": "face_swap"}
    match = perceptual_matches(
        later(five, in_order, other_body),
        earlier,
        own_submission_id="NEW",
        own_indexed_at=LATER,
        params=PARAMS,
    )[0]
    assert match.frames_in_step == 5 and match.to_dict()["frames_in_step"] == 5


def test_a_swapped_face_that_resembles_the_original_in_another_pose_is_still_a_swap() -> None:
    """Order-free, half the faces of the later clip lie within FACE_RADIUS of *some* face of the
    earlier one (the pasted face resembles the original at another moment, in another pose);
    compared with the face filmed at the same moment (the clips are in step) it is another face on
    every frame: a face swap, not MEDIA_REUSED. A copy's face at the same moment is the same face."""
    rng = random.Random(5)
    scenes = [rng.getrandbits(64) for _ in range(8)]
    poses = [rng.getrandbits(64) for _ in range(8)]  # the original's face, one pose per moment
    earlier = _indexed(
        "OLD", [FrameSignature(i, 0.2 * i, h, poses[i], (0.5, 0.4, 0.3), BODY) for i, h in enumerate(scenes)]
    )

    def later(face_of: list[int]) -> list[FrameSignature]:
        return [
            FrameSignature(i, 0.2 * i, _flip(h, rng.sample(range(64), 4)), face_of[i], (0.5, 0.4, 0.3), BODY)
            for i, h in enumerate(scenes)
        ]

    # half the pasted faces resemble the original in another pose, half resemble none of them
    shifted = [
        _flip(poses[(i + 3) % 8], rng.sample(range(64), 4)) if i % 2 else rng.getrandbits(64)
        for i in range(8)
    ]
    same = sum(min(bin(f ^ p).count("1") for p in poses) <= 6 for f in shifted)
    assert same == 4  # order-free: not clearly another face (that needs 6 of 8), so MEDIA_REUSED before
    assert _kinds(later(shifted), earlier) == {"OLD": "face_swap"}
    copy = [_flip(p, rng.sample(range(64), 4)) for p in poses]
    assert _kinds(later(copy), earlier) == {"OLD": "perceptual"}


def test_in_doubt_the_fraud_signal_is_kept() -> None:
    """Half the frames with another body, or another face: not clearly another person, so reuse."""
    rng = random.Random(8)
    scenes = [rng.getrandbits(64) for _ in range(10)]
    earlier = _indexed("OLD", _clip(scenes))
    half_body = [
        FrameSignature(
            f.index, f.pts_s, f.scene, f.face, f.position, f.body ^ (0xFFFF_FFFF if f.index % 2 else 0)
        )
        for f in _clip(scenes)
    ]
    assert _kinds(half_body, earlier) == {"OLD": "perceptual"}
    half_face = [
        FrameSignature(
            f.index, f.pts_s, f.scene, f.face ^ (0xFFFF_FFFF if f.index % 2 else 0), f.position, f.body
        )
        for f in _clip(scenes)
    ]
    assert _kinds(half_face, earlier) == {"OLD": "perceptual"}
    # a face FACE_RADIUS bits off (a copy's detector jitter) is the same face; one more on every frame
    # is another
    within, beyond = (1 << FACE_RADIUS) - 1, (1 << (FACE_RADIUS + 1)) - 1
    assert _kinds(_clip(scenes, face=0xF0F0 ^ within), earlier) == {"OLD": "perceptual"}
    assert _kinds(_clip(scenes, face=0xF0F0 ^ beyond), earlier) == {"OLD": "face_swap"}


def test_path_correlation_finds_speed_and_offset_and_ignores_a_still_face() -> None:
    original = _clip([1] * 20)
    # the copy plays 1.25x faster and starts 0.6 s in: its time t shows the original's 1.25 t + 0.6
    fast = [FrameSignature(i, 0.16 * i, 1, 1, _path(1.25 * 0.16 * i + 0.6)) for i in range(12)]
    assert path_correlation(fast, original, 4) >= 0.99
    upside_down = _clip([1] * 20, flip_y=True)
    assert path_correlation(upside_down, original, 4) < 0.5
    mirrored = _clip([1] * 20, mirror=True)
    assert path_correlation(mirrored, original, 4) >= 0.99
    still = [FrameSignature(i, 0.2 * i, 1, 1, (0.5, 0.4, 0.3)) for i in range(10)]
    assert path_correlation(still, original, 4) is None


def test_without_face_evidence_the_scene_decides_as_before() -> None:
    rng = random.Random(4)
    scenes = [rng.getrandbits(64) for _ in range(6)]
    bare = [FrameSignature(i, 0.2 * i, h) for i, h in enumerate(scenes)]
    assert _kinds(bare, _indexed("OLD", bare)) == {"OLD": "perceptual"}
    assert _kinds(_clip(scenes, face=None, body=None), _indexed("OLD", _clip(scenes))) == {
        "OLD": "perceptual"
    }


def test_one_coincidental_frame_never_flags_and_frames_must_match_one_submission() -> None:
    rng = random.Random(5)
    scenes = [rng.getrandbits(64) for _ in range(8)]
    own = _clip(scenes)
    assert _kinds(own, _indexed("A", _clip(scenes[:1]))) == {}
    split = _indexed("A", _clip(scenes[:2])) + _indexed("B", _clip(scenes[2:4]))
    assert _kinds(own, split) == {}


def test_the_frames_that_must_meet_grow_with_the_clip_so_more_frames_are_no_more_chances() -> None:
    """With faces: 4 of 8 frames (half) meet: reuse; 4 of 20 no longer do (half is 10): a fixed count
    let kiosk strangers meet once a clip had more frames to try (issue 24, docs/provenance.md).
    Without faces the fixed count stands (the scene alone decides, on sparsely sampled fast content)."""
    counts = (1, 2, 3, 8, 9, 16, 32)
    assert [required_frames(n, PARAMS, with_faces=True) for n in counts] == [None, 2, 3, 4, 5, 8, 16]
    assert [required_frames(n, PARAMS) for n in counts] == [None, 2, 3, 4, 4, 4, 4]
    rng = random.Random(8)
    scenes = [rng.getrandbits(64) for _ in range(32)]
    earlier = _indexed("A", _clip(scenes[:16]))
    assert _kinds(_clip(scenes[:4] + scenes[16:20]), earlier) == {"A": "perceptual"}  # 4 of 8
    assert _kinds(_clip(scenes[:4] + scenes[16:]), earlier) == {}  # 4 of 20
    assert _kinds(_clip(scenes[:10] + scenes[16:26]), earlier) == {"A": "perceptual"}  # 10 of 20
    faceless = _indexed("A", _clip(scenes[:16], face=None, body=None))
    assert _kinds(_clip(scenes[:4] + scenes[16:], face=None, body=None), faceless) == {"A": "perceptual"}


def test_own_entries_and_later_submissions_never_match() -> None:
    rng = random.Random(6)
    scenes = [rng.getrandbits(64) for _ in range(6)]
    own = _clip(scenes)
    assert _kinds(own, [IndexedFrame("NEW", AT, f) for f in own]) == {}
    # two copies screened at the same moment: only the later one (by time, then id) is marked
    at_once = [IndexedFrame("ZZZ", LATER, f) for f in own]
    assert _kinds(own, at_once, at=LATER) == {}  # "NEW" < "ZZZ": NEW is the earlier upload
    found = perceptual_matches(
        own, _indexed("NEW", own, LATER), own_submission_id="ZZZ", own_indexed_at=LATER, params=PARAMS
    )
    assert [m.submission_id for m in found] == ["NEW"]
    assert _kinds(own, _indexed("NEXT", own, "2026-11-01T10:00:02.000000Z")) == {}


def test_exact_matches_only_earlier_and_combine_orders_findings_first() -> None:
    entries = [
        {"submission_id": "NEW", "indexed_at": LATER},
        {"submission_id": "OLD", "indexed_at": AT},
        {"submission_id": "LATE", "indexed_at": "2026-11-02T00:00:00.000000Z"},
    ]
    exact = exact_matches(entries, own_submission_id="NEW", own_indexed_at=LATER)
    assert [(m.submission_id, m.kind, m.strength) for m in exact] == [("OLD", "exact", 1.0)]
    rng = random.Random(7)
    kiosk = [rng.getrandbits(64) for _ in range(8)]
    shared = perceptual_matches(
        _moments(_clip(kiosk, face=0xABCDEF, body=~BODY & (2**64 - 1), phase=2.5), SCRAMBLE[:8]),
        _indexed("KIOSK", _clip(kiosk)),
        own_submission_id="NEW",
        own_indexed_at=LATER,
        params=PARAMS,
    )
    ordered = combine(exact, shared)
    assert [(m.submission_id, m.kind) for m in ordered] == [("OLD", "exact"), ("KIOSK", "shared_scene")]
    result = reuse_result(ordered, params=PARAMS, frames_indexed=8, lookups=9)
    assert result["matched"] and result["match_count"] == 1 and result["shared_scene_count"] == 1
    only_shared = reuse_result(shared, params=PARAMS, frames_indexed=8, lookups=9)
    assert not only_shared["matched"] and reuse_findings(only_shared) == []


# --- index items, window, faces ------------------------------------------------------------------


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


def test_index_entries_are_deterministic_and_carry_the_signature() -> None:
    frames = [
        FrameSignature(0, 0.25, 0x0123456789ABCDEF, 0xFF, (0.5, 0.4, 0.3), 0xB0),
        FrameSignature(5, 1.5, None),  # a flat frame: not filed
    ]
    kwargs = {
        "submission_id": "S",
        "received_at": "2026-11-08T10:00:00Z",
        "sha256": "ab" * 32,
        "frames": frames,
    }
    params = ReuseParams(max_distance=3)
    first, again = index_entries(**kwargs, params=params), index_entries(**kwargs, params=params)
    assert first == again
    assert [(e["pk"], e["sk"]) for e in first] == [
        ("sha#" + "ab" * 32, "2026-11-08T10:00:00.000000Z#S"),
        ("r2m4b0#123", "2026-11-08T10:00:00.000000Z#S#0000"),
        ("r2m4b1#4567", "2026-11-08T10:00:00.000000Z#S#0000"),
        ("r2m4b2#89ab", "2026-11-08T10:00:00.000000Z#S#0000"),
        ("r2m4b3#cdef", "2026-11-08T10:00:00.000000Z#S#0000"),
    ]
    assert (
        first[1] | {"scene": "0123456789abcdef", "face": "00000000000000ff", "pos": "0.50000,0.40000,0.30000"}
        == first[1]
    )
    assert FrameSignature.from_item(first[1]) == frames[0]
    assert {e["expires_at"] for e in first} == {expires_at("2026-11-08T10:00:00Z", params)}


def test_face_boxes_take_the_largest_confident_face_and_fill_from_the_nearest_frame() -> None:
    def face(left: float, width: float, confidence: float = 99.0) -> dict:
        return {"box": {"left": left, "top": 0.2, "width": width, "height": width}, "confidence": confidence}

    evidence = [
        {"index": 0, "faces": [face(0.1, 0.1), face(0.5, 0.3)]},
        {"index": 4, "faces": [face(0.2, 0.2), face(0.0, 0.5, confidence=10.0)]},
        {"index": 6, "faces": [], "error": None},
    ]
    assert face_boxes(evidence, [0, 1, 3, 4, 6]) == [
        (0.5, 0.2, 0.3, 0.3),
        (0.5, 0.2, 0.3, 0.3),
        (0.2, 0.2, 0.2, 0.2),
        (0.2, 0.2, 0.2, 0.2),
        (0.2, 0.2, 0.2, 0.2),
    ]
    assert face_boxes([], [0, 1]) == [None, None]


def test_face_rolls_follow_the_face_each_frame_is_anchored_to_and_default_to_upright() -> None:
    def face(left: float, width: float, pose: object, confidence: float = 99.0) -> dict:
        box = {"left": left, "top": 0.2, "width": width, "height": width}
        return {"box": box, "confidence": confidence, "pose": pose}

    evidence = [
        {"index": 0, "faces": [face(0.1, 0.1, {"roll": 30.0}), face(0.5, 0.3, {"roll": -4.5})]},
        {
            "index": 4,
            "faces": [face(0.2, 0.2, {"roll": 3.0}), face(0.0, 0.5, {"roll": 9.0}, confidence=10.0)],
        },
        {"index": 5, "faces": [face(0.2, 0.2, None)]},  # no pose recorded
        {"index": 7, "faces": [face(0.2, 0.2, {"roll": 400.0})]},  # not a roll: not believed
    ]
    # the largest confident face's roll; a frame without faces takes the nearest frame's (as its box)
    assert face_rolls(evidence, [0, 1, 3, 4, 5, 7]) == [-4.5, -4.5, 3.0, 3.0, 0.0, 0.0]
    assert face_rolls([], [0, 1]) == [0.0, 0.0]


# --- the decision's bound ------------------------------------------------------------------------


def _verdict(p_fake: float):
    evidence = [FrameEvidence(f"f{i}", p_fake, face_count=1) for i in range(8)]
    return decide_outcome(evidence, frames_sampled=8, policy=DecisionPolicy())


def test_findings_turn_pass_into_review_keep_reject_and_name_the_kind() -> None:
    reused = {"checked": True, "matched": True, "matches": [{"submission_id": "A", "kind": "perceptual"}]}
    swapped = {"checked": True, "matched": True, "matches": [{"submission_id": "A", "kind": "face_swap"}]}
    legacy = {"checked": True, "matched": True, "matches": [{"submission_id": "A"}]}
    passed = apply_findings(_verdict(0.01), reuse_findings(reused))
    assert passed.decision == Decision.REVIEW and ReasonCode.MEDIA_REUSED in passed.reasons
    swap = apply_findings(_verdict(0.01), reuse_findings(swapped))
    assert swap.decision == Decision.REVIEW
    assert (
        ReasonCode.REUSED_RECORDING_FACE_SWAPPED in swap.reasons
        and ReasonCode.MEDIA_REUSED not in swap.reasons
    )
    rejected = apply_findings(_verdict(0.99), reuse_findings(swapped))
    assert (
        rejected.decision == Decision.REJECT and ReasonCode.REUSED_RECORDING_FACE_SWAPPED in rejected.reasons
    )
    assert [f.reason for f in reuse_findings(legacy)] == [ReasonCode.MEDIA_REUSED]
    assert reuse_findings({"checked": True, "matched": False, "matches": [{"kind": "shared_scene"}]}) == []
    assert reuse_findings(None) == []
    assert apply_findings(_verdict(0.01), reuse_findings(None)).decision == Decision.PASS


def test_the_sheet_points_the_reviewer_at_both_submissions_of_a_face_swap() -> None:
    earlier = "ab" * 32
    swap = {
        "submission_id": earlier,
        "kind": "face_swap",
        "strength": 0.75,
        "frames_compared": 8,
        "frames_in_step": 6,
        "indexed_at": "2026-11-01T10:00:00.000000Z",
    }
    result = {"matched": True, "match_count": 1, "matches": [swap]}
    assert sheet_lines(result) == [
        f"reused: face_swap match of {earlier[:16]}, strength 0.75",
        f"face swap over the recording of {earlier[:16]} (screened 2026-11-01), in step 6/8 frames:"
        " review both submissions",
    ]
    # a plain copy of another submission listed first: the swap still gets its line
    copy = {"submission_id": "cd" * 32, "kind": "perceptual", "strength": 1.0}
    both = {"matched": True, "match_count": 2, "matches": [copy, swap]}
    first, second = sheet_lines(both)
    assert first == f"reused: perceptual match of {'cd' * 8}, strength 1.0, 1 more"
    assert second.startswith(f"face swap over the recording of {earlier[:16]}")
    assert len(sheet_lines({"matched": True, "match_count": 1, "matches": [copy]})) == 1
