"""Time per frame of the local face stage: boto3's Rekognition client -> kycserve's DetectFaces.

Usage: .venv/bin/python benchmarks/faces.py [--frames 32] -> a table and JSON on stdout.
Frames: the demo's drawn face at 640x480 and at 1024x768, and a faceless 1024x576 frame of the
corpus (a phone capture), JPEG q95 as the extractor writes them. Each is sent the way the face stage
sends it (RekognitionFaceDetector, over HTTP, one call at a time, then 4 in parallel as the handler
does), and the detector alone is timed in-process to separate HTTP from OpenCV. In AWS the figure
to watch is Rekognition's latency, not this one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import av
import boto3
import cv2
import numpy as np

from kyc.aws.rekognition_face_detector import CLIENT_CONFIG, RekognitionFaceDetector
from kyclocal.samples import drawn_face
from kycserve import start_server, stop
from kycserve.rekognition import LocalFaceDetector

CORPUS_CLIP = "/work/shared/corpus/media/axm__pixel7_videoOnly_cleaned.mp4"


def _jpeg_bgr(bgr: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def frames() -> dict[str, bytes]:
    out = {
        "drawn face 640x480": _jpeg_bgr(
            cv2.cvtColor(drawn_face(640, 480).astype(np.uint8), cv2.COLOR_RGB2BGR)
        ),
        "drawn face 1024x768": _jpeg_bgr(
            cv2.cvtColor(drawn_face(1024, 768).astype(np.uint8), cv2.COLOR_RGB2BGR)
        ),
    }
    try:
        with av.open(CORPUS_CLIP) as container:
            first = next(container.decode(video=0)).to_ndarray(format="bgr24")
        out["phone capture 1024x576 (dark, no person)"] = _jpeg_bgr(cv2.resize(first, (1024, 576)))
    except (OSError, av.FFmpegError, StopIteration):
        pass  # the corpus is not beside the project
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=32, help="calls per image kind")
    args = parser.parse_args()
    server, thread, url = start_server(None)
    try:
        client = boto3.client(
            "rekognition",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=CLIENT_CONFIG,
        )
        detector, local = RekognitionFaceDetector(client), LocalFaceDetector()
        results = {}
        for name, data in frames().items():
            detector.detect(data)  # warm up (cascade load, connection)
            sequential = []
            for _ in range(args.frames):
                began = time.perf_counter()
                faces = detector.detect(data).faces
                sequential.append(time.perf_counter() - began)
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(detector.detect, [data] * args.frames))
            parallel = (time.perf_counter() - began) / args.frames
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            in_process = []
            for _ in range(min(args.frames, 8)):
                began = time.perf_counter()
                local.detect(bgr)
                in_process.append(time.perf_counter() - began)
            results[name] = {
                "bytes": len(data),
                "faces": len(faces),
                "http_median_ms": round(1000 * statistics.median(sequential), 1),
                "http_p95_ms": round(1000 * sorted(sequential)[int(0.95 * (len(sequential) - 1))], 1),
                "http_4_parallel_ms_per_frame": round(1000 * parallel, 1),
                "detector_only_median_ms": round(1000 * statistics.median(in_process), 1),
            }
    finally:
        stop(server, thread)
    print("| Frame | bytes | faces | median ms | p95 ms | 4 parallel, ms/frame | detector only, ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['bytes']} | {r['faces']} | {r['http_median_ms']} | {r['http_p95_ms']} | "
            f"{r['http_4_parallel_ms_per_frame']} | {r['detector_only_median_ms']} |"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
