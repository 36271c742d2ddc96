"""Test-wide guard: no test writes the local stack's saved state into the working tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _local_state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KYCSCREEN_STATE_DIR", str(tmp_path / "local-stack-state"))
    yield
