"""Per-batch latency of the score function's endpoint work with and without live shadow traffic.

Usage: .venv/bin/python benchmarks/shadow_latency.py [clip] [repeats] -> JSON on stdout.
8 frames of a real clip (PyAV, JPEG q95 at 1024 px, as the extractor writes them), one batch, scored
over real HTTP by the local model server's reference model: the champion call alone
(``SageMakerFrameScorer``, as the score function makes it), then the champion call followed by the
shadow call (``kyc.aws.shadow_traffic.ShadowScorer`` on the candidate's own endpoint name, served by
the same reference model: a candidate as slow as the champion). The difference is what live shadow
traffic adds to each batch; the bound is what a hanging candidate can add at most.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import boto3
import cv2
from botocore.config import Config

from kyc.aws.sagemaker_frame_scorer import SageMakerFrameScorer
from kyc.aws.shadow_traffic import SHADOW_ATTEMPTS, SHADOW_CONNECT_TIMEOUT_S, ShadowPointer, ShadowScorer
from kyc.domain.contract import FrameImage
from kycserve import load_model, start_server, stop

sys.path.insert(0, "benchmarks")
from scoring import DEFAULT_CLIP, sample_frames

TIMEOUT_S = 10.0  # the template's ShadowTimeoutSeconds default


def main() -> None:
    clip = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CLIP
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    images = sample_frames(clip, count=8)
    frames = [
        FrameImage(
            f"{i:03d}", "image/jpeg", cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        )
        for i, img in enumerate(images)
    ]
    model = load_model("reference")
    server, thread, url = start_server(model)
    server.endpoints = lambda name: None  # every endpoint name: the reference model
    try:
        runtime = boto3.client(
            "sagemaker-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(read_timeout=70, retries={"mode": "standard", "total_max_attempts": 1}),
        )
        champion = SageMakerFrameScorer("kyc-endpoint", client=runtime)
        shadow = ShadowScorer(TIMEOUT_S, lambda s: {"frame_id": s.frame_id, "p_fake": s.p_fake}, runtime)
        pointer = ShadowPointer(
            "/kyc/bench/shadow-policy",
            1,
            {},
            {"endpoint_name": "kyc-endpoint-v2", "artefact_sha256": "0" * 64},
        )
        champion.score(frames)  # warm-up
        alone, both, shadow_only = [], [], []
        for _ in range(repeats):
            started = time.perf_counter()
            champion.score(frames)
            alone.append(time.perf_counter() - started)
            started = time.perf_counter()
            champion.score(frames)
            mid = time.perf_counter()
            document = shadow.score(pointer, 0, frames)
            both.append(time.perf_counter() - started)
            shadow_only.append(time.perf_counter() - mid)
            assert document["status"] == "SCORED", document
    finally:
        stop(server, thread)
    print(
        json.dumps(
            {
                "clip": clip,
                "frames_per_batch": len(frames),
                "repeats": repeats,
                "champion_only_s_median": round(statistics.median(alone), 3),
                "champion_then_shadow_s_median": round(statistics.median(both), 3),
                "shadow_call_s_median": round(statistics.median(shadow_only), 3),
                "added_by_shadow_pct": round(
                    100 * (statistics.median(both) / statistics.median(alone) - 1), 1
                ),
                "hanging_candidate_bound_s": SHADOW_ATTEMPTS * (SHADOW_CONNECT_TIMEOUT_S + TIMEOUT_S) + 0.2,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
