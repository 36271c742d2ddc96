"""`kycscreen run --json` over every real corpus file: one line per file, the outcome the table expects.

The expected outcome of each file is written down once, in tests/unit/media/test_validation_corpus.py;
here the whole pipeline must reach it: a refused file is INVALID with that exact code, an accepted
one gets REVIEW (the reference scorer is never calibrated: MODEL_NOT_CALIBRATED), and nothing ends
in ERROR.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyclocal.cli import main
from tests.unit.media.test_validation_corpus import CORPUS, EXPECTED

FILES = sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []


@pytest.mark.skipif(not FILES, reason="the shared corpus is not beside the project")
def test_corpus_run_json_one_line_per_file_with_expected_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = main(["run", "--json", "--no-state", "--frames", "4", "--timeout", "240", *map(str, FILES)])

    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert exit_code == 0
    assert len(lines) == len(FILES)
    rows = [json.loads(line) for line in lines]
    assert [Path(r["file"]) for r in rows] == FILES
    for row in rows:
        expected, why = EXPECTED[Path(row["file"]).name]
        assert len(row["submission_id"]) == 64
        if expected is None:
            # The reference scorer is never calibrated: on real media it neither PASSes nor REJECTs.
            assert row["decision"] == "REVIEW" and "MODEL_NOT_CALIBRATED" in row["reasons"], (row, why)
            assert row["model"] and row["policy_version"]
        else:
            assert (row["decision"], row["reasons"]) == ("INVALID", [str(expected)]), (row, why)
            assert row["frames_scored"] == 0
        assert row["input_sha256"] is None or len(row["input_sha256"]) == 64
