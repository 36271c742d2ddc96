"""Structure-aware fuzzing of validation and sampling, through the sandbox the functions use.

Properties, for every mutated file: a report comes back (no exception escapes, no ERROR), the
sandboxed work stays within its wall-clock and memory limits, and a file that is accepted and
sampled satisfies the coverage invariant against a full reference decode of the same bytes.

``make test`` runs a seeded slice (KYC_FUZZ_EXAMPLES, default 40); ``make fuzz`` runs thousands
and prints the figures (cases, outcomes, slowest case, peak memory).
"""

from __future__ import annotations

import collections
import hashlib
import os
import resource
import tempfile
import time
from pathlib import Path

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError
from kyc.media.isolated import sample_isolated, validate_isolated
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams
from kyc.media.sandbox import SandboxLimits, run_sandboxed
from tests.fixtures.clips import make_clip
from tests.fixtures.sampling_clips import make_index_clip, read_index
from tests.fixtures.structure_fuzz import ATTACK_KINDS, build_attack, iso_fields, matroska_fields, mutate
from tests.fixtures.timeline_oracle import coverage_problems, displayed_times
from tests.unit.media.test_validation_corpus import CORPUS

EXAMPLES = int(os.environ.get("KYC_FUZZ_EXAMPLES", "40"))
LIMITS = MediaLimits(min_side=16, decode_budget_s=5.0)
SANDBOX = SandboxLimits(memory_bytes=1024 << 20, cpu_s=30, wall_s=10.0)
PARAMS = SamplingParams(frame_count=16, max_side=128)
CORPUS_SEEDS = (
    "axm__h265_bframes.mp4", "axm__sample_with_invalid_nalu.mp4", "mbunny__edts.mp4",
    "axm__sample_portrait.mp4", "axm__sample_fragmented.mp4", "axm__bear-vp9-odd-dimensions.webm",
    "libwebm__bbb_480p_vp9_opus_1second.webm", "axm__sample_with_htc_rotation_track_name.mkv",
    "moviepy__no_duration.webm", "axm__roadtrip-vp92-10bit.webm",
)  # fmt: skip

_WORKDIR = Path(tempfile.mkdtemp(prefix="kyc-structure-fuzz-"))


def _seeds() -> list[tuple[str, bytes]]:
    vp9 = {"codec": "libvpx-vp9", "container": "webm"}
    made = [
        make_index_clip(_WORKDIR / "index.mp4", [i / 30 for i in range(90)], bframes=2, gop=15),
        make_index_clip(_WORKDIR / "index.webm", [i / 30 for i in range(90)], **vp9),
        make_clip(_WORKDIR / "aac.mp4", seconds=2.0, width=160, height=120, audio=True),
        make_clip(_WORKDIR / "hevc.mov", codec="hevc", container="mov", seconds=1.5, width=160, height=120),
    ]  # fmt: skip
    real = [CORPUS / name for name in CORPUS_SEEDS if (CORPUS / name).is_file()]
    return [(p.name, p.read_bytes()) for p in made + real]


SEEDS = _seeds()
FIELDS = {
    name: (matroska_fields(data) if data[:4] == b"\x1a\x45\xdf\xa3" else iso_fields(data))
    for name, data in SEEDS
}
FIGURES: dict[str, object] = {"outcomes": collections.Counter(), "fields": collections.Counter()}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str, bytes]:
    name, data = draw(st.sampled_from(SEEDS))
    kinds = []
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(FIELDS[name]))
        data = mutate(data, field, draw(st.integers(0, 63)), draw(st.integers(0, 2**32 - 1)))
        kinds.append(field.kind)
    return name, "+".join(sorted(kinds)), data


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> object:
    started = time.monotonic()
    yield
    if os.environ.get("KYC_FUZZ_FIGURES"):
        outcomes = FIGURES["outcomes"]
        print(f"\nstructure fuzz: {sum(outcomes.values())} cases in {time.monotonic() - started:.0f} s")
        print(f"  slowest sandboxed call {FIGURES.get('max_wall_s', 0):.2f} s (limit {SANDBOX.wall_s:.0f} s)")
        allowance = SANDBOX.memory_bytes >> 20
        print(f"  peak child RSS {FIGURES.get('max_rss_mib', 0):.0f} MiB (allowance {allowance} MiB)")
        for outcome, count in outcomes.most_common():
            print(f"  {count:6d}  {outcome}")
        print(f"  fields mutated: {dict(FIGURES['fields'].most_common())}")


def _keep(data: bytes) -> str:
    """Save a failing case where a person can replay it; return the path."""
    kept = Path("build/fuzz-failures") / f"{hashlib.sha256(data).hexdigest()[:16]}.bin"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(data)
    return str(kept)


def _rss_bound() -> int:
    """A forked child's peak RSS counts the pages it shares with its parent (a whole pytest run can be
    over 1 GiB), so the bound is the parent's own peak plus the child's allowance of new memory."""
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return parent_peak + SANDBOX.memory_bytes


def _record(outcome: str, kinds: str, usage: object) -> None:
    FIGURES["outcomes"][outcome] += 1
    FIGURES["fields"].update(kinds.split("+"))
    if usage is not None:
        FIGURES["max_wall_s"] = max(FIGURES.get("max_wall_s", 0.0), usage.wall_s)
        FIGURES["max_rss_mib"] = max(FIGURES.get("max_rss_mib", 0.0), usage.max_rss_bytes / 2**20)


def test_seed_fields_found() -> None:
    """The mutators must find fields in every seed, or the fuzzer tests nothing."""
    assert all(FIELDS[name] for name, _ in SEEDS)
    kinds = {f.kind for fields in FIELDS.values() for f in fields}
    assert {
        "duration",
        "timescale",
        "table_entry",
        "fourcc",
        "ebml_duration",
        "ebml_codec_id",
        "ebml_uint",
    } <= kinds


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)
@given(case=mutated())
def test_mutated_structure_invalid_or_covered(case: tuple[str, str, bytes]) -> None:
    _seed, kinds, data = case
    path = _WORKDIR / "upload.bin"
    path.write_bytes(data)

    report, usage = validate_isolated(path, LIMITS, SANDBOX)
    assert report.accepted is (report.reason is None) and isinstance(report.reason, ReasonCode | None)
    if usage is not None:
        assert usage.wall_s < SANDBOX.wall_s + 2 and usage.max_rss_bytes < _rss_bound()
    if not report.accepted:
        _record(f"validate INVALID {report.reason}", kinds, usage)
        return
    try:
        sample, usage = sample_isolated(path, PARAMS, LIMITS, SANDBOX)
    except MediaRefusedError as exc:
        _record(f"extract INVALID {exc.reason}", kinds, None)
        return
    assert usage.wall_s < SANDBOX.wall_s + 2 and usage.max_rss_bytes < _rss_bound()
    try:  # the reference decodes hostile bytes too: in a sandbox of its own
        shown = run_sandboxed(lambda: displayed_times(path), SANDBOX).value
    except MediaRefusedError:
        _record("sampled; reference decode failed", kinds, usage)
        return
    sampled = [sample.start_s + f.pts_s for f in sample.frames]
    problems = coverage_problems(sampled, shown, PARAMS.frame_count)
    assert problems == [], (kinds, _keep(data), problems)
    _record("sampled, coverage holds", kinds, usage)


# --- attack mutations (issue 22): each must be refused with a reason code, or sampled as it plays ---

ATTACK_SOURCE = make_index_clip(
    _WORKDIR / "attack_source.mp4", [i / 30 for i in range(60)], bframes=2, gop=15
)


def _played_indices(path: Path) -> dict[float, int]:
    """What a plain full decode shows at each time: the index the index clip's picture carries."""
    shown: dict[float, int] = {}
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                if frame.pts is not None:
                    shown[round(float(frame.pts * frame.time_base), 6)] = read_index(
                        frame.to_ndarray(format="rgb24")
                    )
    return shown


@settings(
    max_examples=max(6, EXAMPLES // 2),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)
@given(kind=st.sampled_from(ATTACK_KINDS), choices=st.lists(st.integers(0, 2**16), min_size=4, max_size=4))
def test_attack_mutations_refused_or_sampled_as_played(kind: str, choices: list[int]) -> None:
    path = build_attack(kind, choices, ATTACK_SOURCE, _WORKDIR / "attack")
    report, usage = validate_isolated(path, LIMITS, SANDBOX)
    assert report.accepted is (report.reason is None)
    if not report.accepted:
        _record(f"attack {kind}: validate INVALID {report.reason}", kind, usage)
        return
    try:
        sample, usage = sample_isolated(path, PARAMS, LIMITS, SANDBOX)
    except MediaRefusedError as exc:
        _record(f"attack {kind}: extract INVALID {exc.reason}", kind, None)
        return
    shown = run_sandboxed(lambda: displayed_times(path), SANDBOX).value
    sampled = [sample.start_s + f.pts_s for f in sample.frames]
    assert coverage_problems(sampled, shown, PARAMS.frame_count) == [], (kind, _keep(path.read_bytes()))
    if kind != "display_matrix":  # the index picture is only readable upright
        played = _played_indices(path)
        got = [read_index(_jpeg_rgb(f.data)) for f in sample.frames]
        expected = [played[round(t, 6)] for t in sampled]
        assert got == expected, (kind, _keep(path.read_bytes()))
    _record(f"attack {kind}: sampled as played", kind, usage)


def _jpeg_rgb(data: bytes) -> object:
    import cv2
    import numpy as np

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
