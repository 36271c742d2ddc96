"""One local stack per test session: moto server, real state machine, real handlers, real model server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip
from tests.fixtures.reuse_clips import CORPUS  # ../shared/corpus/media, or KYC_CORPUS_DIR

__all__ = ["CORPUS", "screen"]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """Module-scoped: one stack per module, since a process serves one moto server at a time."""
    with LocalStack(LocalStackSettings(frame_count=16)) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_fault(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").router.fault = None


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ordinary clips in several codecs and containers, made once per session."""
    root = tmp_path_factory.mktemp("clips")
    specs = {
        "h264.mp4": {"codec": "h264", "container": "mp4"},
        "hevc.mov": {"codec": "hevc", "container": "mov"},
        "vp9.webm": {"codec": "vp9", "container": "webm"},
        "av1.mp4": {"codec": "av1", "container": "mp4"},
        "h264-rotated.mp4": {"codec": "h264", "container": "mp4", "rotation": 90},
    }
    return {
        name: make_clip(root / name, width=320, height=240, fps=15, seconds=2.0, **spec)
        for name, spec in specs.items()
    }


def crash_in(function_name: str, message: str = "injected crash") -> Callable[[str, dict], None]:
    """A router fault: every invocation of ``function_name`` raises, as a crashed handler would."""

    def fault(name: str, event: dict) -> None:
        if name == function_name:
            raise RuntimeError(message)

    return fault


def screen(stack: LocalStack, path: Path, key: str | None = None, timeout_s: float = 120.0) -> dict:
    ident = stack.upload(path, key=key)
    item = stack.wait_for_decision(ident["submission_id"], timeout_s=timeout_s)
    assert item is not None, f"no decision for {path.name}"
    return item | {"_ident": ident}
