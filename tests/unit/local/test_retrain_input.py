"""`kycscreen retrain` refuses input that cannot make a dataset, with a clear message and exit 2."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kyclocal.cli import main


def _labels(tmp_path: Path, sha: str) -> Path:
    labels = tmp_path / "labels.csv"
    labels.write_text(f"sha256,label,attack_type\n{sha},attack,face_swap\n", encoding="utf-8")
    return labels


def test_media_that_is_not_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a folder")
    labels = _labels(tmp_path, hashlib.sha256(b"x").hexdigest())
    assert main(["retrain", str(labels), "--media", str(clip), "--out", str(tmp_path / "out")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_sha256_csv_without_media_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = _labels(tmp_path, hashlib.sha256(b"x").hexdigest())
    assert main(["retrain", str(labels), "--out", str(tmp_path / "out")]) == 2
    assert "--media" in capsys.readouterr().err


def test_labels_whose_media_is_not_retained_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "other.mp4").write_bytes(b"another video")
    labels = _labels(tmp_path, hashlib.sha256(b"the labelled video").hexdigest())
    assert main(["retrain", str(labels), "--media", str(media), "--out", str(tmp_path / "out")]) == 2
    assert "no labelled video has retained media" in capsys.readouterr().err
