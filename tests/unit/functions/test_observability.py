"""StageDuration and TimeToDecision: the EMF records the dashboard and the drills read, parsed from stdout."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from kyc.observability import stage_duration, time_to_decision


@pytest.fixture(autouse=True)
def _namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the template's Globals set them for every function."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KycScreening")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kyc-screening")


def _emf(out: str, metric: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [
        r
        for r in records
        if any(
            m["Name"] == metric for d in r.get("_aws", {}).get("CloudWatchMetrics", []) for m in d["Metrics"]
        )
    ]


def _unit(record: dict[str, Any], metric: str) -> str:
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    return next(m["Unit"] for m in directive["Metrics"] if m["Name"] == metric)


def test_stage_duration_times_the_handler_with_a_stage_dimension(capsys: pytest.CaptureFixture[str]) -> None:
    @stage_duration("extract")
    def handler(event: dict[str, Any], context: object) -> str:
        time.sleep(0.05)
        return "done"

    assert handler({}, None) == "done"
    (record,) = _emf(capsys.readouterr().out, "StageDuration")
    assert record["stage"] == "extract" and record["service"] == "kyc-screening"
    assert _unit(record, "StageDuration") == "Milliseconds"
    assert 50.0 <= record["StageDuration"][0] < 5000.0  # the sleep is the independent clock


def test_stage_duration_is_emitted_when_the_stage_raises(capsys: pytest.CaptureFixture[str]) -> None:
    @stage_duration("decide")
    def handler(event: dict[str, Any], context: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        handler({}, None)
    (record,) = _emf(capsys.readouterr().out, "StageDuration")
    assert record["stage"] == "decide"


def test_time_to_decision_counts_from_the_upload_event_time(capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime(2026, 11, 29, 12, 1, 30, tzinfo=UTC)
    assert time_to_decision("2026-11-29T12:00:00Z", now=now) == 90.0
    assert time_to_decision("2026-11-29T12:00:00+00:00", now=now) == 90.0
    records = _emf(capsys.readouterr().out, "TimeToDecision")
    assert [r["TimeToDecision"] for r in records] == [[90.0], [90.0]]
    assert _unit(records[0], "TimeToDecision") == "Seconds"
    assert set(records[0]) - {"_aws", "TimeToDecision"} == {"service"}  # no per-submission dimension


@pytest.mark.parametrize("received", [None, "", "not a time", "2026-11-29T12:05:00Z"])
def test_time_to_decision_skips_missing_unreadable_and_future_times(
    received: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime(2026, 11, 29, 12, 1, 30, tzinfo=UTC)
    assert time_to_decision(received, now=now) is None
    assert _emf(capsys.readouterr().out, "TimeToDecision") == []
