"""Container forensics on real corpus captures, with the expected facts written down per file (from
the MANIFEST notes and ffprobe-style tags), and on a clip we signed (the C2PA box changes nothing)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kyc.domain.provenance import ProvenancePolicy, forensic_signals
from kyc.media.limits import MediaLimits
from kyc.media.validation import validate_upload
from tests.fixtures.c2pa_clips import make_ca, manifest, sign
from tests.fixtures.clips import make_clip

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "media"
# the corpus phone clips are shorter than a selfie; relax the duration floor to read their containers
LIMITS = replace(MediaLimits(), min_duration_s=0.05, allowed_codecs=frozenset({"h264", "hevc"}))
UPLOAD = "2026-11-29T12:00:00Z"


def facts(name: str) -> dict:
    path = CORPUS / name
    if not path.exists():
        pytest.skip("corpus not present")
    report = validate_upload(path, LIMITS)
    assert report.accepted, report
    assert report.forensics is not None
    return report.forensics


def signals(container: dict) -> set[str]:
    policy = ProvenancePolicy(max_age_days=100_000)  # the corpus is years old; age is tested elsewhere
    return {s.name for s in forensic_signals(container, received_at=UPLOAD, policy=policy)}


def test_iphone_capture_reads_as_a_consistent_apple_capture() -> None:
    got = facts("axm__dolbyVision-hdr.MOV")

    assert (got["make"], got["model"], got["software"]) == ("Apple", "iPhone 14 Pro", "16.4.1")
    assert (
        got["major_brand"].strip() == "qt" and got["handler"] == "Core Media Video" and got["codec"] == "hevc"
    )
    assert got["creation_time"].startswith("2023-05-09T11:48:30")
    assert got["movie_created"] == got["movie_modified"] == "2023-05-09T11:48:30+00:00"
    assert signals(got) == set()


def test_android_capture_reads_as_a_consistent_android_capture() -> None:
    got = facts("axm__portrait_4k60.mp4")

    assert got["android_version"] == "12" and got["major_brand"] == "mp42" and got["handler"] == "VideoHandle"
    assert signals(got) == set()


def test_remuxed_phone_clip_shows_the_muxer() -> None:
    got = facts("axm__pixel7_videoOnly_cleaned.mp4")  # a Pixel 7 capture re-muxed by FFmpeg (Lavf60)

    assert got["encoder"] == "Lavf60.16.100" and got["movie_created"] is None
    assert signals(got) == {"editing_software"}


def test_c2pa_box_does_not_disturb_validation(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", width=320, height=240, fps=15, seconds=1.0)
    signed = sign(clip, tmp_path / "signed.mp4", make_ca(), manifest("digitalCapture"))

    plain, with_manifest = validate_upload(clip, MediaLimits()), validate_upload(signed, MediaLimits())

    assert plain.accepted and with_manifest.accepted
    assert with_manifest.media == plain.media
