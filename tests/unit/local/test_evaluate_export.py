"""`kycscreen evaluate` reads the review API's export: clips found by the SHA-256 of their bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kyc.domain.review import export_csv
from kyclocal.commands.evaluate import LabelsFileError, read_labels


def _row(sha: str, label: str, attack_type: str | None) -> dict:
    return {
        "sha256": sha,
        "label": label,
        "attack_type": attack_type,
        "reviewer_count": 2,
        "reviewed_at": "2026-12-06T12:00:00.000+00:00",
        "submission_id": "a" * 64,
        "verdict_id": "v000001",
        "decision": "REVIEW",
        "policy_version": "p-1",
        "model_version": "7",
    }


def test_export_rows_become_the_files_with_those_bytes(tmp_path: Path):
    media = tmp_path / "media"
    (media / "nested").mkdir(parents=True)
    genuine, attack = media / "one.mp4", media / "nested" / "two.webm"
    genuine.write_bytes(b"genuine clip bytes")
    attack.write_bytes(b"attack clip bytes")
    export = tmp_path / "verdicts.csv"
    export.write_text(
        export_csv(
            [
                _row(hashlib.sha256(b"genuine clip bytes").hexdigest(), "genuine", None),
                _row(hashlib.sha256(b"attack clip bytes").hexdigest(), "attack", "face_swap"),
            ]
        ),
        encoding="utf-8",
    )
    rows = read_labels(export, media)
    assert [(r.path, r.label, r.attack_type) for r in rows] == [
        (genuine.resolve(), "genuine", None),
        (attack.resolve(), "attack", "face_swap"),
    ]


def test_export_without_media_or_with_a_missing_clip_is_a_clear_error(tmp_path: Path):
    export = tmp_path / "verdicts.csv"
    export.write_text(export_csv([_row("f" * 64, "attack", "mask")]), encoding="utf-8")
    with pytest.raises(LabelsFileError, match="--media"):
        read_labels(export)
    (tmp_path / "media").mkdir()
    with pytest.raises(LabelsFileError, match=r"no file under .* has SHA-256 f{64}"):
        read_labels(export, tmp_path / "media")
