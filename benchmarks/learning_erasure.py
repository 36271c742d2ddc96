"""What the erase function spends on LearningBucket (issue 21): time and peak Python memory of one
subject's sweep over a learning bucket of realistic size, against moto's S3 in process.

Usage: .venv/bin/python benchmarks/learning_erasure.py [--videos 2000] [--crops-per-video 8] [--runs 3]

Layout as the pipeline writes it: ``--runs`` executions, each with a dataset manifest of ``--videos``
rows and a crops.npz of ``--videos x --crops-per-video`` 32x32 face crops (float32, smooth images that
compress as real crops do, not noise), plus one labels CSV. One subject (one video in every run) is
erased. Figures: objects and bytes scanned, seconds, peak traced memory (numpy buffers included), and
the ratio to the erase function's 256 MB. The sweep reads every version under labels/ and runs/, so
its cost grows with what is retained there (RetrainDataRetentionDays bounds it).
"""

from __future__ import annotations

import argparse
import io
import json
import time
import tracemalloc

import boto3
import numpy as np
from moto import mock_aws

from kyc.aws.learning_eraser import LearningBucketEraser
from kyc.domain.dataset import LabelledVideo, build_manifest
from kyc.domain.learning_erasure import LearningSubject

BUCKET = "bench-learning"


def _crops(shas: list[str], per_video: int, rng: np.random.Generator) -> bytes:
    n = len(shas) * per_video
    grid = np.linspace(0, 1, 32, dtype=np.float32)
    base = (grid[None, :] + grid[:, None]) / 2
    tensors = np.empty((n, 3, 32, 32), np.float32)
    for i in range(n):
        tensors[i] = base[None] * rng.uniform(0.5, 1.0, (3, 1, 1)).astype(np.float32)
    out = io.BytesIO()
    np.savez_compressed(
        out,
        sha256=np.array([s for s in shas for _ in range(per_video)], dtype=str),
        tensors=tensors,
        labels=np.zeros(n, np.int64),
        version=np.array("ds-bench"),
    )
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--crops-per-video", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(21)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        shas = [f"{i:064x}" for i in range(args.videos)]
        videos = [LabelledVideo(s, "genuine", None, applicant=f"ps-{i // 2}") for i, s in enumerate(shas)]
        manifest = build_manifest(
            videos, {s: f"uploads/{s[:8]}.mp4" for s in shas}, created="2026-12-06T00:00:00Z", source="b"
        )
        scanned = 0
        for run in range(args.runs):
            for key, body in (
                (f"runs/r{run}/dataset/dataset.json", json.dumps(manifest).encode()),
                (f"runs/r{run}/crops/crops.npz", _crops(shas, args.crops_per_video, rng)),
            ):
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                scanned += len(body)
        labels = "sha256,label,attack_type,applicant\n" + "".join(
            f"{s},genuine,,ps-{i // 2}\n" for i, s in enumerate(shas)
        )
        s3.put_object(Bucket=BUCKET, Key="labels/2026-12-06/reviewed.csv", Body=labels.encode())
        scanned += len(labels)
        eraser = LearningBucketEraser(BUCKET, "alias/aws/s3", s3)
        tracemalloc.start()
        began = time.perf_counter()
        done = eraser.erase(LearningSubject.of([shas[7]]), erased_at="2026-12-06T01:00:00Z")
        seconds = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    objects = 2 * args.runs + 1
    size = f"{scanned / 1e6:.1f} MB"
    print(f"learning bucket: {objects} objects, {size} ({args.runs} runs x {args.videos} videos)")
    print(f"erased one subject: {json.dumps(done.to_dict())}")
    share = f"{peak / 256e6:.0%} of the 256 MB function"
    print(f"sweep: {seconds:.2f} s, peak traced memory {peak / 1e6:.1f} MB ({share})")


if __name__ == "__main__":
    main()
