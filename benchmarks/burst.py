"""One `kycscreen run` over the shared corpus plus 40 more real clips: every file decided, none ERROR.

Usage: .venv/bin/python benchmarks/burst.py [--clips 40] [--concurrency N] [--frames 32]

The corpus (../shared/corpus/media, 49 real files from public test suites, hostile ones included)
is joined by clips encoded here with PyAV (H.264, HEVC, VP9 in MP4, MOV and WebM; a drawn face so
the reference model scores them; sizes and lengths vary), deterministically, cached under
build/bench/clips. All files are uploaded at once, as a burst, and the stack admits them at the
machine's pace (by default one screening per CPU). Figures: wall time from the first upload to the
last decision, files per minute, time to the first decision, the slowest file, and the decisions.
Exit 1 when any file ends in ERROR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "media"
CLIP_DIR = REPO / "build" / "bench" / "clips"

from kyclocal.commands.run import screen_files  # noqa: E402
from kyclocal.samples import write_clip  # noqa: E402
from kyclocal.stack import LocalStack, LocalStackSettings, default_concurrency  # noqa: E402

_ENCODERS = (
    ("mp4", "libx264", {"preset": "veryfast"}, "mp4"),
    ("mov", "libx265", {"preset": "ultrafast", "x265-params": "log-level=none"}, "mov"),
    ("webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}, "webm"),
)
_SIZES = ((640, 480), (480, 640), (320, 240), (960, 540))


def clips(count: int) -> list[Path]:
    """``count`` distinct clips, made once: codec, size, frame rate and length vary with the index."""
    CLIP_DIR.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for index in range(count):
        muxer, encoder, options, suffix = _ENCODERS[index % len(_ENCODERS)]
        width, height = _SIZES[index % len(_SIZES)]
        fps = (15, 24, 30)[index % 3]
        seconds = 2.0 + (index % 4)
        path = CLIP_DIR / f"clip-{index:02d}-{width}x{height}-{fps}fps.{suffix}"
        if not path.exists():
            write_clip(path, muxer, encoder, options, width=width, height=height, fps=fps, seconds=seconds)
        made.append(path)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=default_concurrency())
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    corpus = sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []
    files = corpus + clips(args.clips)
    settings = LocalStackSettings(frame_count=args.frames, max_running_executions=args.concurrency)
    began = time.perf_counter()
    with LocalStack(settings) as stack:
        start_s = time.perf_counter() - began
        first: list[float] = []
        started = time.perf_counter()

        def decided(count: int) -> None:
            if count and not first:
                first.append(time.perf_counter() - started)

        rows = screen_files(stack, files, timeout=args.timeout, on_decided=decided)
        wall = time.perf_counter() - started
    decisions = Counter(r["decision"] for r in rows)
    figures = {
        "files": len(rows),
        "corpus_files": len(corpus),
        "clips": args.clips,
        "concurrency": args.concurrency,
        "frames": args.frames,
        "stack_start_s": round(start_s, 2),
        "wall_s": round(wall, 1),
        "files_per_minute": round(60 * len(rows) / wall, 1),
        "first_decision_s": round(first[0], 1) if first else None,
        "slowest_file_s": max(r["elapsed_s"] for r in rows),
        "decisions": dict(sorted(decisions.items())),
        "errors": [r["file"] for r in rows if r["decision"] == "ERROR"],
    }
    print(json.dumps(figures, indent=2))
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
