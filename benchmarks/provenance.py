"""The cost of the C2PA read per clip: direct, and as the validate function runs it (a sandbox child).

Signs copies of the corpus's accepted MP4/MOV files with a throw-away CA (a synthetic declaration), then
times ``read_c2pa`` on the signed and on the unsigned file, and ``read_c2pa_isolated`` (fork + read,
the library preloaded as in the handler). Also prints the container-forensics cost, which is part of
validation (the facts are read from the container FFmpeg already opened).

Run: python benchmarks/provenance.py [corpus_dir] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kyc.media import c2pa_manifest  # noqa: E402
from kyc.media.c2pa_manifest import C2paConfig, read_c2pa  # noqa: E402
from kyc.media.isolated import read_c2pa_isolated  # noqa: E402
from kyc.media.sandbox import SandboxLimits  # noqa: E402
from tests.fixtures.c2pa_clips import make_ca, manifest, sign  # noqa: E402

DEFAULT_CORPUS = ROOT / ".." / "shared" / "corpus" / "media"
SANDBOX = SandboxLimits(memory_bytes=1 << 30, cpu_s=30, wall_s=20)


def best_of(repeat: int, work) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=5, help="runs per file; the best is reported")
    args = parser.parse_args()
    c2pa_manifest.preload()
    ca, config = make_ca(), C2paConfig()
    rows: list[tuple[str, int, float, float, float]] = []
    print(f"{'unsigned':>10} {'signed':>10} {'sandboxed':>10} {'bytes':>10}  file")
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(args.corpus.iterdir()):
            if path.suffix.lower() not in (".mp4", ".mov"):
                continue
            signed = Path(tmp) / path.name
            try:
                sign(path, signed, ca, manifest("trainedAlgorithmicMedia"))
            except Exception as exc:  # c2pa refuses to sign some broken files; they are skipped
                note = f"{path.name} (not signable: {type(exc).__name__})"
                print(f"{'-':>10} {'-':>10} {'-':>10} {path.stat().st_size:>10d}  {note}")
                continue
            unsigned_s = best_of(args.repeat, lambda p=path: read_c2pa(p, config))
            signed_s = best_of(args.repeat, lambda p=signed: read_c2pa(p, config))
            isolated_s = best_of(args.repeat, lambda p=signed: read_c2pa_isolated(p, config, SANDBOX))
            rows.append((path.name, path.stat().st_size, unsigned_s, signed_s, isolated_s))
            print(
                f"{unsigned_s * 1000:8.2f}ms {signed_s * 1000:8.2f}ms {isolated_s * 1000:8.2f}ms "
                f"{path.stat().st_size:>10d}  {path.name}"
            )
    if not rows:
        print("no MP4/MOV files found")
        return
    for label, index in (("unsigned read", 2), ("signed read", 3), ("sandboxed signed read", 4)):
        values = [r[index] for r in rows]
        print(
            f"{label:22s} median {statistics.median(values) * 1000:7.2f} ms   "
            f"worst {max(values) * 1000:7.2f} ms   ({len(values)} clips)"
        )


if __name__ == "__main__":
    main()
