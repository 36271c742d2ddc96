"""detect-secrets over every file git would commit, judged against the audited ``.secrets.baseline``.

A finding is (a) a secret that is not in the baseline, (b) a baseline entry nobody audited, or (c) a
baseline entry audited as a real secret: a real secret must be removed and rotated, never baselined.
Entries are matched on file, secret hash and type (not line number), so editing around an audited
false positive does not reopen it, and the scan never rewrites the baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from detect_secrets import SecretsCollection
from detect_secrets.core import baseline as ds_baseline
from detect_secrets.settings import default_settings

from kycsecurity import CheckResult, Finding

BASELINE = ".secrets.baseline"
EXCLUDED_PARTS = (".git", ".aws-sam", "build", ".hypothesis", ".pytest_cache", ".ruff_cache", "__pycache__")


def _excluded(relative: str) -> bool:
    parts = Path(relative).parts
    return relative == BASELINE or any(p in EXCLUDED_PARTS or p.startswith(".venv") for p in parts)


def files_to_scan(root: Path) -> list[str]:
    """What git would commit (tracked plus untracked-not-ignored), or a filtered walk outside git."""
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
            cwd=root,
            capture_output=True,
            check=True,
        )
        names = [n for n in proc.stdout.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a work tree (a temp copy)
        names = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    return sorted(n for n in names if not _excluded(n) and (root / n).is_file())


def _scan(root: Path, files: list[str]) -> SecretsCollection:
    found = SecretsCollection(root=str(root))
    found.scan_files(*files, num_processors=min(2, os.cpu_count() or 1))
    return found


def run_secret_scan(root: Path, baseline_path: Path, files: list[str] | None = None) -> CheckResult:
    """Scan ``files`` (default: :func:`files_to_scan`) under ``root`` and compare with the baseline."""
    files = files_to_scan(root) if files is None else files
    recorded = json.loads(baseline_path.read_text(encoding="utf-8"))
    allowed = ds_baseline.load(recorded, filename=str(baseline_path))
    found = _scan(root, files)
    findings: list[Finding] = []
    # Keys use the collection's repo-relative file name: PotentialSecret.filename is absolute and so
    # differs between the repository and a temp copy of it.
    audited = {(filename, secret.secret_hash, secret.type) for filename, secret in allowed}
    for filename, secret in found:
        if (filename, secret.secret_hash, secret.type) in audited:
            continue
        detail = "not in the audited baseline: remove it (and rotate it if real)"
        findings.append(Finding("secrets", f"{filename}:{secret.line_number}", secret.type, detail))
    for filename, secret in allowed:
        if secret.is_secret is None:
            findings.append(Finding("secrets", filename, secret.type, "baseline entry never audited"))
        elif secret.is_secret:
            detail = "audited as a REAL secret: remove and rotate"
            findings.append(Finding("secrets", filename, secret.type, detail))
    notes = (f"{len(files)} files scanned; {sum(1 for _ in allowed)} audited false positive(s) allow-listed",)
    return CheckResult("secrets", tuple(findings), notes)


def write_baseline(root: Path, baseline_path: Path) -> int:
    """Rescan and rewrite the baseline, keeping earlier audit verdicts; returns entries left to audit."""
    with default_settings():
        found = _scan(root, files_to_scan(root))
        if baseline_path.is_file():
            found.merge(ds_baseline.load(json.loads(baseline_path.read_text(encoding="utf-8"))))
        ds_baseline.save_to_file(found, str(baseline_path))
    return sum(1 for _, secret in found if secret.is_secret is None)
