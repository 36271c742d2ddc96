"""Build what the retraining pipeline's jobs run: build/retrain-code/{run_step.py, kyc-retrain-src.tar.gz}.

    .venv/bin/python scripts/build_retrain_code.py [--out build/retrain-code]

The archive holds every file git tracks, as it is in the working tree, so a job runs exactly this
release's code (the screening path's kyc.media sampler, the model server's crops, the gate). Upload
the folder to s3://<LearningBucket>/code/ under the stack key (docs/learning-loop.md).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = "kyc-retrain-src.tar.gz"


def tracked_files(repo: Path = REPO) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as make and CI use it
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    return sorted(name for name in out.decode().split("\0") if name and (repo / name).is_file())


def build(out: Path, repo: Path = REPO) -> Path:
    """The folder to upload; the archive is reproducible (sorted, fixed mtimes and owners)."""
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in tracked_files(repo):
            data = (repo / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    import gzip

    (out / ARCHIVE).write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    shutil.copy(repo / "pipelines" / "run_step.py", out / "run_step.py")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "build" / "retrain-code")
    args = parser.parse_args(argv)
    out = build(args.out)
    digest = hashlib.sha256((out / ARCHIVE).read_bytes()).hexdigest()
    print(f"{out}: run_step.py, {ARCHIVE} (sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
