"""Header-duration lies: the sampler covers what plays, validation refuses the lie.

The reference is a plain full decode (tests/fixtures/timeline_oracle.py), never the sampler.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SamplingParams, sample_frames
from kyc.media.validation import validate_upload
from tests.fixtures.hostile import iso_boxes, mp4_with_short_header, webm_with_short_duration
from tests.fixtures.sampling_clips import make_index_clip, read_index
from tests.fixtures.timeline_oracle import coverage_problems, displayed_times

LIMITS = MediaLimits(min_side=16)
TEN_SECONDS = [i / 30 for i in range(300)]


def _index(data: bytes) -> int:
    return read_index(
        cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("timeline")
    mp4 = make_index_clip(root / "ten.mp4", TEN_SECONDS)
    webm = make_index_clip(root / "ten.webm", TEN_SECONDS, codec="libvpx-vp9", container="webm")
    return {
        "mp4": mp4,
        "webm": webm,
        "mp4_claims_2s": mp4_with_short_header(mp4, root / "short.mp4", 2.0, 10.0),
        "webm_claims_2s": webm_with_short_duration(webm, root / "short.webm", 2.0),
        "webm_claims_30s": webm_with_short_duration(webm, root / "long.webm", 30.0),
    }


@pytest.mark.parametrize("case", ["mp4_claims_2s", "webm_claims_2s", "webm_claims_30s"])
def test_validate_upload_header_duration_lie_refused(clips: dict[str, Path], case: str) -> None:
    report = validate_upload(clips[case], LIMITS)
    assert (report.accepted, report.reason) == (False, ReasonCode.INCONSISTENT_TIMING), report.message


@pytest.mark.parametrize("case", ["mp4", "webm"])
def test_validate_upload_honest_header_accepted(clips: dict[str, Path], case: str) -> None:
    report = validate_upload(clips[case], LIMITS)
    assert report.accepted and report.media is not None
    assert report.media.duration_s == pytest.approx(10.0, abs=0.05)


@pytest.mark.parametrize(
    ("case", "claimed"),
    [
        ("mp4", 10.0),
        ("webm", 10.0),
        ("mp4_claims_2s", 2.0),
        ("webm_claims_2s", 2.0),
    ],
)
def test_sample_frames_header_lie_screens_the_real_span(
    clips: dict[str, Path], case: str, claimed: float
) -> None:
    path = clips[case]
    shown = displayed_times(path)
    # All the pictures are there (without its edit list the MP4 shows from the B-frame delay on).
    assert len(shown) == 300 and shown[-1] - shown[0] == pytest.approx(299 / 30, abs=1e-3)
    sample = sample_frames(path, SamplingParams(frame_count=32), LIMITS)
    sampled = [sample.start_s + f.pts_s for f in sample.frames]
    assert coverage_problems(sampled, shown, 32) == []
    # What each image shows agrees with the time it is filed under.
    assert [_index(f.data) for f in sample.frames] == [round((t - shown[0]) * 30) for t in sampled]
    assert sampled[-1] - shown[0] > 9.5 and len(sample.frames) == 32
    manifest = sample.manifest(source_sha256="0" * 64)
    assert manifest["header_duration_s"] == pytest.approx(claimed, abs=0.01)
    assert manifest["duration_s"] == pytest.approx(10.0, abs=0.05)


def test_sample_frames_composition_offsets_rewritten_refused(tmp_path: Path) -> None:
    """Found by the structure fuzzer: the first ``ctts`` run emptied, so the container's times run
    backwards against the decoder's display order and the leading pictures would never be sampled."""
    clip = make_index_clip(tmp_path / "clip.mp4", [i / 30 for i in range(90)], bframes=3, gop=15)
    data = bytearray(clip.read_bytes())
    ((at, _size, _kind),) = iso_boxes(data, {b"ctts"})
    data[at + 16 : at + 20] = (0).to_bytes(4, "big")  # first entry: sample_count 1 -> 0
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    with pytest.raises(MediaRefusedError) as caught:
        sample_frames(broken, SamplingParams(frame_count=16), LIMITS)
    assert caught.value.reason == ReasonCode.INCONSISTENT_TIMING
    assert len(sample_frames(clip, SamplingParams(frame_count=16), LIMITS).frames) == 16  # the intact clip
