"""Reuse detection: recall on copies of a recording, face swaps, people sharing a kiosk, and cost.

Recordings are built by ``tests/fixtures/reuse_clips.py``: drawn people in rooms that are real
corpus frames, a hand-held camera, their own motion. Every clip is written with PyAV (H.264), sampled
as the extract stage samples it, its faces found by the local stack's face detector (OpenCV Haar
cascades, ``kycserve.rekognition``) and turned into the frame signatures CheckReuse indexes
(``kyc.media.recording_hash.frame_signatures``). An in-memory index with the DynamoDB index's keys
(``kyc.domain.reuse.bands``) answers the lookups, counting Queries and items read. Printed:

- per transformation of a recording (re-encode, resize, mirror, crops from each side, letterbox,
  pillarbox, rotation, colour, speed, trim): how many copies come out ``MEDIA_REUSED``;
- face-swapped copies (the recording with another person's face): how many get
  ``REUSED_RECORDING_FACE_SWAPPED``, how many only ``MEDIA_REUSED``, how many nothing;
- different people filmed in one fixed scene (a kiosk): false findings (must be 0);
- the corpus: false matches between unrelated real clips, and re-encoded corpus copies matched;
- the lookup's cost: Queries per upload, items read, and a projection to a busy index.

    .venv/bin/python benchmarks/reuse.py [--recordings 3] [--frames 16] [--json build/bench/reuse.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "core"), str(ROOT / "local"), str(ROOT / "serving"), str(ROOT)]

from kyc.domain.reuse import (  # noqa: E402
    FINDING_KINDS,
    FrameSignature,
    IndexedFrame,
    ReuseParams,
    band_layout,
    bands,
    combine,
    perceptual_matches,
)
from kyc.media.contact_sheet import decode_image  # noqa: E402
from kyc.media.errors import MediaRefusedError  # noqa: E402
from kyc.media.limits import MediaLimits  # noqa: E402
from kyc.media.recording_hash import frame_signatures  # noqa: E402
from kyc.media.sampling import SamplingParams, sample_frames  # noqa: E402
from kyclocal.copies import make_copy  # noqa: E402
from kycserve.models.faces import HaarFaceFinder  # noqa: E402
from tests.fixtures import reuse_clips as rc  # noqa: E402

AT = "2026-01-01T00:00:00.000000Z"
# The local face stage's frontal cascade (kycserve.rekognition adds profile cascades, 3x the CPU,
# for turned faces these recordings do not have).
DETECTOR = HaarFaceFinder(min_face_fraction=0.0)
CORPUS_COPIES = {
    "h264-half": {"encoder": "libx264", "bit_rate": 200_000, "scale": 0.5, "options": {"preset": "veryfast"}},
    "vp9-trim0.3s": {
        "encoder": "libvpx-vp9",
        "muxer": "webm",
        "bit_rate": 300_000,
        "trim_start_s": 0.3,
        "options": {"deadline": "realtime", "cpu-used": "8"},
    },
}
# The androidx suite's one video in three containers: a true match, not a false one.
SAME_SOURCE = frozenset(
    {
        "axm__sample_fragmented.mp4",
        "axm__sample_with_htc_rotation_track_name.mkv",
        "axm__sample_with_invalid_nalu.mp4",
    }
)


def face_evidence(rgb) -> list[dict]:
    """What the face stage writes for one frame (faces.json), from the local stack's detector."""
    h, w = rgb.shape[:2]
    boxes = DETECTOR.find(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), max_faces=10)
    return [
        {"box": {"left": b.x / w, "top": b.y / h, "width": b.w / w, "height": b.h / h}, "confidence": 99.0}
        for b in boxes
    ]


def clip_signatures(path: Path, frames: int, *, faces: bool = True) -> list[FrameSignature] | None:
    """A clip as CheckReuse sees it: sampled, decoded from the stored JPEGs, faces found, hashed."""
    try:
        sample = sample_frames(path, SamplingParams(frame_count=frames), MediaLimits())
    except MediaRefusedError:
        return None
    decoded = [(f.index, f.pts_s, decode_image(f.data).to_ndarray(format="rgb24")) for f in sample.frames]
    evidence = [{"index": i, "faces": face_evidence(rgb) if faces else []} for i, _, rgb in decoded]
    return frame_signatures(decoded, evidence)


class MemoryIndex:
    """The DynamoDB index's band buckets in a dict, counting what each lookup would read."""

    def __init__(self, params: ReuseParams) -> None:
        self.params = params
        self.buckets: dict[str, list[IndexedFrame]] = defaultdict(list)
        self.queries: list[int] = []
        self.items: list[int] = []

    def add(self, sid: str, frames: list[FrameSignature], at: str = AT) -> None:
        for f in frames:
            if f.scene is not None:
                for key in bands(f.scene, self.params.max_distance):
                    self.buckets[key].append(IndexedFrame(sid, at, f))

    def lookup(self, sid: str, frames: list[FrameSignature], at: str = "2026-01-02T00:00:00.000000Z"):
        keys = {k for f in frames if f.scene is not None for k in bands(f.scene, self.params.max_distance)}
        found = [c for k in keys for c in self.buckets.get(k, ())]
        self.queries.append(1 + len(keys))
        self.items.append(len(found))
        return combine(
            [],
            perceptual_matches(frames, found, own_submission_id=sid, own_indexed_at=at, params=self.params),
        )


def detail(index: MemoryIndex, sig: list[FrameSignature], target: str) -> str:
    """Nearest distances of each part to the target's frames (for tuning)."""
    theirs = [f.signature for fs in index.buckets.values() for f in fs if f.submission_id == target]
    out = []
    for part in ("scene", "face", "body"):
        ds = sorted(
            min(
                (
                    (getattr(f, part) ^ getattr(o, part)).bit_count()
                    for o in theirs
                    if getattr(o, part) is not None
                ),
                default=99,
            )
            for f in sig
            if getattr(f, part) is not None
        )
        out.append(f"{part}={ds[:6]}..{ds[-2:]}")
    return " ".join(out)


def outcome(matches, target: str) -> str:
    """What the decision would record about ``target``: its finding kind, or 'shared_scene', or 'none'."""
    kinds = [m.kind for m in matches if m.submission_id == target]
    return kinds[0] if kinds else "none"


def projection(params: ReuseParams, frames_per_upload: int, window_frames: int) -> float:
    """Items a lookup reads when ``window_frames`` frames with uniformly spread hashes are indexed."""
    per_frame = sum(window_frames / 2**width for _, width in band_layout(params.max_distance))
    return per_frame * frames_per_upload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=3, help="recordings transformed (one room each)")
    parser.add_argument("--kiosk-people", type=int, default=6, help="people filmed in the kiosk")
    parser.add_argument("--frames", type=int, default=16, help="frames sampled per clip")
    parser.add_argument("--no-corpus", action="store_true")
    parser.add_argument("--transforms", nargs="*", help="only these (names in reuse_clips.TRANSFORMS)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--verbose", action="store_true", help="each comparison's distances on stderr")
    args = parser.parse_args()
    params = ReuseParams()
    index = MemoryIndex(params)
    rooms = list(rc.ROOMS)
    figures: dict = {"params": params.to_dict(), "frames_per_clip": args.frames}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kyc-reuse-bench-") as tmp:
        work = Path(tmp)
        originals = []
        for n in range(args.recordings):
            rec = rc.Recording(rooms[n % len(rooms)], rc.Person(n + 1), seed=100 + n)
            frames = rec.frames()
            sig = clip_signatures(rc.write(frames, work / f"orig{n}.mp4", transform="original"), args.frames)
            index.add(f"orig{n}", sig)
            originals.append((rec, frames))
        recall: dict[str, Counter] = defaultdict(Counter)
        for n, (_rec, frames) in enumerate(originals):
            for name in args.transforms or rc.TRANSFORMS:
                if name == "original":
                    continue
                sig = clip_signatures(
                    rc.write(frames, work / f"c{n}-{name}.mp4", transform=name), args.frames
                )
                recall[name][outcome(index.lookup(f"copy{n}{name}", sig), f"orig{n}")] += 1
        swaps: Counter = Counter()
        for n, (rec, _) in enumerate(originals):
            other = rc.Person(50 + n)
            sig = clip_signatures(
                rc.write(rc.face_swap(rec, other).frames(), work / f"swap{n}.mp4"), args.frames
            )
            swaps[outcome(index.lookup(f"swap{n}", sig), f"orig{n}")] += 1
            if args.verbose:
                print("swap", detail(index, sig, f"orig{n}"), file=sys.stderr)
        # One kiosk: a fixed camera in one room; each person screened after all earlier ones.
        kiosk_index = MemoryIndex(params)
        kiosk: Counter = Counter()
        kiosk_pairs = 0
        for p in range(args.kiosk_people):
            rec = rc.kiosk("fragment", rc.Person(200 + p), seed=300 + p)
            sig = clip_signatures(rc.write(rec.frames(), work / f"kiosk{p}.mp4"), args.frames)
            at = f"2026-01-01T00:{p:02d}:00.000000Z"
            for m in kiosk_index.lookup(f"k{p}", sig, at=at):
                kiosk[m.kind] += 1
                if args.verbose:
                    print("kiosk", m.to_dict(), file=sys.stderr)
            kiosk_pairs += p
            kiosk_index.add(f"k{p}", sig, at=at)
        kiosk["no relation found"] = kiosk_pairs - sum(kiosk.values())
        figures |= {
            "transform_outcomes": {k: dict(v) for k, v in recall.items()},
            "face_swap_outcomes": dict(swaps),
            "kiosk_pairs": kiosk_pairs,
            "kiosk_outcomes": dict(kiosk),
        }
        if not args.no_corpus:
            figures |= corpus_figures(work, params, args.frames)
    figures["lookup"] = {
        "queries_per_upload_median": statistics.median(index.queries),
        "queries_per_upload_max": max(index.queries),
        "items_read_median_this_index": statistics.median(index.items),
        "band_widths": [w for _, w in band_layout(params.max_distance)],
        "projected_items_per_upload": {
            str(n): round(projection(params, 32, n)) for n in (10_000, 100_000, 1_000_000)
        },
    }
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["commit"] = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    report(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=float))
    return 0


def corpus_figures(work: Path, params: ReuseParams, frames: int) -> dict:
    """Unrelated real clips (no faces: the scene rule alone) never match; their copies do."""
    clips = {}
    for path in sorted(rc.CORPUS.iterdir()):
        sig = clip_signatures(path, frames, faces=False)
        if sig and sum(f.scene is not None for f in sig) >= 2:
            clips[path.name] = sig
    index = MemoryIndex(params)
    for name, sig in clips.items():
        index.add(name, sig)
    pairs = false = 0
    for name, sig in clips.items():
        found = {m.submission_id for m in index.lookup(name + "#again", sig) if m.kind in FINDING_KINDS}
        for other in clips:
            if other == name or (name in SAME_SOURCE and other in SAME_SOURCE):
                continue
            pairs += 1
            false += other in found
    copies: dict[str, Counter] = defaultdict(Counter)
    for name in clips:
        for kind, options in CORPUS_COPIES.items():
            target = work / f"{kind}-{name}.{options.get('muxer', 'mp4')}"
            try:
                make_copy(rc.CORPUS / name, target, **options)
            except (ValueError, OSError):
                copies[kind]["not made"] += 1
                continue
            sig = clip_signatures(target, frames, faces=False)
            if not sig:
                copies[kind]["refused"] += 1
                continue
            copies[kind][outcome(index.lookup(target.name, sig), name)] += 1
    return {
        "corpus_clips": len(clips),
        "corpus_unrelated_pairs": pairs,
        "corpus_false_matches": false,
        "corpus_copy_outcomes": {k: dict(v) for k, v in copies.items()},
    }


def report(figures: dict) -> None:
    print(f"reuse parameters: {figures['params']}, {figures['frames_per_clip']} frames per clip")
    print(f"measured on commit {figures['commit']}")
    print("\nTransformation of a recording         MEDIA_REUSED  other outcomes")
    for name, counts in figures["transform_outcomes"].items():
        total = sum(counts.values())
        others = {k: v for k, v in counts.items() if k != "perceptual"}
        print(f"  {name:36s} {counts.get('perceptual', 0):>3d} / {total:<3d}   {others or ''}")
    print(f"\nFace swapped into a recording: {figures['face_swap_outcomes']}")
    print("  (face_swap = REUSED_RECORDING_FACE_SWAPPED, perceptual = MEDIA_REUSED)")
    print(f"Different people in one fixed kiosk: {figures['kiosk_pairs']} pairs")
    print(f"  outcomes {figures['kiosk_outcomes']} (shared_scene is no finding)")
    if "corpus_clips" in figures:
        print(
            f"Corpus: {figures['corpus_clips']} clips, {figures['corpus_unrelated_pairs']} unrelated ordered "
            f"pairs, {figures['corpus_false_matches']} false findings"
        )
        print(f"  corpus copies: {figures['corpus_copy_outcomes']}")
    lookup = figures["lookup"]
    print(f"\nLookup: bands of {lookup['band_widths']} bits")
    print(
        f"  Queries per upload: median {lookup['queries_per_upload_median']}, "
        f"max {lookup['queries_per_upload_max']}"
    )
    print(f"  items read per upload (this small index): median {lookup['items_read_median_this_index']}")
    for n, items in lookup["projected_items_per_upload"].items():
        print(f"  projected items read per 32-frame upload with {int(n):>9,} frames in the window: {items:,}")
    print(f"({figures['seconds']} s)")


if __name__ == "__main__":
    sys.exit(main())
