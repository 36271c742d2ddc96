"""Reuse detection under secret sampling (issue 22), swept over many sampling draws.

Each upload's frames are sampled at secret points drawn per upload, so a copy's frames are never the
original's. Every frame of each clip is sampled, face-checked (the local face stage's detector) and
hashed once (``tests/fixtures/reuse_clips.HashedClip``); each comparison is then drawn again and
again, the earlier clip and the later one each under its own fresh random seed, and the miss rate
is asserted against a bound. The oracle is how the clips were made: a copy of the recording must be
flagged, a stranger at the kiosk must not be. Seeds differ on every run and are printed on failure.

Bounds (measured in benchmarks/reuse.py, docs/provenance.md; on the recording below: no copy of
these transformations missed, the face swap always flagged, kiosk strangers never flagged) with room
for chance. The face swap must carry its own code: labelled REUSED_RECORDING_FACE_SWAPPED on 229 of
300 draws at 8 frames and 84 of 100 at 32 with the in-step rule (``kyc.domain.reuse.frames_in_step``),
48-51 % and 0 % under the rule before it (body hash or close scene, order-free face), which these
floors fail (at 8 frames the old rule reaches the floor on under 0.3 % of runs, 2.8 sd; the new
one falls below it on under 0.05 %, 3.4 sd).
"""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path

import pytest

from kyc.domain.reuse import FINDING_KINDS, IndexedFrame, ReuseParams, bands, perceptual_matches
from tests.fixtures import reuse_clips as rc

PARAMS = ReuseParams()  # the template's defaults
DRAWS = 100
FRAMES = 8  # the local stack's FrameCount: fewer frames, fewer chances to meet, the hard case
# of DRAWS, per transformation: the most draws that may miss. Measured on this recording with hash
# r2 (commit b975fb2), 200 draws each: 0 missed for every one of them. r1 (main before issue 24's
# reuse-transforms work) missed rotate-5 and crop-top-10 on (nearly) every draw, rotate-3 and the
# other 10 % crops on a third to four fifths (docs/provenance.md): these bounds fail on r1.
MAX_MISSED = {
    name: 5
    for name in (
        "re-encode",
        "mirror",
        "letterbox",
        "crop-corner-5",
        "crop-left-10",
        "speed-1.25",
        "trim-0.5s",
        "rotate-5",
        "rotate-3",
        "crop-top-10",
        "crop-right-10",
        "crop-bottom-10",
        "crop-corner-10",
        "pillarbox",
        "mirror+crop-left-5",
    )
}
TRANSFORMS = tuple(MAX_MISSED)
MIN_SWAP_FLAGGED = 0.95  # share of draws with a finding (measured: 300 of 300 at 8 frames, 100 of 100 at 32)
# share of draws under REUSED_RECORDING_FACE_SWAPPED, per frame count (measured: 76.3 % of 300 at 8
# frames, 84 % of 100 at 32; before the in-step rule 48-51 % and 0 %)
MIN_SWAP_LABELLED = {8: 0.62, 32: 0.6}
EARLIER, LATER = "2026-01-01T00:00:00.000000Z", "2026-01-01T00:01:00.000000Z"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, rc.HashedClip]:
    work = Path(tmp_path_factory.mktemp("reuse-sweep"))
    faces = rc.mesh_faces()
    rec = rc.Recording("bunny", rc.Person(1), seed=100)
    frames = rec.frames()
    out = {"original": rc.hash_every_frame(rc.write(frames, work / "o.mp4", transform="original"), faces)}
    for name in TRANSFORMS:
        out[name] = rc.hash_every_frame(rc.write(frames, work / f"{name}.mp4", transform=name), faces)
    out["swap"] = rc.hash_every_frame(
        rc.write(rc.face_swap(rec, rc.Person(50)).frames(), work / "s.mp4"), faces
    )
    for p in range(4):
        kiosk = rc.kiosk("fragment", rc.Person(200 + p), seed=300 + p).frames()
        out[f"kiosk{p}"] = rc.hash_every_frame(rc.write(kiosk, work / f"k{p}.mp4"), faces)
    return out


def _outcome(later: list, earlier: list) -> str:
    """What CheckReuse records about the earlier clip: the frames sharing a band with the later
    clip's scenes (what the index returns), classified; 'none' when nothing met."""
    keys = {k for f in later if f.scene is not None for k in bands(f.scene, PARAMS.max_distance)}
    candidates = [
        IndexedFrame("EARLIER", EARLIER, f)
        for f in earlier
        if f.scene is not None and keys & set(bands(f.scene, PARAMS.max_distance))
    ]
    found = perceptual_matches(
        later, candidates, own_submission_id="LATER", own_indexed_at=LATER, params=PARAMS
    )
    return found[0].kind if found else "none"


def _draws(clips: dict[str, rc.HashedClip], later: str, earlier: str, draws: int, frames: int):
    """``draws`` comparisons, each clip sampled under its own fresh seed: (outcome, seeds) each."""
    for _ in range(draws):
        seeds = secrets.token_hex(16), secrets.token_hex(16)
        yield _outcome(clips[later].sample(seeds[0], frames), clips[earlier].sample(seeds[1], frames)), seeds


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_copies_are_flagged_whatever_points_either_upload_samples(clips: dict, transform: str) -> None:
    outcomes = list(_draws(clips, transform, "original", DRAWS, FRAMES))
    missed = [seeds for kind, seeds in outcomes if kind not in FINDING_KINDS]
    assert len(missed) <= MAX_MISSED[transform], (Counter(k for k, _ in outcomes), missed[:3])


@pytest.mark.parametrize(("frames", "draws"), [(FRAMES, DRAWS), (32, 30)])
def test_a_face_swap_over_the_recording_is_flagged_and_named_whatever_the_sample_points(
    clips: dict, frames: int, draws: int
) -> None:
    """Issue 24: the swap is labelled as one (the analyst needs the right code) at the local
    stack's 8 frames and the template's 32, not read as another person at the kiosk nor as
    MEDIA_REUSED only."""
    outcomes = list(_draws(clips, "swap", "original", draws, frames))
    kinds = Counter(kind for kind, _ in outcomes)
    missed = [seeds for kind, seeds in outcomes if kind not in FINDING_KINDS]
    assert draws - len(missed) >= MIN_SWAP_FLAGGED * draws, (kinds, missed[:3])
    assert kinds["face_swap"] >= MIN_SWAP_LABELLED[frames] * draws, kinds


@pytest.mark.parametrize(("frames", "draws"), [(FRAMES, DRAWS), (32, 30)])
def test_strangers_at_one_kiosk_are_never_flagged_at_any_frame_count(
    clips: dict, frames: int, draws: int
) -> None:
    """32 frames is the template's FrameCount: with a fixed 4 frames to meet, more frames were more
    chances, and strangers met (30 of 360 draws flagged as a face swap before MIN_MATCH_SHARE)."""
    flagged = []
    for p in range(4):
        for q in range(4):
            if p != q:
                flagged += [
                    (p, q, kind, seeds)
                    for kind, seeds in _draws(clips, f"kiosk{p}", f"kiosk{q}", draws, frames)
                    if kind in FINDING_KINDS
                ]
    assert not flagged, flagged[:3]
