"""What a decision may rest on, end to end: PASS needs a face, and a broken model never decides.

Each test starts its own stack with its own model (one stack per process at a time).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kyclocal.policy_file import artefact_of, role_played_policy
from kyclocal.samples import write_clip
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip
from tests.integration.conftest import screen
from tests.unit.serving.helpers import write_onnx_config


def test_pipeline_onnx_face_model_passes_a_clip_with_a_face(tmp_path: Path) -> None:
    # The face crop of the drawn face has a mean red of about 0.56: sigmoid(20 * 0.56 - 20) ~ 0.
    config = write_onnx_config(tmp_path, weight_red=20.0, bias=-20.0, face_crop=True)
    clip = write_clip(tmp_path / "face.mp4", "mp4", "libx264", {"preset": "ultrafast"}, seconds=1.5, fps=10)
    policy = role_played_policy(
        {"name": "tiny-red", "version": "1.0.0", "artefact_sha256": artefact_of(config)},
        pass_threshold=0.2,
        reject_threshold=0.9,
        frame_count=8,
    )
    settings = LocalStackSettings(model="onnx", onnx_config=config, frame_count=8, policy=policy)
    with LocalStack(settings) as face_stack:
        item = screen(face_stack, clip, key="uploads/onnx/face.mp4")

    assert (item["decision"], item["reasons"]) == ("PASS", ["LOW_FAKE_SCORE"]), item
    assert item["frames_with_face"] == item["frames_scored"] == 8


def test_pipeline_nan_model_never_decides(tmp_path: Path) -> None:
    """A model that answers NaN fails its batches: the upload gets ERROR, never a REJECT by NaN."""
    config = write_onnx_config(tmp_path, weight_red=0.0, bias=math.nan, activation="sigmoid")
    clip = make_clip(tmp_path / "solid.mp4", width=160, height=120, fps=10, seconds=2.0, colour=(250, 10, 10))
    with LocalStack(LocalStackSettings(model="onnx", onnx_config=config, frame_count=8)) as nan_stack:
        item = screen(nan_stack, clip, key="uploads/onnx/nan.mp4", timeout_s=240.0)

    assert item["decision"] == "ERROR", item
    assert "HIGH_FAKE_SCORE" not in item["reasons"]
    assert item.get("score") is None


def test_lineage_logged_even_after_a_stale_observability_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that imported kyc.observability before any stack (a test, a command) built its
    Powertools logger without the stack's environment: the handlers' lineage must still be logged."""
    import sys

    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delitem(sys.modules, "kyc.observability", raising=False)
    import kyc.observability

    assert kyc.observability.logger.service == "service_undefined"
    clip = make_clip(tmp_path / "c.mp4", width=160, height=120, fps=10, seconds=1.5)
    with LocalStack(LocalStackSettings(frame_count=4)) as stack:
        item = screen(stack, clip, key="uploads/stale/c.mp4")
        stages = {
            r["lineage"]["stage"]
            for r in stack.log_lines()
            if (r.get("lineage") or {}).get("submission_id") == item["submission_id"]
        }
    assert {"validate", "extract", "decide"} <= stages


def test_stopping_a_stack_leaves_no_execution_running(tmp_path: Path) -> None:
    """An execution still in flight when its stack stops is aborted and its thread ends: otherwise
    it goes on running handlers inside whatever the process runs next (another stack, a test)."""
    import time

    from moto.stepfunctions.parser.utils import TMP_THREADS

    clip = make_clip(tmp_path / "c.mp4", width=320, height=240, fps=15, seconds=3.0)
    stack = LocalStack(LocalStackSettings(frame_count=16))
    stack.start()
    try:
        stack.upload(clip, key="uploads/orphan/c.mp4")
        sfn, deadline = stack.client("stepfunctions"), time.monotonic() + 60
        while not sfn.list_executions(stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING")[
            "executions"
        ]:
            assert time.monotonic() < deadline, "no execution started"
            time.sleep(0.05)
    finally:
        stack.stop()
    after_stop = len(stack.router.invocations)
    time.sleep(2)
    assert not [t for t in TMP_THREADS if t.is_alive()]
    assert len(stack.router.invocations) == after_stop
