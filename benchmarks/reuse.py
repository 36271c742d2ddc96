"""Reuse detection on the corpus: false matches between unrelated clips, recall on copies, cost.

Every corpus clip the sampler accepts is sampled as the extract stage samples it (32 frames,
perceptual hash per frame). Copies are made with PyAV (``kyclocal.copies``): re-encoded to H.264
at half size, to HEVC at three quarters, to VP9 with the first 0.3 s cut. The clips go into an
in-memory copy of the index (the same band keys as the DynamoDB index, ``kyc.domain.reuse``), and
every clip and copy is looked up as CheckReuse looks it up. Printed:

- every pair of distinct corpus clips: how many match (false matches), apart from the clips the
  manifest says are one source video in different containers (expected matches);
- frame-level Hamming distances: each frame's nearest frame in an unrelated clip, and each copied
  frame's nearest frame in its original;
- clip-level recall per kind of copy, and how many lookups (Queries) a clip needs;
- the cost of the perceptual hash per frame and per 32-frame clip.

    .venv/bin/python benchmarks/reuse.py [--json build/bench/reuse.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "core"), str(ROOT / "local")]

from kyc.domain.reuse import (  # noqa: E402
    IndexedFrame,
    ReuseParams,
    bands,
    hamming,
    parse_phash,
    perceptual_matches,
)
from kyc.media.errors import MediaRefusedError  # noqa: E402
from kyc.media.limits import MediaLimits  # noqa: E402
from kyc.media.phash import phash_hex  # noqa: E402
from kyc.media.sampling import SamplingParams, sample_frames  # noqa: E402
from kyclocal.copies import make_copy  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "media"
# The androidx test suite ships one short video in three containers (same frames, same times):
# a match between them is a true match, not a false one.
SAME_SOURCE = frozenset(
    {
        "axm__sample_fragmented.mp4",
        "axm__sample_with_htc_rotation_track_name.mkv",
        "axm__sample_with_invalid_nalu.mp4",
    }
)
COPIES = {
    "h264-half": {"encoder": "libx264", "bit_rate": 200_000, "scale": 0.5, "options": {"preset": "veryfast"}},
    "hevc-3/4": {
        "encoder": "libx265",
        "muxer": "mov",
        "bit_rate": 300_000,
        "scale": 0.75,
        "options": {"preset": "ultrafast", "x265-params": "log-level=none"},
    },
    "vp9-trim0.3s": {
        "encoder": "libvpx-vp9",
        "muxer": "webm",
        "bit_rate": 300_000,
        "trim_start_s": 0.3,
        "options": {"deadline": "realtime", "cpu-used": "8"},
    },
}
SUFFIX = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm"}


def clip_hashes(path: Path) -> list[int] | None:
    try:
        sample = sample_frames(path, SamplingParams(), MediaLimits())
    except MediaRefusedError:
        return None
    return [parse_phash(f.phash) for f in sample.frames if f.phash]


class MemoryIndex:
    """The DynamoDB index's band buckets, in a dict: what a lookup would fetch."""

    def __init__(self) -> None:
        self.buckets: dict[str, list[IndexedFrame]] = defaultdict(list)

    def add(self, sid: str, hashes: list[int]) -> None:
        for i, h in enumerate(hashes):
            for key in bands(h):
                self.buckets[key].append(IndexedFrame(sid, i, h, "2026-01-01T00:00:00.000000Z"))

    def lookup(self, hashes: list[int]) -> tuple[list[IndexedFrame], int]:
        keys = {key for h in hashes for key in bands(h)}
        return [f for key in keys for f in self.buckets.get(key, ())], len(keys)


def percentiles(values: list[int]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0}
    q = np.percentile(values, [1, 5, 50, 95, 99])
    return {
        "n": len(values),
        "min": min(values),
        "p1": q[0],
        "p5": q[1],
        "p50": q[2],
        "p95": q[3],
        "p99": q[4],
    }


def hash_cost() -> tuple[float, float]:
    """Median wall and CPU milliseconds to hash 32 frames of the extract stage's largest size.

    CPU time is the figure to trust on a shared machine: wall time includes waiting for a core.
    """
    frame = np.random.default_rng(1).integers(0, 256, (576, 1024, 3), dtype=np.uint8)
    phash_hex(frame)
    wall, cpu = [], []
    for _ in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(32):
            phash_hex(frame)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def print_cost(wall_ms: float, cpu_ms: float) -> None:
    print(
        f"perceptual hash cost per 32-frame clip (1024x576 frames): {cpu_ms:.0f} ms CPU "
        f"({cpu_ms / 32:.1f} ms per frame), {wall_ms:.0f} ms wall on this machine"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--cost-only", action="store_true", help="only the cost of the hash")
    args = parser.parse_args()
    if args.cost_only:
        print_cost(*hash_cost())
        return 0
    params = ReuseParams()

    clips: dict[str, list[int]] = {}
    for path in sorted(CORPUS.iterdir()):
        hashes = clip_hashes(path)
        if hashes:
            clips[path.name] = hashes
    index = MemoryIndex()
    for name, hashes in clips.items():
        index.add(name, hashes)

    # Every pair of distinct clips, both ways round (A looked up against B, B against A).
    pairs = false_matches = expected = expected_found = 0
    unrelated_frames: list[int] = []
    hits_per_clip: dict[str, list[str]] = {}
    lookups: list[int] = []
    for name, hashes in clips.items():
        candidates, n_lookups = index.lookup(hashes)
        lookups.append(n_lookups)
        found = {
            m.submission_id
            for m in perceptual_matches(hashes, candidates, own_submission_id=name, params=params)
        }
        hits_per_clip[name] = sorted(found)
        for other in clips:
            if other == name:
                continue
            same = name in SAME_SOURCE and other in SAME_SOURCE
            if same:
                expected += 1
                expected_found += other in found
                continue
            pairs += 1
            false_matches += other in found
            unrelated_frames.extend(min(hamming(h, o) for o in clips[other]) for h in hashes)

    # Copies: recall, and each copied frame's distance to its original.
    copy_frames: dict[str, list[int]] = defaultdict(list)
    recall: dict[str, Counter] = defaultdict(Counter)
    copy_false: list[str] = []
    not_matched: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kyc-reuse-bench-") as tmp:
        for name, hashes in clips.items():
            if len(hashes) < params.min_matching_frames:
                continue
            for kind, options in COPIES.items():
                target = Path(tmp) / f"{kind.replace('/', '_')}-{name}{SUFFIX[options.get('muxer', 'mp4')]}"
                try:
                    make_copy(CORPUS / name, target, **options)
                except (ValueError, OSError):  # too short to trim, or an undecodable packet
                    recall[kind]["not made"] += 1
                    not_matched.append(f"{kind} {name}: not made")
                    continue
                copied = clip_hashes(target)
                if not copied:
                    recall[kind]["refused or flat"] += 1
                    not_matched.append(f"{kind} {name}: refused or flat")
                    continue
                copy_frames[kind].extend(min(hamming(h, o) for o in hashes) for h in copied)
                candidates, n_lookups = index.lookup(copied)
                lookups.append(n_lookups)
                found = {
                    m.submission_id
                    for m in perceptual_matches(
                        copied, candidates, own_submission_id=target.name, params=params
                    )
                }
                recall[kind]["matched" if name in found else "missed"] += 1
                if name not in found:
                    nearest = sorted(min(hamming(h, o) for o in hashes) for h in copied)
                    not_matched.append(f"{kind} {name}: missed, {len(copied)} frames, nearest {nearest[:8]}")
                family = SAME_SOURCE if name in SAME_SOURCE else {name}
                copy_false.extend(f"{target.name} -> {f}" for f in sorted(found - family))

    per_clip_ms, per_clip_cpu_ms = hash_cost()

    all_copy = [d for values in copy_frames.values() for d in values]
    figures = {
        "params": params.to_dict(),
        "clips_indexed": len(clips),
        "unrelated_clip_pairs": pairs,
        "false_clip_matches": false_matches,
        "same_source_pairs": expected,
        "same_source_found": expected_found,
        "copy_false_matches": copy_false,
        "unrelated_frame_distance": percentiles(unrelated_frames),
        "unrelated_frames_within_max_distance": sum(d <= params.max_distance for d in unrelated_frames),
        "copy_frame_distance": {kind: percentiles(v) for kind, v in copy_frames.items()},
        "copy_frames_within_max_distance": round(
            sum(d <= params.max_distance for d in all_copy) / max(1, len(all_copy)), 4
        ),
        "copy_recall": {kind: dict(c) for kind, c in recall.items()},
        "copies_not_matched": not_matched,
        "lookups_per_clip": {"max": max(lookups), "median": statistics.median(lookups)},
        "phash_ms_per_32_frames_1024x576": round(per_clip_ms, 2),
        "phash_cpu_ms_per_32_frames_1024x576": round(per_clip_cpu_ms, 2),
        "phash_ms_per_frame": round(per_clip_ms / 32, 3),
    }
    print(f"reuse index parameters: {params.to_dict()}")
    print(f"corpus clips indexed (accepted, with non-flat frames): {len(clips)}")
    print(
        f"unrelated clip pairs (ordered): {pairs}, false matches: {false_matches} "
        f"(rate {false_matches / max(1, pairs):.4f})"
    )
    print(f"same-source pairs (one video, three containers): {expected}, matched: {expected_found}")
    print(f"copies matched to a clip other than their source: {len(copy_false)} {copy_false[:5]}")
    print(f"unrelated frames, nearest distance: {figures['unrelated_frame_distance']}")
    print(
        f"unrelated frames within max_distance {params.max_distance}: "
        f"{figures['unrelated_frames_within_max_distance']} of {len(unrelated_frames)}"
    )
    for kind, values in copy_frames.items():
        print(f"copied frames ({kind}), distance to original: {percentiles(values)}")
    print(f"copied frames within max_distance: {figures['copy_frames_within_max_distance']:.2%}")
    for kind, counts in recall.items():
        print(f"copy recall {kind}: {dict(counts)}")
    for line in not_matched:
        print(f"  not matched: {line}")
    print(f"band lookups (Query calls) per clip: {figures['lookups_per_clip']}")
    print_cost(per_clip_ms, per_clip_cpu_ms)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=float))
    for name, hits in hits_per_clip.items():
        if hits:
            print(f"  {name} matches {hits}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
