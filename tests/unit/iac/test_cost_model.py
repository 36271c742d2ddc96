"""The fixed monthly cost the cost model reads from template.yaml follows what a deployment creates."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.unit.iac.test_operations import _script
from tests.unit.iac.test_template import ROOT


@pytest.fixture(scope="module")
def cost_model() -> ModuleType:
    return _script("cost_model")


def _fixed(cost_model: ModuleType, **overrides: str) -> dict[str, float]:
    template = cost_model.load_template(ROOT / "template.yaml")
    params = cost_model.parameters(template, overrides)
    return {line.component: line.per_1000 for line in cost_model.fixed_monthly(template, params)}


def test_optional_features_add_their_own_lines_and_nothing_else(cost_model):
    default = _fixed(cost_model)
    assert "AWS Config rule evaluations" not in default and "Incident Manager response plans" not in default
    with_im = _fixed(cost_model, EnableIncidentManager="true")
    assert with_im["Incident Manager response plans"] == pytest.approx(2 * 7.00)  # two plans
    assert with_im["CloudWatch alarms"] == default["CloudWatch alarms"]  # plans are actions, not alarms
    with_config = _fixed(cost_model, EnableConfigRules="true")
    assert with_config["AWS Config rule evaluations"] > 0
    # the Config dead-letter queue alarm: one more alarm metric, $0.10
    assert with_config["CloudWatch alarms"] == pytest.approx(default["CloudWatch alarms"] + 0.10)


def test_alarm_metrics_count_each_metric_of_a_math_alarm_only_when_created(cost_model):
    # hand count at the defaults: 34 single-metric alarms (3 executions, 12 functions x 2, 3 DLQs,
    # 5XX, latency, model not calibrated, digest missed) + blind variant (2) + scoring errors (5)
    # + 4 rate alarms (5 each) + absent (6) + drift (8: 3 outcomes, 5 score bands)
    assert _fixed(cost_model)["CloudWatch alarms"] == pytest.approx((34 + 2 + 5 + 20 + 6 + 8) * 0.10)
    off = _fixed(cost_model, NoDecisionAlarmEnabled="false")["CloudWatch alarms"]
    assert off == pytest.approx((34 + 2 + 5 + 20 + 8) * 0.10)


def test_digest_signing_is_a_fixed_cost_of_one_sign_per_scheduled_run(cost_model):
    # hand count: rate(1 hour) is 730 runs a month, each one Sign at $0.15 per 10,000 (ECC)
    assert _fixed(cost_model)["KMS Sign (evidence digests)"] == pytest.approx(730 * 0.15 / 10000)
    quarter = _fixed(cost_model, DigestSchedule="rate(15 minutes)")["KMS Sign (evidence digests)"]
    assert quarter == pytest.approx(4 * 730 * 0.15 / 10000)
    assert _fixed(cost_model)["KMS key"] == pytest.approx(
        3 * 1.00
    )  # stack, pseudonym and digest signing keys


def test_face_stage_costs_one_rekognition_image_per_frame_checked(cost_model):
    template = cost_model.load_template(ROOT / "template.yaml")

    def face_line(**overrides: str) -> float | None:
        params = cost_model.parameters(template, overrides)
        lines = cost_model.face_stage_lines(params)
        return lines[0].per_1000 if lines else None

    assert face_line() == pytest.approx(32 * 0.001 * 1000)  # FrameCount 32, all checked: $32 per 1,000
    assert face_line(FaceCheckFrames="12") == pytest.approx(12.0)
    assert face_line(FaceCheckFrames="64") == pytest.approx(32.0)  # never more than were sampled
    assert face_line(FaceEvidenceSource="model") is None
