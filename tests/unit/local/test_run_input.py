"""`kycscreen run` with paths it cannot screen: refused before the local stack starts."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from kyclocal.commands import run


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run.register(parser.add_subparsers(required=True))
    return parser.parse_args(["run", *argv])


def test_missing_files_and_directories_are_named_and_nothing_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import kyclocal.stack

    def no_stack(*_: object, **__: object) -> None:
        raise AssertionError("the local stack was started for files that cannot be screened")

    monkeypatch.setattr(kyclocal.stack.LocalStack, "__init__", no_stack)
    real = tmp_path / "real.mp4"
    real.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    missing = tmp_path / "typo.mp4"
    folder = tmp_path / "clips"
    folder.mkdir()
    out = io.StringIO()

    code = run.cmd_run(_args(str(real), str(missing), str(folder), "--no-state"), out=out)

    err = capsys.readouterr().err
    assert code == 2 and out.getvalue() == ""
    assert f"{missing}: No such file or directory" in err
    assert f"{folder}: a directory, not a file" in err
    assert str(real) + ":" not in err  # the readable one is not blamed
    assert "nothing was screened" in err


def test_readable_files_are_not_refused(tmp_path: Path) -> None:
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")  # unusable media is the pipeline's to judge (INVALID), not the CLI's
    assert run.unreadable_files([clip, empty]) == []
