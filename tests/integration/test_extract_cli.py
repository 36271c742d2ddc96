"""`kycscreen extract` on real phone clips: the files a person inspects are the upright frames."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import pytest

from kyclocal.cli import main
from tests.unit.media.test_validation_corpus import CORPUS

ROTATED = CORPUS / "mbunny__rotate-buck-bunny.mp4"  # coded 1920x1080, display matrix -90: portrait


@pytest.mark.skipif(not ROTATED.exists(), reason="the shared corpus is not beside the project")
def test_extract_cli_rotated_phone_clip_writes_upright_portrait_frames(tmp_path: Path) -> None:
    assert main(["extract", str(ROTATED), "--out", str(tmp_path), "--frames", "8"]) == 0

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["rotation"] == 90 and len(manifest["frames"]) == 8  # matrix -90 CCW = 90 clockwise
    for entry in manifest["frames"]:
        data = (tmp_path / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        with av.open(str(tmp_path / entry["file"])) as image:
            frame = next(image.decode(video=0))
        assert (frame.width, frame.height) == (entry["width"], entry["height"])
        assert frame.height > frame.width  # upright: the phone was held in portrait
        # the batch object the pipeline would store holds the same bytes at the manifest's range
        blob = (tmp_path / entry["object"]).read_bytes()
        assert blob[entry["offset"] : entry["offset"] + entry["length"]] == data
    assert manifest["source_sha256"] == hashlib.sha256(ROTATED.read_bytes()).hexdigest()


def test_extract_cli_hostile_file_is_refused_with_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    playlist = tmp_path / "clip.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n")

    assert main(["extract", str(playlist), "--out", str(tmp_path / "out")]) == 1
    assert "PLAYLIST_OR_SCRIPT" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_extract_cli_seed_from_a_manifest_reproduces_that_sample(tmp_path: Path) -> None:
    """The journey an auditor takes: the stored manifest names its seed; extracting again with it
    gives the same frames, byte for byte, while a fresh run draws other moments."""
    from tests.fixtures.clips import make_clip

    clip = make_clip(tmp_path / "clip.mp4", seconds=5.0)
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["extract", str(clip), "--out", str(first), "--frames", "8"]) == 0
    recorded = json.loads((first / "manifest.json").read_text())
    assert len(recorded["sampling_seed"]) == 32
    assert (
        main(
            ["extract", str(clip), "--out", str(again), "--frames", "8", "--seed", recorded["sampling_seed"]]
        )
        == 0
    )
    replayed = json.loads((again / "manifest.json").read_text())
    assert [f["sha256"] for f in replayed["frames"]] == [f["sha256"] for f in recorded["frames"]]
    others = [
        json.loads((tmp_path / f"other{i}" / "manifest.json").read_text())
        for i in range(3)
        if main(["extract", str(clip), "--out", str(tmp_path / f"other{i}"), "--frames", "8"]) == 0
    ]
    assert any([f["pts_s"] for f in o["frames"]] != [f["pts_s"] for f in recorded["frames"]] for o in others)
