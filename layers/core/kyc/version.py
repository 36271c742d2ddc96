"""Which code took a decision: the package version and the git revision baked in at build."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from kyc import __version__


@cache
def code_version() -> dict[str, str]:
    return {"package": __version__, "revision": _revision()}


def _revision() -> str:
    baked = Path(__file__).with_name("REVISION")
    if baked.is_file():
        return baked.read_text(encoding="utf-8").strip() or "unknown"
    if os.environ.get("KYC_GIT_REVISION"):
        return os.environ["KYC_GIT_REVISION"]
    try:  # a developer checkout: ask git, never fail a screening over it
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
