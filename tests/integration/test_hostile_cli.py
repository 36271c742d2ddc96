"""Every hostile file through `kycscreen run --json`: INVALID with its code, never scored, never ERROR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyc.domain.reasons import ReasonCode as R
from kyclocal.cli import main
from tests.fixtures import hostile
from tests.fixtures.clips import make_clip
from tests.unit.media.test_validation_hostile import CASES

LOCAL_FILE_URL = "file:///etc/passwd"
REFERENCE_CASES = {
    "hls_playlist_local_file": (
        lambda d: hostile.hls_playlist(d / "p.mp4", LOCAL_FILE_URL),
        R.PLAYLIST_OR_SCRIPT,
    ),
    "ffconcat_relative": (lambda d: hostile.ffconcat_script(d / "r.mp4", "seg.ts"), R.PLAYLIST_OR_SCRIPT),
    "ffconcat_absolute": (
        lambda d: hostile.ffconcat_script(d / "a.mp4", "/etc/passwd"),
        R.PLAYLIST_OR_SCRIPT,
    ),
    "avi_with_hls_gab2": (
        lambda d: hostile.avi_with_gab2_playlist(d / "x.avi", LOCAL_FILE_URL),
        R.UNSUPPORTED_CONTAINER,
    ),
    "mov_external_dref": (
        lambda d: hostile.mov_with_external_dref(d / "d.mov", "/etc/passwd"),
        R.EXTERNAL_REFERENCE,
    ),
}


def test_hostile_files_through_cli_are_invalid_with_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected: dict[str, set[str]] = {}  # file -> the one reason code it must be refused with
    files: list[Path] = []
    for name, (make, code) in sorted(CASES.items()):
        folder = tmp_path / name
        folder.mkdir()
        files.append(make(folder / "upload.mp4"))
        expected[str(files[-1])] = {str(code)}
    for name, (make, code) in sorted(REFERENCE_CASES.items()):
        folder = tmp_path / name
        folder.mkdir()
        files.append(make(folder))
        expected[str(files[-1])] = {str(code)}
    ordinary = make_clip(tmp_path / "ordinary.mp4", width=320, height=240, fps=10, seconds=1.5)

    code = main(["run", "--json", "--no-state", "--frames", "4", *map(str, files), str(ordinary)])

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 0 and len(rows) == len(files) + 1
    for row in rows[:-1]:
        assert row["decision"] == "INVALID", row
        assert set(row["reasons"]) == expected[row["file"]] and len(row["reasons"]) == 1, row
        assert row["frames_scored"] == 0
    assert rows[-1]["decision"] in {"PASS", "REVIEW", "REJECT"}
