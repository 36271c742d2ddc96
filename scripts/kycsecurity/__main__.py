"""CLI: ``python -m kycsecurity [all|bandit|deps|secrets] [--root DIR]``; exit 1 on any finding.

A degraded check (no advisory service reachable) prints a warning and passes, unless
``KYC_SECURITY_STRICT=1`` (set it in CI where the network is open) makes it fail.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kycsecurity import CheckResult

REPO = Path(__file__).resolve().parents[2]


def _checks(args: argparse.Namespace) -> dict[str, Callable[[], CheckResult]]:
    def bandit() -> CheckResult:
        from kycsecurity.bandit_check import run_bandit

        return run_bandit(args.root)

    def deps() -> CheckResult:
        from kycsecurity.dependency_audit import run_dependency_audit

        return run_dependency_audit(args.root)

    def secrets() -> CheckResult:
        from kycsecurity.secret_scan import run_secret_scan

        return run_secret_scan(args.root, args.baseline)

    return {"bandit": bandit, "deps": deps, "secrets": secrets}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kycsecurity", description=__doc__)
    parser.add_argument("check", nargs="?", default="all", choices=["all", "bandit", "deps", "secrets"])
    parser.add_argument("--root", type=Path, default=REPO, help="tree to check (default: this repository)")
    parser.add_argument("--baseline", type=Path, default=REPO / ".secrets.baseline")
    parser.add_argument("--update-baseline", action="store_true", help="rescan and rewrite the baseline")
    args = parser.parse_args(argv)
    if args.update_baseline:
        from kycsecurity.secret_scan import write_baseline

        left = write_baseline(args.root, args.baseline)
        print(f"{args.baseline}: {left} entr(y/ies) to audit with `detect-secrets audit {args.baseline}`")
        return 0
    strict = os.environ.get("KYC_SECURITY_STRICT") == "1"
    checks = _checks(args)
    selected = list(checks) if args.check == "all" else [args.check]
    failed = False
    for name in selected:
        started = time.monotonic()
        result = checks[name]()
        status = "FAIL" if result.findings else ("DEGRADED" if result.degraded else "ok")
        print(f"== {name}: {status} ({len(result.findings)} finding(s), {time.monotonic() - started:.1f}s)")
        for note in result.notes:
            print(f"   {note}")
        for finding in result.findings:
            print(f"   {finding}")
        failed |= bool(result.findings) or (result.degraded and strict)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
