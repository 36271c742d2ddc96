"""DecideOutcome with a sampled frame that was on screen for a fraction of a frame (extract's
``briefly_shown``): the model's PASS becomes REVIEW with SHORT_FRAME_SAMPLED (moto, the real handler)."""

from __future__ import annotations

from typing import Any

from tests.unit.functions import test_score_decide as base
from tests.unit.functions.handler_loader import FakeContext

aws = base.aws  # the moto fixture of the decide tests


def _run(aws: dict[str, Any], scores: list[float], briefly_shown: int | None) -> dict[str, Any]:
    state = base._scored_state(aws, scores)
    if briefly_shown is not None:
        state["extraction"]["briefly_shown"] = briefly_shown
    app = base._decide(aws)
    return app.lambda_handler({"mode": "decide", "execution_arn": "arn:x", "state": state}, FakeContext())


def test_briefly_shown_sampled_frame_turns_a_pass_into_review(aws: dict[str, Any]) -> None:
    result = _run(aws, [0.05] * 4, 1)
    assert result["decision"] == "REVIEW" and "SHORT_FRAME_SAMPLED" in result["reasons"]


def test_no_briefly_shown_frame_passes_as_before(aws: dict[str, Any]) -> None:
    assert _run(aws, [0.05] * 4, 0)["decision"] == "PASS"
    assert _run(aws, [0.05] * 4, None)["decision"] == "PASS"  # a state written before the field existed


def test_briefly_shown_frame_leaves_a_reject_standing(aws: dict[str, Any]) -> None:
    result = _run(aws, [0.99] * 4, 2)
    assert result["decision"] == "REJECT" and "SHORT_FRAME_SAMPLED" in result["reasons"]
