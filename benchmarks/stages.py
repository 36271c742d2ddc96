"""Where a `kycscreen run` over the corpus spends its time: wall and CPU seconds per stage.

Usage: .venv/bin/python benchmarks/stages.py [--files DIR_OR_FILE ...] [--concurrency N] [--frames 32]
                                            [--goal-s 120] [--json FILE]

Screens every file of ../shared/corpus/media (49 real files, hostile ones included) through the
embedded local stack exactly as `kycscreen run` does (kyclocal.commands.run.screen_files, the same
settings, no saved state), with kyclocal.stage_clock attached to the Lambda router. Prints the run's
wall time against the goal (issue 25: 120 s for the corpus on 2 cores), then per stage: calls, wall
seconds (summed over calls, so stages that overlap add up to more than the run) and CPU seconds,
measured where the work runs (kyclocal.stage_clock): each handler's thread, the local model server's
threads (the endpoint's scoring, the local DetectFaces: Haar until issue 25's detector), and each
sandbox child (decode check, C2PA read, sampling: from the lineage records). The rest of the
process's CPU is moto and the runner. CPU seconds are the figure to compare between runs on a shared
machine: they are the work; wall time is the work plus the waiting. Refused files (INVALID) are
summed apart: they should cost next to nothing.
Exit 1 when any file ends in ERROR.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the repository (a worktree under /work/wt looks one level further up)
CORPUS = next(
    (p / "shared" / "corpus" / "media" for p in (REPO.parent, REPO.parent.parent) if (p / "shared").is_dir()),
    REPO.parent / "shared" / "corpus" / "media",
)

from kyclocal.commands.run import screen_files  # noqa: E402
from kyclocal.stack import LocalStack, LocalStackSettings, default_concurrency  # noqa: E402
from kyclocal.stage_clock import StageClock  # noqa: E402


def files_from(args: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in args:
        found.extend(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
    return found


def sandbox_cpu(stack: LocalStack) -> list[tuple[str, str, float]]:
    """(label, submission id, CPU s) of each sandbox child, from the lineage records."""
    found: list[tuple[str, str, float]] = []
    labels = {
        ("validate", "sandbox"): "validate sandbox (decode check)",
        ("validate", "c2pa_sandbox"): "validate sandbox (C2PA read)",
        ("extract", "sandbox"): "extract sandbox (sampling)",
    }
    for record in stack.log_lines():
        entry = record.get("lineage") if isinstance(record, dict) else None
        if not isinstance(entry, dict):
            continue
        for (stage, key), label in labels.items():
            usage = (entry.get("outputs") or {}).get(key) if entry.get("stage") == stage else None
            if isinstance(usage, dict):
                found.append((label, str(entry.get("submission_id")), float(usage.get("cpu_s", 0.0))))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=Path, nargs="+", default=[CORPUS])
    parser.add_argument("--concurrency", type=int, default=default_concurrency())
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--goal-s", type=float, default=120.0)
    parser.add_argument(
        "--face-evidence-source",
        help="FaceEvidenceSource (default: the template's); `model` leaves the face stage out",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    files = files_from(args.files)
    settings = LocalStackSettings(
        frame_count=args.frames,
        max_running_executions=args.concurrency,
        face_evidence_source=args.face_evidence_source,
    )
    clock = StageClock()
    began = time.perf_counter()
    with LocalStack(settings) as stack:
        start_s = time.perf_counter() - began
        stack.router.clock = clock
        stack._model_server.clock = clock
        clock.start()
        started = time.perf_counter()
        rows = screen_files(stack, files, timeout=args.timeout)
        wall = time.perf_counter() - started
        clock.stop()
        sandboxes = sandbox_cpu(stack)
        for label, sid, seconds in sandboxes:
            clock.record(label, 0.0, seconds, sid)
    decisions = Counter(r["decision"] for r in rows)
    refused = [r for r in rows if r["decision"] == "INVALID"]
    accepted = [r for r in rows if r["decision"] not in ("INVALID", "ERROR")]
    figures: dict[str, Any] = {
        "files": len(rows),
        "concurrency": args.concurrency,
        "frames": args.frames,
        "face_evidence_source": args.face_evidence_source,
        "stack_start_s": round(start_s, 2),
        "wall_s": round(wall, 1),
        "goal_s": args.goal_s,
        "decisions": dict(sorted(decisions.items())),
        "total_cpu_s": round(clock.total_cpu_s, 1),
        "stages": {
            name: {"calls": n, "wall_s": round(w, 2), "cpu_s": round(c, 2)} for name, n, w, c in clock.table()
        },
        "refused_files": len(refused),
        "refused_cpu_s_per_file_median": round(
            statistics.median(clock.per_submission_cpu_s.get(r["submission_id"], 0.0) for r in refused), 3
        )
        if refused
        else None,
        "accepted_cpu_s_per_file_median": round(
            statistics.median(clock.per_submission_cpu_s.get(r["submission_id"], 0.0) for r in accepted), 3
        )
        if accepted
        else None,
        "errors": [r["file"] for r in rows if r["decision"] == "ERROR"],
    }
    print(
        f"{len(rows)} files in {wall:.1f} s (goal {args.goal_s:g} s), concurrency {args.concurrency}, "
        f"{args.frames} frames; stack start {start_s:.1f} s; {dict(sorted(decisions.items()))}"
    )
    print(f"{'stage':<36}{'calls':>7}{'wall s':>10}{'CPU s':>10}{'CPU %':>8}")
    for name, stage in figures["stages"].items():
        share = 100 * stage["cpu_s"] / (clock.total_cpu_s or 1.0)
        print(f"{name:<36}{stage['calls']:>7}{stage['wall_s']:>10.1f}{stage['cpu_s']:>10.1f}{share:>7.1f}%")
    print(f"{'process total':<36}{'':>7}{'':>10}{clock.total_cpu_s:>10.1f}")
    print(
        "per file, handlers and sandboxes (not moto, not the model server): refused (INVALID) median "
        f"{figures['refused_cpu_s_per_file_median']} CPU s, "
        f"screened median {figures['accepted_cpu_s_per_file_median']} CPU s"
    )
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
