"""Drills run the real pipeline with one fault injected; these tests keep the drills themselves honest.

Each drill starts its own local stack (no ``stack`` fixture), so a test here costs about 6-10 s.
"""

from __future__ import annotations

import argparse
import io

import pytest

from kyclocal.commands import drill as drill_command
from kyclocal.drills import SCENARIOS, Check, DrillReport, run_drill


def test_drill_endpoint_outage_every_upload_error_and_alarm_metric() -> None:
    report = run_drill("endpoint-outage")
    failed = [c for c in report.checks if not c.passed]
    assert report.passed, failed
    names = {c.name for c in report.checks}
    assert "no PASS during the outage" in names
    assert any("DecisionsErrorAlarm" in n for n in names)


def test_drill_crash_between_stages_error_recorded_then_recovers() -> None:
    report = run_drill("crash-between-stages")
    assert report.passed, [c for c in report.checks if not c.passed]
    assert {"its decision is ERROR", "the next upload is screened normally (not ERROR)"} <= {
        c.name for c in report.checks
    }


def test_drill_report_one_failed_check_fails_the_drill() -> None:
    report = DrillReport("x", [Check("a", True), Check("b", False, "seen")])
    assert not report.passed
    assert not DrillReport("empty").passed  # a drill that checked nothing proved nothing


def test_drill_command_failed_scenario_exits_nonzero_and_prints_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(workdir: object, frame_count: int = 8) -> DrillReport:
        raise RuntimeError("stack did not start")

    monkeypatch.setitem(SCENARIOS, "endpoint-outage", broken)
    out = io.StringIO()
    code = drill_command.cmd_drill(argparse.Namespace(scenario="endpoint-outage", frames=8, json=False), out)
    assert code == 1
    assert "FAIL  scenario ran to completion" in out.getvalue()
    assert "RuntimeError: stack did not start" in out.getvalue()
