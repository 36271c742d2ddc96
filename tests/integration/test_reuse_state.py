"""The local saved state keeps the reuse index: a byte-identical copy screened in a later run (a new
local stack restored from the state directory, as `kycscreen run` does) is MEDIA_REUSED, naming the
submission of the earlier run; after `kycscreen reset` (the state wiped) it is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyclocal.samples import write_clip
from kyclocal.stack import LocalStack, LocalStackSettings
from kyclocal.state import wipe_state
from tests.integration.conftest import screen

pytestmark = pytest.mark.integration


def _run(state: Path, clip: Path, key: str) -> dict:
    """One `kycscreen run`: a fresh stack restored from ``state``, one upload, the state saved on stop."""
    with LocalStack(LocalStackSettings(frame_count=8, state_dir=state)) as stack:
        return screen(stack, clip, key=key)


def test_a_copy_screened_in_a_later_run_is_media_reused(tmp_path: Path) -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    state = tmp_path / ".local-stack"
    clip = write_clip(tmp_path / "face.mp4", "mp4", "libx264", {"preset": "ultrafast"}, seconds=1.5, fps=10)
    first = _run(state, clip, "uploads/day1/selfie.mp4")
    assert "MEDIA_REUSED" not in first["reasons"], first
    saved = json.loads((state / "dynamodb" / "ReuseIndexTable.json").read_text())
    # the index entries name their submission (admission records, issue 24, carry only keys)
    assert any(i.get("submission_id", {}).get("S") == first["submission_id"] for i in saved)

    moto_api_backend.reset()
    second = _run(state, clip, "uploads/day2/other-name.mp4")
    assert "MEDIA_REUSED" in second["reasons"], second

    wipe_state(state)
    moto_api_backend.reset()
    third = _run(state, clip, "uploads/day3/selfie.mp4")
    assert "MEDIA_REUSED" not in third["reasons"], third
