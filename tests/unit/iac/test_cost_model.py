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
    # + 4 rate alarms (5 each) + absent (7: six KycScreening metrics and the intake rule's MatchedEvents)
    # + issue 23's evidence and custody alarms (5) + drift (10: the sums of 3 outcome and 5 score-band
    # deviations and the two SampleCounts, outcome and band)
    # + the retraining pipeline's failed-run alarm (1)
    # + issue 23's scheduled verifier (4: findings, missed run, function errors and throttles)
    # + issue 21's promotion alarms (10: shadow deploy errors, throttles and DLQ, re-screen errors,
    # throttles, failures, disagreement, and the re-screen machine's failed + timed out + aborted runs)
    # + issue 21's live shadow alarms (5: the live disagreement rate's two metrics, and the lost shadow
    # evidence's three: failures, skips for want of time, unwitnessed candidates)
    # + 1: issue 24 item 5 made the reuse check's errors alarm (one of the 34) a math alarm of two
    # metrics (Lambda Errors minus retried waits)
    # + issue 24's over-limit admissions alarm (2: AdmissionsOverLimit START_OWED and START_LAST)
    assert _fixed(cost_model)["CloudWatch alarms"] == pytest.approx(
        (34 + 1 + 2 + 5 + 20 + 7 + 5 + 10 + 1 + 4 + 10 + 5 + 2) * 0.10
    )
    off = _fixed(cost_model, NoDecisionAlarmEnabled="false")["CloudWatch alarms"]
    assert off == pytest.approx((34 + 1 + 2 + 5 + 20 + 5 + 10 + 1 + 4 + 10 + 5 + 2) * 0.10)


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

    assert face_line() is None  # FaceEvidenceSource=local (default): no per-image charge (issue 25)
    rekognition = {"FaceEvidenceSource": "rekognition"}
    assert face_line(**rekognition) == pytest.approx(32 * 0.001 * 1000)  # FrameCount 32, all checked
    assert face_line(**rekognition, FaceCheckFrames="12") == pytest.approx(12.0)
    assert face_line(**rekognition, FaceCheckFrames="64") == pytest.approx(32.0)  # never more than sampled
    assert face_line(FaceEvidenceSource="model") is None


def _measured(**calls: float) -> dict:
    return {
        "api_calls_per_screening": calls,
        "state_transitions_per_screening": 10,
        "history_events_per_screening": 40,
        "log_bytes_per_screening": 20_000,
        "functions": {},
        "s3": {
            "upload_bytes": 3_000_000,
            "work_bytes_per_screening": 300_000,
            "audit_bytes_per_screening": 9_000,
        },
    }


def test_request_lines_follow_the_measured_counts_not_constants(cost_model):
    """Issue 25: frames one object per batch show in `make cost` only through the counted calls.
    Hand-computed: (PUTs + the client's upload) x $0.005/1,000 + GETs x $0.0004/1,000, per 1,000."""
    template = cost_model.load_template(ROOT / "template.yaml")
    params = cost_model.parameters(template, {})

    def lines(**calls: float) -> dict[str, float]:
        return {
            line.component: line.per_1000
            for line in cost_model.variable_lines(template, params, _measured(**calls))
        }

    per_frame = lines(**{"s3:PutObject": 39, "s3:GetObject": 43, "s3:HeadObject": 1, "kms:GenerateMac": 3})
    per_batch = lines(**{"s3:PutObject": 11, "s3:GetObject": 15, "s3:HeadObject": 1, "kms:GenerateMac": 3})
    assert per_frame["S3 requests"] == pytest.approx(40 * 0.005 + 44 * 0.0004)
    assert per_batch["S3 requests"] == pytest.approx(12 * 0.005 + 16 * 0.0004)
    # KMS: the handlers' measured calls plus the services' data-key requests (5, assumed)
    assert per_batch["KMS requests"] == pytest.approx((3 + 5) * 0.03 / 10)
    assert lines(**{"kms:GenerateMac": 4})["KMS requests"] == pytest.approx((4 + 5) * 0.03 / 10)
