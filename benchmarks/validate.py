"""Time validate_upload over the shared corpus: per file, median and worst.

Run: python benchmarks/validate.py [corpus_dir] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from kyc.media.limits import MediaLimits
from kyc.media.validation import validate_upload

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "media"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=3, help="runs per file; the best is reported")
    args = parser.parse_args()
    limits = MediaLimits()
    timings: list[tuple[float, str, str]] = []
    for path in sorted(args.corpus.iterdir()):
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = validate_upload(path, limits)
            best = min(best, time.perf_counter() - started)
        outcome = "ACCEPTED" if report.accepted else str(report.reason)
        timings.append((best, path.name, outcome))
        print(f"{best * 1000:9.1f} ms  {outcome:24s} {path.stat().st_size:>10d} B  {path.name}")
    values = [t for t, _, _ in timings]
    worst = max(timings)
    print(
        f"\nfiles: {len(values)}  median: {statistics.median(values) * 1000:.1f} ms  "
        f"worst: {worst[0] * 1000:.1f} ms ({worst[1]})  total: {sum(values):.2f} s"
    )


if __name__ == "__main__":
    main()
