"""Property: whatever bytes arrive, validate_upload returns a report quickly and never raises.

Runs a bounded, derandomized number of examples by default; set KYC_FUZZ_EXAMPLES for more.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyc.domain.reasons import ReasonCode
from kyc.media.limits import MediaLimits
from kyc.media.validation import validate_upload
from tests.fixtures.clips import make_clip

EXAMPLES = int(os.environ.get("KYC_FUZZ_EXAMPLES", "60"))
PER_CASE_BUDGET_S = 10.0
LIMITS = MediaLimits(decode_budget_s=5.0)

_WORKDIR = Path(tempfile.mkdtemp(prefix="kyc-fuzz-"))
SEEDS = [
    make_clip(_WORKDIR / "seed.mp4", seconds=1.2, width=160, height=120).read_bytes(),
    make_clip(
        _WORKDIR / "seed.webm", codec="vp9", container="webm", seconds=1.2, width=160, height=120
    ).read_bytes(),
    make_clip(
        _WORKDIR / "seed.mov", codec="hevc", container="mov", seconds=1.2, width=160, height=120
    ).read_bytes(),
]


@st.composite
def mutated_uploads(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "random", "header"]))
    base = bytearray(draw(st.sampled_from(SEEDS)))
    if kind == "random":
        return draw(st.binary(min_size=0, max_size=4096))
    if kind == "truncate":
        return bytes(base[: draw(st.integers(0, len(base)))])
    if kind == "splice":
        other = draw(st.sampled_from(SEEDS))
        cut_a, cut_b = draw(st.integers(0, len(base))), draw(st.integers(0, len(other)))
        return bytes(base[:cut_a]) + other[cut_b:]
    limit = 512 if kind == "header" else len(base) - 1
    for _ in range(draw(st.integers(1, 16))):
        at = draw(st.integers(0, min(limit, len(base) - 1)))
        base[at] = draw(st.integers(0, 255))
    tail = base[-2048:]  # the index (moov) sits at the end of PyAV-written MP4/MOV
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(tail) - 1))
        tail[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(base[:-2048]) + bytes(tail)


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=mutated_uploads())
def test_validate_upload_mutated_bytes_report_without_raising(data: bytes) -> None:
    path = _WORKDIR / "upload.bin"
    path.write_bytes(data)
    started = time.monotonic()
    report = validate_upload(path, LIMITS)
    assert time.monotonic() - started < PER_CASE_BUDGET_S
    assert report.accepted is (report.reason is None)
    assert report.reason is None or isinstance(report.reason, ReasonCode)
    assert report.size_bytes == len(data)
    assert (report.media is not None) is report.accepted
    report.to_dict()
