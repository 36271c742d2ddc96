"""What the deployment witness adds to a live shadow batch (issue 21 shadow hardening): time and calls.

Usage: .venv/bin/python benchmarks/shadow_witness.py [batches] -> JSON on stdout.
moto's SageMaker and S3 in server mode over HTTP hold the candidate's endpoint (``<EndpointName>-v2``),
its config, its model and its model data under ``candidates/`` (uploaded with a SHA-256 checksum); the
local model server answers the candidate's calls (a constant detector, so the model's own time does not
hide the witness's). 8 frames of a real clip (PyAV, JPEG q95) per batch, through
``kyc.aws.shadow_traffic.ShadowScorer`` as the score function builds it: without a witness (before),
with the witness cached as deployed (``KYC_MODEL_WITNESS_TTL_S`` 60: one warm container), and with it
asked on every batch (TTL 0, the worst steady state). Loopback times: in AWS each witness call is a
regional API round trip (tens of ms), so the figure that carries over is the calls per batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import statistics
import sys
import time

import boto3
import cv2
from moto.server import ThreadedMotoServer

from kyc.aws.sagemaker_deployment import deploy
from kyc.aws.sagemaker_model_witness import SageMakerModelWitness
from kyc.aws.shadow_traffic import ShadowPointer, ShadowScorer, shadow_client_config
from kyc.domain.contract import FrameImage
from kyclocal.drills import ConstantModel
from kycserve import start_server, stop

sys.path.insert(0, "benchmarks")
from scoring import DEFAULT_CLIP, sample_frames

BUCKET, ENDPOINT = "kyc-model-data", "kyc-endpoint-v2"


def _frames() -> list[FrameImage]:
    images = sample_frames(DEFAULT_CLIP, count=8)
    return [
        FrameImage(
            f"{i:03d}", "image/jpeg", cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        )
        for i, img in enumerate(images)
    ]


def _run(scorer: ShadowScorer, pointer: ShadowPointer, frames: list[FrameImage], batches: int) -> list[float]:
    times = []
    for i in range(batches):
        started = time.perf_counter()
        document = scorer.score(pointer, i, frames)
        times.append((time.perf_counter() - started) * 1000)
        assert document["status"] == "SCORED", document
        witness = document.get("model_witness")
        assert witness is None or witness["artefact_sha256"] == pointer.deployment["artefact_sha256"], witness
    return times


def main(batches: int = 50) -> dict:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    candidate = ConstantModel(0.99, "2", name="candidate")
    server, thread, runtime_url = start_server(candidate)
    try:
        url = f"http://127.0.0.1:{port}"
        sm = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=url)
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=url)
        s3.create_bucket(Bucket=BUCKET)
        sha = hashlib.sha256(candidate.artefact()).hexdigest()
        key = f"candidates/{sha}/model.onnx"
        s3.put_object(Bucket=BUCKET, Key=key, Body=candidate.artefact(), ChecksumAlgorithm="SHA256")
        deploy(
            endpoint_name=ENDPOINT,
            image="kycserve:1",
            model_data_url=f"s3://{BUCKET}/{key}",
            artefact_sha256=sha,
            role_arn="arn:aws:iam::123456789012:role/model",
            kms_key_id="alias/aws/sagemaker",
            data_bucket=BUCKET,
            sagemaker_client=sm,
            s3_client=s3,
        )
        runtime = boto3.client(
            "sagemaker-runtime",
            region_name="us-east-1",
            endpoint_url=runtime_url,
            config=shadow_client_config(10),
        )
        pointer = ShadowPointer(
            "/kyc/bench/shadow-policy", 1, {}, {"endpoint_name": ENDPOINT, "artefact_sha256": sha}
        )
        frames = _frames()
        record = lambda s: {"frame_id": s.frame_id, "p_fake": s.p_fake}  # noqa: E731
        results: dict = {"batches": batches, "frames_per_batch": len(frames)}
        _run(ShadowScorer(10, record, runtime), pointer, frames, 3)  # warm-up
        for label, ttl in (("no_witness", None), ("witness_ttl_60s", 60.0), ("witness_ttl_0s", 0.0)):
            witnesses: dict[str, SageMakerModelWitness] = {}

            def witness(
                endpoint: str, ttl: float | None = ttl, witnesses: dict = witnesses
            ) -> SageMakerModelWitness:
                if endpoint not in witnesses:
                    witnesses[endpoint] = SageMakerModelWitness(
                        endpoint,
                        data_bucket=BUCKET,
                        data_prefix="candidates/",
                        sagemaker=sm,
                        s3=s3,
                        ttl_s=ttl or 0,
                    )
                return witnesses[endpoint]

            scorer = ShadowScorer(10, record, runtime, witness=None if ttl is None else witness)
            times = _run(scorer, pointer, frames, batches)
            calls = sum(w.calls for w in witnesses.values())
            results[label] = {
                "median_ms": round(statistics.median(times), 2),
                "p90_ms": round(sorted(times)[int(len(times) * 0.9)], 2),
                "first_ms": round(times[0], 2),
                "witness_calls_per_batch": round(calls / batches, 3),
            }
        return results
    finally:
        stop(server, thread)
        moto.stop()


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50), indent=2))
