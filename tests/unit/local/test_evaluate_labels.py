"""`kycscreen evaluate`'s labels file: the optional fake_share column of partial fakes (issue 24)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyclocal.calibration_demo import build_partial_fakes
from kyclocal.commands.evaluate import LabelsFileError, read_labels


def test_fake_share_column_is_read_as_a_fraction(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,label,attack_type,fake_share\na.mp4,attack,splice,25%\nb.mp4,attack,replay,\nc.mp4,genuine,,\nd.mp4,attack,splice,0.4\n"
    )
    rows = read_labels(labels)
    assert [r.fake_share for r in rows] == [0.25, None, None, 0.4]


@pytest.mark.parametrize("bad", ["0", "1.5", "abc", "150%"])
def test_fake_share_out_of_range_is_refused(tmp_path: Path, bad: str) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,label,attack_type,fake_share\na.mp4,attack,splice,{bad}\n")
    with pytest.raises(LabelsFileError, match="fake_share"):
        read_labels(labels)


def test_demo_partial_fakes_label_their_share_and_position(tmp_path: Path) -> None:
    rows = read_labels(build_partial_fakes(tmp_path, shares=(0.2,), positions=("start", "end"), seconds=1.0))
    assert [(r.path.name, r.attack_type, r.fake_share) for r in rows] == [
        ("splice-start-20.mp4", "splice-start", 0.2),
        ("splice-end-20.mp4", "splice-end", 0.2),
    ]
    assert all(r.path.stat().st_size > 0 for r in rows)
