"""Bandit over the code that ships or runs the local stack; medium severity and above is a finding.

Low-severity results (asserts, ``random`` for jitter, the word "PASS" read as a password) are counted
and printed but do not fail the gate: justify anything medium or higher inline with
``# nosec BXXX - reason`` so the reason is reviewed next to the code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kycsecurity import CheckResult, Finding

SCANNED = ("layers", "functions", "local", "serving", "scripts")
FAILING = {"MEDIUM", "HIGH"}


def run_bandit(root: Path, targets: tuple[str, ...] = SCANNED) -> CheckResult:
    """Run bandit recursively over ``targets`` under ``root`` and keep medium+ results as findings."""
    paths = [str(root / t) for t in targets if (root / t).exists()]
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "bandit", "-r", *paths, "-f", "json", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"bandit did not run (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    report = json.loads(proc.stdout)
    if report.get("errors"):
        raise RuntimeError(f"bandit could not parse files: {report['errors']}")
    findings: list[Finding] = []
    low = 0
    for item in report.get("results", []):
        where = f"{Path(item['filename']).resolve().relative_to(root.resolve())}:{item['line_number']}"
        if item["issue_severity"] in FAILING:
            rating = f"{item['issue_severity'].lower()}/{item['issue_confidence'].lower()}"
            detail = f"{rating}: {item['issue_text']}"
            findings.append(Finding("bandit", where, item["test_id"], detail))
        else:
            low += 1
    skipped = report.get("metrics", {}).get("_totals", {}).get("skipped_tests", 0)
    notes = (f"{low} low-severity result(s) not gating; {skipped} line(s) carry a '# nosec'",)
    return CheckResult("bandit", tuple(findings), notes)
