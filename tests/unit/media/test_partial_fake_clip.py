"""A spliced clip, end to end below the workflow (issue 24): a genuine recording with a confident attack
stretch in the middle, decoded and sampled by the extractor's code (PyAV), scored by the calibration
demo's toy ONNX model, decided by the decide function's policy code. The mean PASSes it; the rule does not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kyc.domain.contract import FrameImage
from kyc.domain.outcomes import Decision
from kyc.domain.policy import DecisionPolicy, FrameEvidence, decide_outcome
from kyc.domain.reasons import ReasonCode as R
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams, sample_frames
from kyclocal.calibration_demo import write_demo_model
from tests.fixtures.clips import drawn_subject_clip

pytest.importorskip("onnxruntime")


def _evidence(clip: Path, model_config: Path, frames: int) -> list[FrameEvidence]:
    from kycserve import load_model

    model = load_model("onnx", onnx_config=model_config)
    sample = sample_frames(clip, SamplingParams(frame_count=frames), MediaLimits())
    scores = model.predict([FrameImage(f"{f.index:03d}", f.content_type, f.data) for f in sample.frames])
    return [FrameEvidence(s.frame_id, s.p_fake, len(s.faces) or None) for s in scores]


def test_a_quarter_of_the_clip_faked_in_the_middle_is_not_a_pass(tmp_path: Path) -> None:
    # genuine: a cool cast (the toy scores ~0.01); attack: the strongest cast (~0.995), 25 % mid-clip
    clip = drawn_subject_clip(
        tmp_path / "splice.mp4", seconds=4.0, red_cast=lambda t: 90 if 0.375 <= t < 0.625 else -30, person=1
    )
    evidence = _evidence(clip, write_demo_model(tmp_path / "model"), 32)
    called = [e.p_fake is not None and e.p_fake >= 0.5 for e in sorted(evidence, key=lambda e: e.frame_id)]
    assert 5 <= sum(called) <= 11  # the sampled frames saw the stretch (a quarter of 32, give or take)
    policy = DecisionPolicy(pass_threshold=0.3, reject_threshold=0.8)  # as `make calibration-demo` binds
    mean_only = replace(policy, max_fake_run_frames=10**6, max_fake_frame_fraction=1.0)

    before = decide_outcome(evidence, frames_sampled=len(evidence), policy=mean_only)
    after = decide_outcome(evidence, frames_sampled=len(evidence), policy=policy)

    assert before.decision == Decision.PASS  # the dilution the issue reports
    assert (after.decision, after.reasons) == (Decision.REVIEW, (R.SUSTAINED_FAKE_FRAMES,))
