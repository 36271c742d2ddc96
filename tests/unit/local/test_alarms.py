"""The drill's alarm evaluator against hand-computed cases, on the template's own alarm definitions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kyc.observability import count
from kyclocal.alarms import (
    Datapoint,
    breaches_at,
    datapoints_from_emf,
    evaluate_expression,
    first_alarm,
    load_alarms,
    period_value,
)

ROOT = Path(__file__).resolve().parents[3]
DIMS = (("service", "kyc-screening"),)


@pytest.fixture(scope="module")
def alarms():
    return load_alarms(ROOT / "template.yaml", resources={"ScreeningStateMachine": "arn:local:sm"})


def decision(outcome: str, at: float) -> Datapoint:
    return Datapoint("KycScreening", "Decisions", (("decision", outcome), *DIMS), at, 1.0)


def upload(at: float) -> Datapoint:
    return Datapoint("KycScreening", "UploadsReceived", DIMS, at, 1.0)


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        ("IF(total >= 10, 100 * FILL(reject, 0) / total, 0)", {"total": 20.0, "reject": 3.0}, 15.0),
        ("IF(total >= 10, 100 * FILL(reject, 0) / total, 0)", {"total": 9.0, "reject": 9.0}, 0.0),
        ("IF(total >= 10, 100 * FILL(reject, 0) / total, 0)", {"total": 12.0, "reject": None}, 0.0),
        ("FILL(a, 0) + FILL(b, 0) * 2", {"a": None, "b": 4.0}, 8.0),
        ("a / b", {"a": 1.0, "b": 0.0}, None),
        ("a + b", {"a": 1.0, "b": None}, None),
        ("IF(FILL(u, 0) > 0 AND t == 0, 1, 0)", {"u": 2.0, "t": 0.0}, 1.0),
        ("IF(FILL(u, 0) > 0 AND t == 0, 1, 0)", {"u": None, "t": 0.0}, 0.0),
        ("(a - 1) * -2", {"a": 4.0}, -6.0),
    ],
)
def test_metric_math_subset(expression, values, expected):
    assert evaluate_expression(expression, values) == expected


def test_unknown_function_is_refused_not_guessed():
    with pytest.raises(ValueError):
        evaluate_expression("RATE(a)", {"a": 1.0})


def test_rate_alarm_is_read_from_the_template_with_its_defaults(alarms):
    reject = alarms["DecisionsRejectRateAlarm"]
    assert (reject.period, reject.evaluation_periods, reject.threshold) == (900, 1, 10.0)
    assert dict(reject.expressions)["rate"] == "IF(FILL(reject, 0) >= 5, 100 * FILL(reject, 0) / total, 0)"
    overridden = load_alarms(
        ROOT / "template.yaml", {"RateAlarmMinDecisions": "3", "RejectRateAlarmPercent": "50"}
    )
    assert "FILL(reject, 0) >= 3" in dict(overridden["DecisionsRejectRateAlarm"].expressions)["rate"]
    assert overridden["DecisionsRejectRateAlarm"].threshold == 50.0


def test_one_reject_of_ten_decisions_does_not_fire(alarms):
    # issue 23: 9 PASS + 1 REJECT is a 10 % share (the threshold) but one REJECT, below the count guard (5)
    points = [decision("PASS", 1000.0 + i) for i in range(9)] + [decision("REJECT", 1010.0)]
    assert period_value(alarms["DecisionsRejectRateAlarm"], points, 900.0, 1800.0) == 0.0
    assert not breaches_at(alarms["DecisionsRejectRateAlarm"], points, 1800.0)
    # five REJECTs among 45 PASS: the count guard is met and the share is exactly 10 % (>= 10)
    wave = [decision("PASS", 1000.0 + i) for i in range(45)] + [
        decision("REJECT", 1100.0 + i) for i in range(5)
    ]
    assert period_value(alarms["DecisionsRejectRateAlarm"], wave, 900.0, 1800.0) == 10.0
    assert breaches_at(alarms["DecisionsRejectRateAlarm"], wave, 1800.0)


def test_quiet_hour_of_nothing_but_rejects_fires(alarms):
    # issue 23: 9 REJECT of 9 decisions (fewer than the old all-decision guard of 10) must fire
    points = [decision("REJECT", 6000.0 + 60 * i) for i in range(9)]
    assert first_alarm(alarms["DecisionsRejectRateAlarm"], points, since=6000.0) is not None
    assert first_alarm(alarms["DecisionsRejectRateAlarm"], points[:4], since=6000.0) is None  # 4 < 5


def test_first_alarm_is_the_first_whole_minute_after_the_data(alarms):
    # data at 6015 s; evaluations at 6060, 6120, ...: the first one sees it, 50 s after 6010
    points = [decision("REJECT", 6015.0 + i * 0.1) for i in range(10)]
    assert first_alarm(alarms["DecisionsRejectRateAlarm"], points, since=6010.0) == 50.0
    # a 900 s window forgets the wave: evaluated from an hour later, nothing fires
    assert first_alarm(alarms["DecisionsRejectRateAlarm"], points, since=6010.0 + 3600, horizon_s=600) is None


def test_no_decision_alarm_needs_two_hours_each_with_uploads_and_no_decision(alarms):
    absent = alarms["DecisionsAbsentAlarm"]
    assert (absent.period, absent.evaluation_periods, absent.datapoints_to_alarm) == (3600, 2, 2)
    stalled = [upload(100.0), upload(3700.0)]
    # windows [t-7200, t-3600) and [t-3600, t) both hold an upload only for t in (3700, 7300]
    assert first_alarm(absent, stalled, since=0.0) == 3720.0
    # the same uploads, each decided 30 s later: never
    decided = [*stalled, decision("PASS", 130.0), decision("ERROR", 3730.0)]
    assert first_alarm(absent, decided, since=0.0) is None
    # no uploads at all (a quiet night): never, although there is no decision either
    assert first_alarm(absent, [], since=0.0) is None


def test_single_metric_alarm_on_a_resolved_resource(alarms):
    failed = Datapoint("AWS/States", "ExecutionsFailed", (("StateMachineArn", "arn:local:sm"),), 130.0, 1.0)
    assert first_alarm(alarms["ScreeningExecutionsFailedAlarm"], [failed], since=125.0) == 55.0
    other = Datapoint("AWS/States", "ExecutionsFailed", (("StateMachineArn", "arn:other"),), 130.0, 1.0)
    assert first_alarm(alarms["ScreeningExecutionsFailedAlarm"], [other], since=125.0) is None


def test_emf_records_as_cloudwatch_reads_them(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KycScreening")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kyc-screening")
    count("Decisions", decision="REJECT")
    count("FramesScored", value=8)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    points = datapoints_from_emf(records)
    assert [(p.name, p.dimensions, p.value) for p in points] == [
        ("Decisions", (("decision", "REJECT"), ("service", "kyc-screening")), 1.0),
        ("FramesScored", DIMS, 8.0),
    ]
    assert abs(points[0].timestamp - records[0]["_aws"]["Timestamp"] / 1000) < 1e-6


def test_every_template_alarm_expression_reads_and_names_only_its_own_metrics(alarms):
    # a misspelt id (FILL(rejct, 0)) is only refused by CloudWatch at deploy time; here, at once
    for name, spec in alarms.items():
        assert period_value(spec, [], 0.0, float(spec.period)) in (None, 0.0), name
        ids = {s.id for s in spec.stats} | {i for i, _ in spec.expressions}
        for _, expression in spec.expressions:
            named = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", expression))
            assert named <= ids, f"{name}: {sorted(named - ids)} not defined"


def test_digest_missed_alarm_fires_three_hours_after_the_last_digest(alarms):
    missed = alarms["DigestMissedAlarm"]
    assert (missed.period, missed.evaluation_periods, missed.datapoints_to_alarm) == (3600, 3, 3)

    def digest(at: float) -> Datapoint:
        return Datapoint("KycScreening", "DigestsWritten", DIMS, at, 1.0)

    hourly = [digest(10.0 + 3600 * k) for k in range(13)]
    assert first_alarm(missed, hourly, since=0.0, horizon_s=12 * 3600) is None
    # the schedule stops after the digest at 7210 s: three whole hours without one from 18010 s on
    stopped = hourly[:3]
    assert first_alarm(missed, stopped, since=0.0, horizon_s=12 * 3600) == 18060.0


def test_verifier_missed_alarm_waits_out_the_six_hour_schedule_and_fires_on_a_skipped_run(alarms):
    """Issue 23 item 6, hand-computed at the defaults (runs every 6 h, 7 hourly periods, missing data
    breaching): a run at 60 s and at 21,660 s; the run due at 43,200 s never comes. The 7-period
    window [at - 25,200, at) still holds the 21,660 s run while at <= 46,860 s; the first evaluation
    minute after that is 46,920 s, 3,720 s after the missed run was due."""
    missed = alarms["VerifierMissedAlarm"]
    assert (missed.period, missed.evaluation_periods, missed.datapoints_to_alarm) == (3600, 7, 7)
    assert missed.treat_missing == "breaching"

    def run(at: float) -> Datapoint:
        return Datapoint("KycScreening", "VerifierRuns", DIMS, at, 1.0)

    on_time = [run(60.0 + 21600 * k) for k in range(6)]
    assert first_alarm(missed, on_time, since=3600.0, horizon_s=24 * 3600) is None
    assert first_alarm(missed, on_time[:2], since=43200.0, horizon_s=6 * 3600) == 3720.0


def test_verifier_finding_alarm_fires_on_one_finding_and_not_on_a_clean_run(alarms):
    found = alarms["VerifierFindingAlarm"]

    def findings(n: float) -> Datapoint:
        return Datapoint("KycScreening", "VerifierFindings", DIMS, 1000.0, n)

    assert not breaches_at(found, [findings(0.0)], 1800.0)
    assert breaches_at(found, [findings(1.0)], 1800.0)
    assert not breaches_at(found, [], 1800.0)  # a missing run is VerifierMissedAlarm's, not a finding


def test_no_decision_alarm_sees_uploads_the_start_function_never_admitted():
    """Issue 23: the start function broken before it counts anything (UploadsReceived stays empty):
    the intake rule's own MatchedEvents (AWS/Events) still show uploads, so the alarm fires."""
    absent = load_alarms(ROOT / "template.yaml", resources={"IntakeObjectCreatedRule": "kyc-intake"})[
        "DecisionsAbsentAlarm"
    ]
    seen = [
        Datapoint("AWS/Events", "MatchedEvents", (("RuleName", "kyc-intake"),), t, 1.0)
        for t in (100.0, 3700.0)
    ]
    assert first_alarm(absent, seen, since=0.0) == 3720.0
    assert first_alarm(absent, [], since=0.0) is None
