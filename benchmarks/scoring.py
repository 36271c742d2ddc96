"""Request size and endpoint latency for 32 frames of a 720p clip, by frame encoding.

Usage: .venv/bin/python benchmarks/scoring.py [clip] -> JSON on stdout.
Frames are sampled evenly, resized to 1024 px on the longest side (the extractor's default),
encoded as JPEG q95, JPEG q85 and PNG, planned into batches, and scored over real HTTP by the
reference model through SageMakerFrameScorer (boto3 -> local kycserve).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import av
import boto3
import cv2
import numpy as np
from botocore.config import Config

from kyc.aws.sagemaker_frame_scorer import SageMakerFrameScorer
from kyc.domain.contract import FrameImage, encode_request, plan_batches
from kycserve import load_model, start_server, stop

DEFAULT_CLIP = "/work/shared/corpus/media/axm__pixel7_videoOnly_cleaned.mp4"


def sample_frames(path: str, count: int = 32, max_side: int = 1024) -> list[np.ndarray]:
    with av.open(path) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    out = []
    for i in picks:
        image = frames[i]
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out.append(image)
    return out


def encode(images: list[np.ndarray], kind: str) -> list[FrameImage]:
    params = {
        "jpeg95": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
        "jpeg85": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 85]),
        "png": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]),
    }[kind]
    content_type = "image/png" if kind == "png" else "image/jpeg"
    return [
        FrameImage(f"{i:03d}", content_type, cv2.imencode(params[0], im, params[1])[1].tobytes())
        for i, im in enumerate(images)
    ]


def main() -> None:
    clip = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CLIP
    images = sample_frames(clip)
    server, thread, url = start_server(load_model("reference"))
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(read_timeout=70, retries={"total_max_attempts": 1}),
    )
    scorer = SageMakerFrameScorer("bench", client=client)
    results = {
        "clip": clip.rsplit("/", 1)[-1],
        "frame_shape": list(images[0].shape),
        "frames": len(images),
        "encodings": {},
    }
    try:
        for kind in ("jpeg95", "jpeg85", "png"):
            frames = encode(images, kind)
            sizes = [len(f.data) for f in frames]
            batches = plan_batches(sizes)
            bodies = [len(encode_request([frames[i] for i in b])) for b in batches]
            latencies = []
            started = time.perf_counter()
            for batch in batches:
                call = scorer.score([frames[i] for i in batch])
                latencies.append(call.latency_ms)
            total_s = time.perf_counter() - started
            results["encodings"][kind] = {
                "mean_frame_kib": round(statistics.mean(sizes) / 1024, 1),
                "max_frame_kib": round(max(sizes) / 1024, 1),
                "batches": [len(b) for b in batches],
                "max_request_kib": round(max(bodies) / 1024, 1),
                "total_request_kib": round(sum(bodies) / 1024, 1),
                "batch_latency_ms_median": round(statistics.median(latencies), 1),
                "all_32_frames_s": round(total_s, 2),
            }
    finally:
        stop(server, thread)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
