"""The same pipeline with the `onnx` model: a customer's exported classifier, no code changes.

A tiny ONNX model whose answer is known (p_fake rises with the red channel) lets the end-to-end
run reach every scored outcome: a red clip must be REJECTED; a blue test card, scored low by a
whole-frame model that saw no face, goes to REVIEW (test_pipeline_evidence.py shows the PASS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kyclocal.policy_file import artefact_of, role_played_policy
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip
from tests.integration.conftest import screen
from tests.unit.serving.helpers import write_onnx_config


@pytest.fixture(scope="module")
def onnx_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = write_onnx_config(tmp_path_factory.mktemp("onnx"), weight_red=20.0, bias=-10.0)
    # The template's thresholds, calibrated for tiny-red 1.0.0 (role-played): an uncalibrated model never
    # decides (test_calibration_journey.py).
    policy = role_played_policy(
        {"name": "tiny-red", "version": "1.0.0", "artefact_sha256": artefact_of(config)},
        pass_threshold=0.2,
        reject_threshold=0.9,
        frame_count=8,
    )
    settings = LocalStackSettings(model="onnx", onnx_config=config, frame_count=8, policy=policy)
    with LocalStack(settings) as running:
        yield running


@pytest.mark.parametrize(
    ("colour", "decision", "reason"),
    [
        ((250, 10, 10), "REJECT", "HIGH_FAKE_SCORE"),
        # A whole-frame model scores the blue test card low, but it saw no face: never a PASS.
        ((10, 10, 250), "REVIEW", "NO_FACE_EVIDENCE"),
    ],
)
def test_pipeline_onnx_whole_frame_model_rejects_but_never_passes(
    onnx_stack: LocalStack, tmp_path: Path, colour: tuple[int, int, int], decision: str, reason: str
) -> None:
    clip = make_clip(tmp_path / "solid.mp4", width=160, height=120, fps=10, seconds=2.0, colour=colour)

    item = screen(onnx_stack, clip, key=f"uploads/onnx/{decision.lower()}.mp4")

    assert item["decision"] == decision, item
    # the face stage saw no face on the solid card either: NO_FACE beside the model's reason (a REJECT stands)
    assert item["reasons"] == [reason, "NO_FACE"]
    assert item["model"] == {"name": "tiny-red", "version": "1.0.0"}
    assert item["frames_scored"] == item["frames_sampled"] == 8
