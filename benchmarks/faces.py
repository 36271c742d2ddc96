"""The face stage's detector per frame (new mesh detector vs the Haar cascades it replaced), its miss
rate on the corpus's real selfie frames, and the one-person check's similarity distributions.

Usage: .venv/bin/python benchmarks/faces.py [--frames 16] -> tables and JSON on stdout.
- time per frame, in process, on the demo's drawn face (640x480), the corpus selfie (1024x683) and a
  faceless, dark phone frame (1024x576): the mesh detector (BlazeFace + face mesh through OpenCV DNN)
  against OpenCV's Haar frontal + profile cascades (the local DetectFaces before issue 25);
- misses: frames of the corpus's real selfie clips with no face found, per detector;
- identity: similarity of landmark-aligned LBP descriptors for the same person across light, pose
  and compression changes, and for different people (the real selfie vs the drawn face), and the
  least-alike pair of a spliced clip (A then B) at several cut points.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np

from kyc.media.face_identity import descriptor
from kyc.media.face_mesh import FaceMeshDetector
from kyclocal.samples import drawn_face
from kycserve.models.faces import HaarFaceFinder

CORPUS = Path("/work/shared/corpus/media")
SELFIES = [
    "axm__sample_fragmented.mp4",
    "axm__sample_with_htc_rotation_track_name.mkv",
    "axm__sample.flv",
    "axm__sample_h262_mpeg_audio.ts",
]
DARK = "axm__pixel7_videoOnly_cleaned.mp4"
_PROFILE = cv2.data.haarcascades + "haarcascade_profileface.xml"


class Haar:
    """The local DetectFaces before issue 25: frontal cascade, then profile on the image and mirror."""

    def __init__(self) -> None:
        self.frontal = HaarFaceFinder(min_face_fraction=0.0)
        self.profile = cv2.CascadeClassifier(_PROFILE)
        self.lock = threading.Lock()

    def detect(self, bgr: np.ndarray) -> int:
        found = len(self.frontal.find(bgr, max_faces=100))
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        for image in (gray, cv2.flip(gray, 1)):
            found += len(
                self.profile.detectMultiScale(image, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
            )
        return found


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

    print("\n| Real selfie clip | frames | missed by mesh | missed by Haar |")
    print("|---|---:|---:|---:|")
    descriptors: dict[str, list[np.ndarray]] = {"A": [], "B": []}
    for name in SELFIES:
        frames = _frames(name)
        if not frames:
            continue
        missed_mesh = sum(1 for f in frames if len(mesh.detect(f)) != 1)
        missed_haar = sum(1 for f in frames[:: max(1, len(frames) // 8)] if haar.detect(f) == 0)
        sampled = len(frames[:: max(1, len(frames) // 8)])
        results["misses"][name] = {
            "frames": len(frames),
            "mesh": missed_mesh,
            "haar_of_sampled": [missed_haar, sampled],
        }
        print(f"| {name} | {len(frames)} | {missed_mesh} | {missed_haar} of {sampled} sampled |")
        for frame in frames[:: max(1, len(frames) // 4)]:
            for _, variant in _variants(frame):
                faces = mesh.detect(variant)
                if len(faces) == 1:
                    descriptors["A"].append(descriptor(variant, faces[0].landmarks))
    for index in range(0, 40, 5):
        for _, variant in _variants(_drawn(index)):
            faces = mesh.detect(variant)
            if len(faces) == 1:
                descriptors["B"].append(descriptor(variant, faces[0].landmarks))

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in (0, 1, 5, 50, 95, 100)} | {
            "n": len(values)
        }

    same_a = [float(x @ y) for x, y in itertools.combinations(descriptors["A"], 2)]
    same_b = [float(x @ y) for x, y in itertools.combinations(descriptors["B"], 2)]
    different = [float(x @ y) for x in descriptors["A"] for y in descriptors["B"]]
    results["identity"] = {
        "same person A (real selfie x light, roll, size, JPEG)": summary(same_a),
        "same person B (drawn face x the same)": summary(same_b),
        "different people (A vs B)": summary(different),
    }
    print("\n| Pairs | n | min | p1 | p5 | median | p95 | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in results["identity"].items():
        if s:
            cells = " | ".join(str(s[k]) for k in ("n", "p0", "p1", "p5", "p50", "p95", "p100"))
            print(f"| {name} | {cells} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
