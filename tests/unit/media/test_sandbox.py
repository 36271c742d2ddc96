"""The sandbox stops what the in-process budgets cannot: a stalled call, an allocation bomb, a crash.

Each hostile behaviour is run for real in the forked child (test hooks are plain callables);
the parent must answer INVALID with the right code, and stay alive for the next upload.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kyc.domain.reasons import ReasonCode
from kyc.media import isolated
from kyc.media.errors import MediaRefusedError
from kyc.media.isolated import sample_isolated, validate_isolated
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams, sample_frames
from kyc.media.sandbox import SandboxError, SandboxLimits, run_sandboxed
from kyc.media.validation import validate_upload
from tests.fixtures.clips import make_clip

LIMITS = MediaLimits(min_side=16)
ROOMY = SandboxLimits(memory_bytes=1024 * 1024 * 1024, cpu_s=60, wall_s=30.0)


def _refusal(work, limits: SandboxLimits = ROOMY) -> MediaRefusedError:
    with pytest.raises(MediaRefusedError) as caught:
        run_sandboxed(work, limits)
    return caught.value


def test_stalled_call_killed_at_the_wall_clock() -> None:
    started = time.monotonic()
    refusal = _refusal(lambda: time.sleep(60), SandboxLimits(memory_bytes=64 << 20, cpu_s=60, wall_s=1.0))
    assert refusal.reason == ReasonCode.DECODE_BUDGET_EXCEEDED
    assert time.monotonic() - started < 5


def _spin() -> None:
    while True:
        pass


def test_cpu_burner_stopped_by_rlimit_cpu() -> None:
    refusal = _refusal(_spin, SandboxLimits(memory_bytes=64 << 20, cpu_s=1, wall_s=30.0))
    assert refusal.reason == ReasonCode.DECODE_BUDGET_EXCEEDED and "SIGXCPU" in refusal.message


@pytest.mark.parametrize(
    "bomb",
    [lambda: bytearray(8 << 30), lambda: np.ones((1 << 31,), dtype=np.float64).sum()],
    ids=["bytearray", "numpy"],
)
def test_allocation_bomb_stopped_by_rlimit_as(bomb) -> None:
    refusal = _refusal(bomb, SandboxLimits(memory_bytes=256 << 20, cpu_s=60, wall_s=30.0))
    assert refusal.reason == ReasonCode.DECODE_BUDGET_EXCEEDED


_FRESH_PARENT = """
import json, sys
from kyc.media.isolated import sample_isolated, validate_isolated
from kyc.media.errors import MediaRefusedError
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams
from kyc.media.sandbox import SandboxLimits
limits = MediaLimits(min_side=16, min_duration_s=0.5)
sandbox = SandboxLimits(memory_bytes=int(sys.argv[2]) << 20, cpu_s=60, wall_s=60.0)
report, _ = validate_isolated(sys.argv[1], limits, sandbox)
try:
    sample_isolated(sys.argv[1], SamplingParams(frame_count=8), limits, sandbox)
    sampled = None
except MediaRefusedError as exc:
    sampled = str(exc.reason)
print(json.dumps([report.reason, sampled]))
"""


@pytest.fixture(scope="module")
def uhd_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("uhd") / "uhd.mp4", width=3840, height=2160, frames=32, fps=30)


@pytest.mark.parametrize(("allowance_mb", "expected"), [(8, ReasonCode.DECODE_BUDGET_EXCEEDED), (1024, None)])
def test_decoder_allocation_over_the_allowance_is_a_budget_refusal(
    uhd_clip: Path, allowance_mb: int, expected: ReasonCode | None
) -> None:
    """A real 4K decode given 8 MiB of address space beyond its parent's: the budget code, not CORRUPT_MEDIA.

    Run from a fresh interpreter: the child may reuse heap its parent freed (it lies inside the
    inherited address space), and a pytest process that has decoded 4K before has plenty.
    """
    run = subprocess.run(
        [sys.executable, "-c", _FRESH_PARENT, str(uhd_clip), str(allowance_mb)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(run.stdout.splitlines()[-1]) == [expected, expected]


@pytest.mark.parametrize(
    "crash",
    [lambda: ctypes.string_at(0), lambda: os.kill(os.getpid(), signal.SIGSEGV), os.abort],
    ids=["null-read", "sigsegv", "abort"],
)
def test_crashing_child_is_decoder_crashed_and_parent_lives_on(crash) -> None:
    refusal = _refusal(crash)
    assert refusal.reason == ReasonCode.DECODER_CRASHED
    assert run_sandboxed(lambda: 41 + 1, ROOMY).value == 42  # the parent is fine


def test_bug_in_child_is_raised_as_sandbox_error_with_its_traceback() -> None:
    with pytest.raises(SandboxError, match="KeyError"):
        run_sandboxed(lambda: {}["missing"], ROOMY)


def test_validate_isolated_same_report_as_in_process(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.webm", codec="vp9", container="webm", seconds=1.5, audio=True)
    report, usage = validate_isolated(clip, LIMITS, ROOMY)
    assert report == validate_upload(clip, LIMITS)
    assert usage is not None and usage.max_rss_bytes > 0


def test_sample_isolated_same_frames_as_in_process(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0)
    sample, _ = sample_isolated(clip, SamplingParams(frame_count=6), LIMITS, ROOMY)
    assert sample == sample_frames(clip, SamplingParams(frame_count=6), LIMITS, seed=sample.sampling_seed)


def test_validate_isolated_stalled_decode_is_invalid_with_the_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.5)
    monkeypatch.setattr(isolated, "validate_upload", lambda *args, **kw: time.sleep(60))
    report, _ = validate_isolated(clip, LIMITS, SandboxLimits(memory_bytes=64 << 20, cpu_s=60, wall_s=1.0))
    assert (report.accepted, report.reason) == (False, ReasonCode.DECODE_BUDGET_EXCEEDED)
    assert report.sha256 == validate_upload(clip, LIMITS).sha256 and report.size_bytes == clip.stat().st_size


def test_sandbox_limits_sized_from_the_function() -> None:
    limits = SandboxLimits.for_function(memory_mb=3008, remaining_s=900, budget_s=60, threads=2)
    assert (limits.memory_bytes, limits.wall_s, limits.cpu_s) == (3008 << 20, 65.0, 131)
    tight = SandboxLimits.for_function(memory_mb=1024, remaining_s=30, budget_s=60, threads=2)
    assert tight.wall_s == 20.0  # ten seconds are kept for the parent to store the answer


@pytest.mark.parametrize("reason", [ReasonCode.PLAYLIST_OR_SCRIPT, ReasonCode.UNRECOGNISED_FORMAT])
def test_a_refusal_decided_from_bytes_is_never_relabelled_a_memory_budget(reason: ReasonCode) -> None:
    """The child fills most of its allowance, then refuses on a sniffed signature: the refusal keeps
    its own reason (a memory-bound decoder refusal would be DECODE_BUDGET_EXCEEDED, the test below)."""

    def fill_then_refuse() -> None:
        ballast = bytearray(200 << 20)  # 200 MiB of a 256 MiB allowance: within the "near" margin
        raise MediaRefusedError(reason, f"refused with {len(ballast)} bytes held")

    refusal = _refusal(fill_then_refuse, SandboxLimits(memory_bytes=256 << 20, cpu_s=60, wall_s=30.0))
    assert refusal.reason is reason


def test_a_decoder_refusal_near_the_memory_limit_is_a_budget() -> None:
    def fill_then_refuse() -> None:
        # allocate until RLIMIT_AS refuses, as a decoder's frame buffers do: one computed ballast
        # (limit minus the address space in use) fell short in long runs, where the allocator reused
        # freed space the measure counted and the peak never came near the limit (seen twice)
        held = []
        try:
            while True:
                held.append(bytearray(8 << 20))
        except MemoryError:
            held.pop()  # room to build the refusal; the peak stays where the limit stopped it
        raise MediaRefusedError(ReasonCode.CORRUPT_MEDIA, f"invalid data with {len(held) * 8} MiB held")

    refusal = _refusal(fill_then_refuse, SandboxLimits(memory_bytes=256 << 20, cpu_s=60, wall_s=30.0))
    assert refusal.reason is ReasonCode.DECODE_BUDGET_EXCEEDED
