"""Reuse matching on the real corpus, as the pipeline samples it: no two unrelated clips match,
the one video the corpus holds in three containers does, and re-encoded, rescaled and trimmed
copies made with PyAV match their source and nothing else. Expected outcomes are written down
here, clip by clip, not derived from the code under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyc.domain.reuse import FrameSignature, IndexedFrame, ReuseParams, bands, perceptual_matches
from kyc.media.contact_sheet import decode_image
from kyc.media.errors import MediaRefusedError
from kyc.media.limits import MediaLimits
from kyc.media.recording_hash import frame_signatures
from kyc.media.sampling import SamplingParams, sample_frames
from kyclocal.copies import make_copy
from tests.fixtures.reuse_clips import CORPUS  # ../shared/corpus/media (or KYC_CORPUS_DIR)

PARAMS = ReuseParams()  # the template's defaults
# The androidx suite's one short video in three containers: the same frames, a true match.
SAME_SOURCE = {
    "axm__sample_fragmented.mp4",
    "axm__sample_with_htc_rotation_track_name.mkv",
    "axm__sample_with_invalid_nalu.mp4",
}


VP9_THREE_QUARTERS = {
    "encoder": "libvpx-vp9",
    "muxer": "webm",
    "bit_rate": 200_000,
    "scale": 0.75,
    "options": {"deadline": "realtime", "cpu-used": "8"},
}


def _hashes(path: Path) -> list[FrameSignature]:
    """The clip as CheckReuse sees it without face evidence (the corpus has no faces): scene hashes."""
    try:
        sample = sample_frames(path, SamplingParams(frame_count=16), MediaLimits())
    except MediaRefusedError:
        return []
    decoded = [(f.index, f.pts_s, decode_image(f.data).to_ndarray(format="rgb24")) for f in sample.frames]
    signatures = frame_signatures(decoded, [])
    return signatures if sum(s.scene is not None for s in signatures) >= 2 else []


def _lookup(index: dict[str, list[IndexedFrame]], own: list[FrameSignature], sid: str) -> set[str]:
    """What CheckReuse would find: the frames filed under any band of the clip's own scene hashes,
    every one received before it."""
    keys = {k for f in own if f.scene is not None for k in bands(f.scene, PARAMS.max_distance)}
    candidates = [f for k in keys for f in index.get(k, [])]
    found = perceptual_matches(
        own, candidates, own_submission_id=sid, own_indexed_at="2026-01-02T00:00:00.000000Z", params=PARAMS
    )
    return {m.submission_id for m in found}


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, list[FrameSignature]], dict[str, list[IndexedFrame]]]:
    clips = {p.name: h for p in sorted(CORPUS.iterdir()) if (h := _hashes(p))}
    index: dict[str, list[IndexedFrame]] = {}
    for name, hashes in clips.items():
        for f in hashes:
            if f.scene is None:
                continue
            for key in bands(f.scene, PARAMS.max_distance):
                index.setdefault(key, []).append(IndexedFrame(name, "2026-01-01T00:00:00.000000Z", f))
    return clips, index


def test_no_two_unrelated_corpus_clips_match(corpus) -> None:
    clips, index = corpus
    assert len(clips) >= 15  # the corpus's hashable clips: the test must look at many pairs
    for name, hashes in clips.items():
        expected = (SAME_SOURCE - {name}) if name in SAME_SOURCE else set()
        assert _lookup(index, hashes, name) == expected, name


@pytest.mark.parametrize(
    ("clip", "options"),
    [
        ("mbunny__sar_2x1.mp4", {"encoder": "libx264", "bit_rate": 200_000, "scale": 0.5}),
        ("axm__roadtrip-vp92-10bit.webm", {"encoder": "libx264", "bit_rate": 150_000, "trim_start_s": 0.5}),
        ("moviepy__video_with_failing_audio.mp4", VP9_THREE_QUARTERS),
    ],
)  # fmt: skip
def test_copies_match_their_source_and_nothing_else(corpus, tmp_path: Path, clip: str, options: dict) -> None:
    _, index = corpus
    suffix = ".webm" if options.get("muxer") == "webm" else ".mp4"
    copy = make_copy(CORPUS / clip, tmp_path / f"copy{suffix}", **options)
    assert _lookup(index, _hashes(copy), "copy") == {clip}
