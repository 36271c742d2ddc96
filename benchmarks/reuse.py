"""Reuse detection under secret sampling: recall on copies of a recording, face swaps, people
sharing a kiosk, and cost.

Recordings are built by ``tests/fixtures/reuse_clips.py``: drawn people in rooms that are real
corpus frames, a hand-held camera, their own motion. Every clip is written with PyAV (H.264), every
frame sampled once as the extract stage samples (stored as JPEG, decoded again), its faces found by
the local face stage's detector (``kyc.media.face_mesh``) and hashed as CheckReuse hashes
(``kyc.media.recording_hash``). Since issue 22 each upload's sample points are secret and drawn per
upload, so each comparison is then drawn ``--seeds`` times, the earlier clip and the copy each with
its own sampling seed (``kyc.domain.sampling_plan``), and once at the fixed bin centres (the control:
what secret sampling costs). An in-memory index with the DynamoDB index's keys
(``kyc.domain.reuse.bands``) answers the lookups, counting Queries and items read. Printed:

- per transformation of a recording (re-encode, resize, mirror, crops from each side, letterbox,
  pillarbox, rotation, colour, speed, trim): the share of draws ``MEDIA_REUSED``, flagged under the
  face-swap code, and missed (no finding: the copy would PASS on the model's word);
- face-swapped copies (the recording with another person's face): the same shares;
- different people filmed in one fixed scene (a kiosk), every earlier person, every draw: false
  findings (must be 0);
- the corpus: false matches between unrelated real clips, and re-encoded corpus copies matched;
- the lookup's cost: Queries per upload, items read, and a projection to a busy index.

- with ``--distances``: per transformation, the scene, body and face Hamming distances of every
  frame of the copy to the original's frame at the same instant (the transformations that keep the
  timeline): why a copy misses, apart from sampling;
- the hashing's cost: ms per frame (r2, and the r1 construction still computed to read an index
  written before r2).

    .venv/bin/python benchmarks/reuse.py [--recordings 3] [--frames 8] [--seeds 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path

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
    face_boxes,
    face_rolls,
    perceptual_matches,
)
from kyc.media import recording_hash_r1  # noqa: E402
from kyc.media.contact_sheet import decode_image  # noqa: E402
from kyc.media.errors import MediaRefusedError  # noqa: E402
from kyc.media.limits import MediaLimits  # noqa: E402
from kyc.media.recording_hash import FaceBox, clip_roll, frame_signatures, recording_hashes  # noqa: E402
from kyc.media.sampling import SamplingParams, sample_frames  # noqa: E402
from kyclocal.copies import make_copy  # noqa: E402
from tests.fixtures import reuse_clips as rc  # noqa: E402

AT = "2026-01-01T00:00:00.000000Z"
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


def clip_signatures(path: Path, frames: int) -> list[FrameSignature] | None:
    """A corpus clip as CheckReuse sees it without face evidence: sampled, decoded, hashed."""
    try:
        sample = sample_frames(path, SamplingParams(frame_count=frames), MediaLimits())
    except MediaRefusedError:
        return None
    decoded = [(f.index, f.pts_s, decode_image(f.data).to_ndarray(format="rgb24")) for f in sample.frames]
    return frame_signatures(decoded, [])


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


def outcome(matches, target: str, in_step: list | None = None) -> str:
    """What the decision would record about ``target``: its finding kind, or 'shared_scene', or 'none'.
    ``in_step`` collects the share of the clip's frames in step with ``target`` when they met."""
    found = [m for m in matches if m.submission_id == target]
    if in_step is not None and found and found[0].frames_in_step is not None:
        in_step.append(found[0].frames_in_step / found[0].frames_compared)
    return found[0].kind if found else "none"


def quantiles(values: list[float]) -> dict[str, float] | None:
    """min, 5th, 25th, 50th, 95th percentile and max (nearest rank): the two distributions behind
    ``LOCKSTEP_SHARE`` (docs/provenance.md)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = {"min": 0.0, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p95": 0.95, "max": 1.0}
    return {k: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) for k, q in rank.items()}


def projection(params: ReuseParams, frames_per_upload: int, window_frames: int) -> float:
    """Items a lookup reads when ``window_frames`` frames with uniformly spread hashes are indexed."""
    per_frame = sum(window_frames / 2**width for _, width in band_layout(params.max_distance))
    return per_frame * frames_per_upload


def draw_seed(base: str, *parts: object) -> str:
    """A sampling seed (128 bits hex) for one clip in one draw: reproducible from ``--seed-base``,
    and independent between the earlier clip and its copy (each upload draws its own)."""
    return hashlib.sha256(repr((base, *parts)).encode()).hexdigest()[:32]


def _every_frame_hashed(clip, hasher=recording_hashes) -> list:
    """Every frame of a HashedClip hashed with its own face box and roll (no sampling)."""
    evidence = [{"index": i, "faces": faces} for i, faces in enumerate(clip.evidence)]
    indices = list(range(len(clip.rgb)))
    found = face_boxes(evidence, indices)
    roll = clip_roll(face_rolls(evidence, indices), found)
    boxes = [FaceBox(*b, roll=roll) if b else None for b in found]
    return hasher(list(enumerate(clip.rgb)), boxes)


def same_instant_distances(original, copy) -> dict[str, float]:
    """Mean Hamming distance of each hash between the copy's frame and the original's frame at the
    same instant, and the share of frames whose scene is within 8 bits (the fixed-point control:
    what the hash loses, with sampling taken out)."""
    a, b = _every_frame_hashed(original), _every_frame_hashed(copy)
    out: dict[str, float] = {}
    for part in ("scene", "body", "face"):
        d = [
            (getattr(x, part) ^ getattr(y, part)).bit_count()
            for x, y in zip(a, b, strict=False)
            if getattr(x, part) is not None and getattr(y, part) is not None
        ]
        out[part] = round(statistics.mean(d), 1) if d else float("nan")
        if part == "scene":
            out["scene_within_8"] = round(sum(v <= 8 for v in d) / len(d), 2) if d else float("nan")
    return out


def hash_cost(clip) -> dict[str, float]:
    """CPU ms per frame to hash a clip's frames, r2 and the r1 construction (read-only, the
    transition): process time, so other work on a shared machine does not count."""
    out = {}
    for name, hasher in (("r2", recording_hashes), ("r1", recording_hash_r1.recording_hashes)):
        started = time.process_time()
        _every_frame_hashed(clip, hasher)
        out[name] = round(1000 * (time.process_time() - started) / len(clip.rgb), 1)
    return out


def sweep_recordings(args, params: ReuseParams, work: Path, faces) -> dict:
    """Copies, face swaps and kiosk strangers compared under ``args.seeds`` independent sampling
    draws each (issue 22's secret sample points), and once at the fixed bin centres (the control)."""
    rooms = list(rc.ROOMS)
    recall: dict[str, Counter] = defaultdict(Counter)
    fixed: dict[str, Counter] = defaultdict(Counter)
    swaps: Counter = Counter()
    swaps_fixed: Counter = Counter()
    swap_in_step: list[float] = []
    distances: dict[str, list] = defaultdict(list)
    hashing: list[dict] = []
    costs = MemoryIndex(params)
    for n in range(args.recordings):
        rec = rc.Recording(rooms[n % len(rooms)], rc.Person(n + 1), seed=100 + n)
        frames = rec.frames()
        original = rc.hash_every_frame(rc.write(frames, work / f"orig{n}.mp4", transform="original"), faces)
        copies = {
            name: rc.hash_every_frame(rc.write(frames, work / f"c{n}-{name}.mp4", transform=name), faces)
            for name in (args.transforms or rc.TRANSFORMS)
            if name != "original"
        }
        swapped = rc.hash_every_frame(
            rc.write(rc.face_swap(rec, rc.Person(50 + n)).frames(), work / f"swap{n}.mp4"), faces
        )
        hashing.append(hash_cost(original))
        if args.distances:
            for name, copy in [*copies.items(), ("face swap", swapped)]:
                if not {"speed", "trim_start_s"} & set(rc.TRANSFORMS.get(name, {})):
                    distances[name].append(same_instant_distances(original, copy))
        for s in [None, *range(args.seeds)]:
            index = MemoryIndex(params)
            index.add(
                f"orig{n}",
                original.sample(None if s is None else draw_seed(args.seed_base, n, s), args.frames),
            )
            for name, copy in copies.items():
                own = copy.sample(None if s is None else draw_seed(args.seed_base, n, name, s), args.frames)
                found = outcome(index.lookup(f"copy{n}{name}", own), f"orig{n}")
                (fixed if s is None else recall)[name][found] += 1
            own = swapped.sample(None if s is None else draw_seed(args.seed_base, n, "swap", s), args.frames)
            found = outcome(index.lookup(f"swap{n}", own), f"orig{n}", None if s is None else swap_in_step)
            (swaps_fixed if s is None else swaps)[found] += 1
            costs.queries += index.queries
            costs.items += index.items
    # One kiosk: a fixed camera in one room; each person screened after all earlier ones, every draw.
    people = [
        rc.hash_every_frame(
            rc.write(rc.kiosk("fragment", rc.Person(200 + p), seed=300 + p).frames(), work / f"kiosk{p}.mp4"),
            faces,
        )
        for p in range(args.kiosk_people)
    ]
    kiosk: Counter = Counter()
    kiosk_in_step: list[float] = []
    for s in range(args.seeds):
        index = MemoryIndex(params)
        for p, person in enumerate(people):
            sig = person.sample(draw_seed(args.seed_base, "kiosk", p, s), args.frames)
            at = f"2026-01-01T00:{p:02d}:00.000000Z"
            matches = index.lookup(f"k{p}", sig, at=at)
            for q in range(p):
                kiosk[outcome(matches, f"k{q}", kiosk_in_step)] += 1
            index.add(f"k{p}", sig, at=at)
    return {
        "transform_outcomes": {k: dict(v) for k, v in recall.items()},
        "transform_outcomes_fixed_points": {k: dict(v) for k, v in fixed.items()},
        "face_swap_outcomes": dict(swaps),
        "face_swap_outcomes_fixed_points": dict(swaps_fixed),
        "kiosk_pairs": sum(kiosk.values()),
        "kiosk_outcomes": dict(kiosk),
        "in_step_share_face_swap_met": quantiles(swap_in_step),
        "in_step_share_kiosk_met": quantiles(kiosk_in_step),
        "same_instant_distances": {
            name: {k: round(statistics.mean(r[k] for r in rows), 2) for k in rows[0]}
            for name, rows in distances.items()
        },
        "hash_ms_per_frame": {k: statistics.median(h[k] for h in hashing) for k in ("r2", "r1")},
        "_costs": costs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=3, help="recordings transformed (one room each)")
    parser.add_argument("--kiosk-people", type=int, default=6, help="people filmed in the kiosk")
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per clip (the local stack's)")
    parser.add_argument("--seeds", type=int, default=100, help="independent sampling draws per comparison")
    parser.add_argument("--seed-base", default="benchmarks/reuse.py", help="draws are reproducible from it")
    parser.add_argument("--no-corpus", action="store_true")
    parser.add_argument("--transforms", nargs="*", help="only these (names in reuse_clips.TRANSFORMS)")
    parser.add_argument("--distances", action="store_true", help="same-instant hash distances per copy")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    params = ReuseParams()
    figures: dict = {"params": params.to_dict(), "frames_per_clip": args.frames, "seeds": args.seeds}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kyc-reuse-bench-") as tmp:
        work = Path(tmp)
        figures |= sweep_recordings(args, params, work, rc.mesh_faces())
        if not args.no_corpus:
            figures |= corpus_figures(work, params, args.frames)
    costs = figures.pop("_costs")
    figures["lookup"] = {
        "queries_per_upload_median": statistics.median(costs.queries),
        "queries_per_upload_max": max(costs.queries),
        "items_read_median_this_index": statistics.median(costs.items),
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
        sig = clip_signatures(path, frames)
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
            sig = clip_signatures(target, frames)
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


MISSED = ("none", "shared_scene")  # no finding: the copy or swap would PASS on the model's word


def _share(counts: Mapping[str, int], *kinds: str) -> str:
    total = sum(counts.values())
    return f"{100 * sum(counts.get(k, 0) for k in kinds) / total:5.1f} %" if total else "    -"


def report(figures: dict) -> None:
    print(f"reuse parameters: {figures['params']}, {figures['frames_per_clip']} frames per clip")
    print(f"measured on commit {figures['commit']}")
    seeds = figures["seeds"]
    print(
        f"\nEach comparison drawn {seeds} times with independent secret sampling seeds for the earlier clip"
        " and the copy;\n'fixed' = both sampled at the bin centres (the sample points before issue 22)."
    )
    print(
        f"\n{'Transformation':24s} {'draws':>5s} {'MEDIA_REUSED':>12s} {'swap code':>10s} {'missed':>8s}"
        f" {'missed, fixed':>13s}"
    )
    for name, counts in figures["transform_outcomes"].items():
        fixed = figures["transform_outcomes_fixed_points"].get(name, {})
        print(
            f"  {name:22s} {sum(counts.values()):>5d} {_share(counts, 'perceptual'):>12s}"
            f" {_share(counts, 'face_swap'):>10s} {_share(counts, *MISSED):>8s} {_share(fixed, *MISSED):>13s}"
        )
    swaps = figures["face_swap_outcomes"]
    print(
        f"\nFace swapped into a recording, {sum(swaps.values())} draws: REUSED_RECORDING_FACE_SWAPPED "
        f"{_share(swaps, 'face_swap')}, MEDIA_REUSED {_share(swaps, 'perceptual', 'exact')}, "
        f"missed {_share(swaps, *MISSED)} "
        f"(fixed points: missed {_share(figures['face_swap_outcomes_fixed_points'], *MISSED)})"
    )
    print(f"  outcomes {swaps}")
    kiosk = figures["kiosk_outcomes"]
    print(
        f"Different people in one fixed kiosk: {figures['kiosk_pairs']} pairs x draws, false findings "
        f"{sum(kiosk.get(k, 0) for k in FINDING_KINDS)} ({kiosk})"
    )
    print(
        "Share of the clip's frames in step with the earlier clip (frames_in_step), when they met:\n"
        f"  face swaps  {figures['in_step_share_face_swap_met']}\n"
        f"  kiosk pairs {figures['in_step_share_kiosk_met']}\n"
        "  a face swap needs more than LOCKSTEP_SHARE (or the same body with the required frames in step)"
    )
    if "corpus_clips" in figures:
        print(
            f"Corpus: {figures['corpus_clips']} clips, {figures['corpus_unrelated_pairs']} unrelated ordered "
            f"pairs, {figures['corpus_false_matches']} false findings"
        )
        print(f"  corpus copies: {figures['corpus_copy_outcomes']}")
    if figures.get("same_instant_distances"):
        print("\nSame-instant distances (bits; every frame of the copy vs the original's at that instant):")
        print(f"  {'copy':22s} {'scene':>6s} {'<=8':>5s} {'body':>6s} {'face':>6s}")
        for name, d in figures["same_instant_distances"].items():
            print(
                f"  {name:22s} {d['scene']:6.1f} {d['scene_within_8']:5.2f} {d['body']:6.1f} {d['face']:6.1f}"
            )
    cost = figures["hash_ms_per_frame"]
    print(f"\nHashing: {cost['r2']} CPU ms per frame (r2), {cost['r1']} ms more while r1 entries are read")
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
