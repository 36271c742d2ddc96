"""`kycscreen drill SCENARIO`: break the local pipeline on purpose; check it fails as the runbook says.

Prints PASS/FAIL per check and exits 1 if any check failed, so a drill can gate CI or a game day.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TextIO

from kyclocal.drills import PLANS, SCENARIOS, DrillReport, run_drill


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "drill", help="run an operational drill against the local stack (PASS/FAIL per check)"
    )
    cmd.add_argument("scenario", choices=(*SCENARIOS, "all"))
    cmd.add_argument("--frames", type=int, default=8, help="frames sampled per upload (small keeps it fast)")
    cmd.add_argument("--json", action="store_true", help="one JSON report per scenario, one per line")
    cmd.set_defaults(command=cmd_drill)


def cmd_drill(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    reports = [run_drill(name, frame_count=args.frames) for name in names]
    for report in reports:
        if args.json:
            print(json.dumps(asdict(report) | {"passed": report.passed}), file=out)
        else:
            print_report(report, out)
    return 0 if all(r.passed for r in reports) else 1


def print_report(report: DrillReport, out: TextIO) -> None:
    print(f"drill {report.scenario} ({report.elapsed_s:.1f} s)", file=out)
    for check in report.checks:
        detail = f"  [{check.detail}]" if check.detail else ""
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}{detail}", file=out)
    if report.rehearses:
        plan = report.rehearses
        print(f"  rehearses  Incident Manager plan <stack>-{plan} ({PLANS[plan]})", file=out)
    for finding in report.alarms:
        when = (
            "would not fire"
            if finding.fires_after_s is None
            else f"fires {finding.fires_after_s / 60:.1f} min"
        )
        tag = "expected" if finding.expected else "also"
        print(f"  alarm  {finding.alarm}: {when} after the first bad upload [{tag}]", file=out)
    if not report.alarms:
        print("  alarm  none of the template's alarms would fire on this run's metrics", file=out)
    print(f"  => {'PASS' if report.passed else 'FAIL'}", file=out)
