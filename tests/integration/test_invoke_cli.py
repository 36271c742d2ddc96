"""`kycscreen invoke` with the sample events in events/: the Docker-free `sam local invoke`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyclocal.cli import main
from tests.fixtures.clips import make_clip

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("invoke") / "clip.mp4", width=320, height=240, fps=15, seconds=2.0
    )


def _invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["invoke", *args])
    out = capsys.readouterr().out
    try:
        return code, json.loads(out)
    except ValueError:
        raise AssertionError(f"not one JSON document: {out!r}") from None


def test_invoke_validate_event_with_upload_accepts_clip(
    capsys: pytest.CaptureFixture[str], clip: Path
) -> None:
    code, result = _invoke(capsys, "validate", str(EVENTS / "validate.json"), "--upload", str(clip))

    assert code == 0
    assert result["accepted"] is True and result["media"]["codec"] == "h264"


def test_invoke_extract_event_with_upload_returns_pointers(
    capsys: pytest.CaptureFixture[str], clip: Path
) -> None:
    code, result = _invoke(
        capsys, "ExtractFramesFunction", str(EVENTS / "extract.json"), "--upload", str(clip)
    )

    assert code == 0
    assert result["frames_sampled"] > 0 and result["manifest_key"].endswith("/manifest.json")


def test_invoke_start_event_with_upload_admits_special_character_key(
    capsys: pytest.CaptureFixture[str], clip: Path
) -> None:
    code, result = _invoke(capsys, "start", str(EVENTS / "s3-object-created.json"), "--upload", str(clip))

    assert code == 1  # an EventBridge event is not an SQS batch: the handler says so, it does not guess
    code, result = _invoke(capsys, "start", str(EVENTS / "start-sqs-batch.json"), "--upload", str(clip))
    assert code == 0
    assert result == {"batchItemFailures": []}


def test_invoke_decide_and_reconcile_events_run_standalone(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = _invoke(capsys, "decide", str(EVENTS / "decide-invalid.json"))
    assert (code, result["decision"], result["reasons"]) == (0, "INVALID", ["PLAYLIST_OR_SCRIPT"])

    code, result = _invoke(capsys, "decide", str(EVENTS / "decide-error.json"))
    assert (code, result["decision"], result["reasons"]) == (0, "ERROR", ["SOURCE_MISSING"])

    code, result = _invoke(capsys, "reconcile", str(EVENTS / "reconcile-execution-timed-out.json"))
    assert (code, result["decision"]) == (0, "ERROR")


def test_invoke_unknown_function_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "nope", str(EVENTS / "validate.json")]) == 2
