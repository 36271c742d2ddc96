"""Face gates and item 2 ("no PASS without face evidence"), driven with hand-written observations."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kyc.domain.face_gates import FaceGates
from kyc.domain.faces import (
    FaceEvidenceError,
    assess_frame,
    face_findings,
    frame_faces_from_dict,
    frames_to_check,
)
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
from kyc.domain.reasons import ReasonCode as R

GATES = FaceGates()


def face(**over: Any) -> dict[str, Any]:
    """A well-lit, sharp, frontal face covering 40 % x 50 % of a 640x480 frame."""
    base = {
        "box": {"left": 0.3, "top": 0.2, "width": 0.4, "height": 0.5},
        "confidence": 99.5,
        "pose": {"yaw": 3.0, "pitch": -4.0, "roll": 1.0},
        "brightness": 60.0,
        "sharpness": 55.0,
    }
    for key, value in over.items():
        if key in ("left", "top", "width", "height"):
            base["box"] = base["box"] | {key: value}
        elif key in ("yaw", "pitch", "roll"):
            base["pose"] = base["pose"] | {key: value}
        else:
            base[key] = value
    return base


def frame(faces: list[dict[str, Any]], frame_id: str = "000", w: int = 640, h: int = 480, **extra: Any):
    return frame_faces_from_dict(
        {"frame_id": frame_id, "image_width": w, "image_height": h, "faces": faces} | extra
    )


def issues(*faces: dict[str, Any], **kw: Any) -> tuple[R, ...]:
    return assess_frame(frame(list(faces), **kw), GATES).issues


def test_one_good_face_is_evidence() -> None:
    assessment = assess_frame(frame([face()]), GATES)
    assert assessment.evidence and assessment.face_count == 1


@pytest.mark.parametrize(
    ("faces", "expected"),
    [
        ([], (R.NO_FACE,)),
        ([face(confidence=89.9)], (R.NO_FACE,)),  # below min_confidence: not a face
        ([face(), face(left=0.0)], (R.MULTIPLE_FACES,)),
        ([face(), face(confidence=50.0)], ()),  # an unconfident second detection is ignored
        # 0.1 * 480 = 48 px face height < 0.15 * 480 = 72 px
        ([face(height=0.1)], (R.FACE_TOO_SMALL,)),
        ([face(width=0.12)], ()),  # 0.12 * 640 = 76.8 px >= 72 px: the short side is what counts
        ([face(width=0.11)], (R.FACE_TOO_SMALL,)),  # 70.4 px
        ([face(yaw=35.0)], ()),  # at the limit is allowed
        ([face(yaw=-36.0)], (R.FACE_POSE,)),
        ([face(pitch=31.0)], (R.FACE_POSE,)),
        ([face(roll=-31.0)], (R.FACE_POSE,)),
        ([face(brightness=19.9)], (R.FACE_TOO_DARK,)),
        ([face(sharpness=9.9)], (R.FACE_BLURRED,)),
        ([face(brightness=5.0, sharpness=2.0, yaw=80.0)], (R.FACE_POSE, R.FACE_TOO_DARK, R.FACE_BLURRED)),
    ],
)
def test_frame_gates(faces: list[dict[str, Any]], expected: tuple[R, ...]) -> None:
    assert issues(*faces) == expected


def test_refused_image_is_a_frame_without_face() -> None:
    assert issues(face(), error="InvalidImageFormatException") == (R.NO_FACE,)


@pytest.mark.parametrize(
    "bad",
    [
        {"frame_id": "000", "image_width": 640, "image_height": 480},  # no faces list
        {"frame_id": "000", "image_width": 0, "image_height": 480, "faces": []},
        {"frame_id": "000", "image_width": 640, "image_height": 480, "faces": [face(brightness=math.nan)]},
        {"frame_id": "000", "image_width": 640, "image_height": 480, "faces": [face(confidence="99")]},
    ],
)
def test_malformed_evidence_is_an_error_not_a_missing_face(bad: dict[str, Any]) -> None:
    with pytest.raises(FaceEvidenceError):
        frame_faces_from_dict(bad)


def _assess(per_frame: list[list[dict[str, Any]]], gates: FaceGates = GATES):
    return [assess_frame(frame(f, f"{i:03d}"), gates) for i, f in enumerate(per_frame)]


def test_findings_fire_above_the_tolerated_share() -> None:
    policy = DecisionPolicy()  # min_face_fraction 0.5, max_multi_face_fraction 0.25, gates 0.25
    # 8 frames: 2 dark (25 %: tolerated), 3 blurred (37.5 %: raised), 1 with two faces (12.5 %)
    frames = [[face()]] * 2 + [[face(brightness=5.0)]] * 2 + [[face(sharpness=1.0)]] * 3 + [[face(), face()]]
    found = face_findings(_assess(frames), policy)
    assert found == [Finding(R.FACE_BLURRED, Effect.NO_PASS)]


def test_no_face_in_most_frames_and_no_frames_at_all() -> None:
    policy = DecisionPolicy()
    assert face_findings(_assess([[]] * 5 + [[face()]] * 4), policy) == [Finding(R.NO_FACE, Effect.NO_PASS)]
    assert face_findings(_assess([[]] * 4 + [[face()]] * 4), policy) == []  # exactly half: tolerated
    assert face_findings([], policy) == [Finding(R.NO_FACE_EVIDENCE, Effect.NO_PASS)]


def test_gate_thresholds_come_from_the_policy_override() -> None:
    strict = DecisionPolicy.from_mapping({"face_gates": {"min_brightness": 70}})
    assert strict.face_gates["min_brightness"] == 70.0 and strict.face_gates["min_sharpness"] == 10.0
    gates = FaceGates.from_mapping(strict.face_gates)
    found = face_findings(_assess([[face()]] * 4, gates), strict)  # brightness 60 < 70 on every frame
    assert found == [Finding(R.FACE_TOO_DARK, Effect.NO_PASS)]
    assert strict.to_dict()["face_gates"]["min_brightness"] == 70.0


@pytest.mark.parametrize(
    "gates", [{"min_brightnes": 10}, {"max_yaw_deg": 200}, {"min_sharpness": True}, {"min_confidence": "90"}]
)
def test_bad_gate_values_are_refused(gates: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        DecisionPolicy.from_mapping({"face_gates": gates})


# ----------------------------------------------------------------- item 2: no PASS without evidence
POLICY = DecisionPolicy(min_frames_scored=4)


def _whole_frame(n: int, p: float = 0.01) -> list[FrameEvidence]:
    return [FrameEvidence(f"{i:03d}", p, None) for i in range(n)]


def test_whole_frame_model_passes_only_with_face_stage_evidence_on_enough_scored_frames() -> None:
    evidence = _whole_frame(8)
    without = decide_outcome(evidence, frames_sampled=8, policy=POLICY, face_evidence=frozenset())
    assert (without.decision, without.reasons) == (Decision.REVIEW, (R.NO_FACE_EVIDENCE,))
    three = decide_outcome(
        evidence, frames_sampled=8, policy=POLICY, face_evidence=frozenset({"000", "001", "002"})
    )
    assert three.decision == Decision.REVIEW
    four = decide_outcome(
        evidence, frames_sampled=8, policy=POLICY, face_evidence=frozenset({"000", "001", "002", "007"})
    )
    assert (four.decision, four.reasons) == (Decision.PASS, (R.LOW_FAKE_SCORE,))


def test_face_evidence_on_frames_the_model_did_not_score_does_not_count() -> None:
    evidence = _whole_frame(6) + [FrameEvidence(f"{i:03d}", None, None) for i in range(6, 8)]
    policy = DecisionPolicy(min_frames_scored=4, allow_pass_on_partial=True)
    seen = frozenset({"000", "001", "002", "006", "007"})  # 006 and 007 were never scored
    verdict = decide_outcome(evidence, frames_sampled=8, policy=policy, face_evidence=seen)
    assert verdict.decision == Decision.REVIEW and R.NO_FACE_EVIDENCE in verdict.reasons


def test_model_mode_needs_faces_reported_for_every_scored_frame() -> None:
    faces = [FrameEvidence(f"{i:03d}", 0.01, 1) for i in range(7)]
    assert decide_outcome(
        [*faces, FrameEvidence("007", 0.01, 1)], frames_sampled=8, policy=POLICY
    ).decision == (Decision.PASS)
    unreported = decide_outcome([*faces, FrameEvidence("007", 0.01, None)], frames_sampled=8, policy=POLICY)
    assert (unreported.decision, unreported.reasons) == (Decision.REVIEW, (R.NO_FACE_EVIDENCE,))


def test_a_face_finding_caps_pass_but_leaves_reject() -> None:
    seen = frozenset(f"{i:03d}" for i in range(8))
    dark = [Finding(R.FACE_TOO_DARK, Effect.NO_PASS)]
    low = decide_outcome(_whole_frame(8), frames_sampled=8, policy=POLICY, face_evidence=seen)
    high = decide_outcome(_whole_frame(8, 0.99), frames_sampled=8, policy=POLICY, face_evidence=seen)
    assert apply_findings(low, dark).decision == Decision.REVIEW
    assert apply_findings(low, dark).reasons == (R.FACE_TOO_DARK,)
    assert apply_findings(high, dark).decision == Decision.REJECT


@pytest.mark.parametrize(
    ("total", "wanted", "expected"),
    [
        (32, 0, list(range(32))),  # 0: all
        (8, 12, list(range(8))),  # more wanted than sampled: all
        (32, 4, [0, 10, 21, 31]),  # first and last, evenly between (31/3 = 10.33 steps)
        (9, 3, [0, 4, 8]),
        (5, 1, [2]),  # one frame: the middle
        (0, 4, []),
    ],
)
def test_frames_to_check_spread_over_the_timeline(total: int, wanted: int, expected: list[int]) -> None:
    assert frames_to_check(total, wanted) == expected


# --- issue 24: face evidence and scores cover the same frames --------------------------------------
def _abstaining_model(abstention: str) -> list[FrameEvidence]:
    """Half the frames scored low; on the other half the model abstains, although the face stage saw
    one good face on every frame."""
    low = [FrameEvidence(f"{i:03d}", 0.01, 1) for i in range(4)]
    if abstention == "no_face":
        rest = [FrameEvidence(f"{i:03d}", None, 0) for i in range(4, 8)]
    elif abstention == "null":
        rest = [FrameEvidence(f"{i:03d}", None, None) for i in range(4, 8)]
    else:  # scored on the frame centre but flagged no_face (the model's NO_FACE_CENTRE mode)
        rest = [FrameEvidence(f"{i:03d}", 0.01, 0) for i in range(4, 8)]
    return low + rest


@pytest.mark.parametrize("abstention", ["no_face", "null", "centre"])
def test_model_abstaining_where_the_face_stage_saw_a_face_counts_against_pass(abstention: str) -> None:
    policy = DecisionPolicy(min_frames_scored=4)
    seen = {f"{i:03d}" for i in range(8)}

    verdict = decide_outcome(
        _abstaining_model(abstention), frames_sampled=8, policy=policy, face_evidence=seen, face_checked=seen
    )

    assert verdict.decision == Decision.REVIEW
    assert R.PARTIAL_SCORING in verdict.reasons
    # the same abstentions where the face stage saw no face are honest: the model agreed
    honest = decide_outcome(
        _abstaining_model(abstention),
        frames_sampled=8,
        policy=policy,
        face_evidence={f"{i:03d}" for i in range(4)},
        face_checked=seen,
    )
    assert honest.decision == (Decision.REVIEW if abstention == "null" else Decision.PASS)


def test_scored_frames_the_face_stage_never_checked_count_for_nothing_towards_pass() -> None:
    """FaceCheckFrames 8 of 32: the eight checked frames (good faces) score 0.4, the 24 never checked
    0.01. By hand, mean logit over all 32: (8 * -0.405 + 24 * -4.595) / 32 = -3.55, sigmoid 0.028: the
    unchecked frames would dilute a PASS; over the checked frames alone the score is 0.4 >= 0.2."""
    checked = {f"{i:03d}" for i in range(0, 32, 4)}
    evidence = [FrameEvidence(f"{i:03d}", 0.4 if f"{i:03d}" in checked else 0.01, None) for i in range(32)]
    policy = DecisionPolicy(min_frames_scored=8)

    partial = decide_outcome(
        evidence, frames_sampled=32, policy=policy, face_evidence=checked, face_checked=checked
    )
    every = {f"{i:03d}" for i in range(32)}
    unbounded = decide_outcome(evidence, frames_sampled=32, policy=policy, face_evidence=checked)

    assert partial.score is not None and partial.score < 0.2
    assert (partial.decision, partial.reasons) == (Decision.REVIEW, (R.MODEL_UNCERTAIN,))
    assert unbounded.decision == Decision.PASS  # what the same evidence got without the coverage rule
    low = [FrameEvidence(e.frame_id, 0.01, None) for e in evidence]  # checked frames low too: PASS
    assert (
        decide_outcome(
            low, frames_sampled=32, policy=policy, face_evidence=checked, face_checked=checked
        ).decision
        == Decision.PASS
    )
    assert (
        decide_outcome(
            evidence, frames_sampled=32, policy=policy, face_evidence=every, face_checked=every
        ).decision
        == Decision.PASS
    )
