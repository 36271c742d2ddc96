"""What the erase function spends on LearningBucket (issue 21): time, peak Python memory and requests of
one subject's erasure over a learning bucket of realistic size, against moto's S3 and DynamoDB served over
HTTP by a moto server in a process of its own (so the peak memory is the eraser's, not moto's copies).

Usage: .venv/bin/python benchmarks/learning_erasure.py [--videos 2000] [--crops-per-video 8] [--runs 3]
       [--mode sweep|index]

Layout as the pipeline writes it: ``--runs`` executions, each with a dataset manifest of ``--videos``
rows and a crops.npz of ``--videos x --crops-per-video`` 32x32 face crops (float32, smooth images that
compress as real crops do, not noise; written member by member so 20,000 videos fit in memory), plus
one labels CSV.

``--mode sweep`` (what main does, and the eraser without LearningIndexTable): one subject in every run
is erased by reading every version under labels/ and runs/.

``--mode index`` (LearningIndexTable): three erasures in order, each measured:
1. a stranger (screened, never labelled) right after the runs were written: pays the catch-up, the
   indexing of every new version (once per version, whoever wrote it);
2. another stranger, index warm: the common data-subject request; no learning object is read;
3. a labelled subject in every run (the worst case): only the units that hold them are read.

``--mode late`` (issue 21 autoindex: the catch-up RetrainCatchUpRule triggers after each run): the
existing runs are caught up, then one more run of ``--videos`` is written and caught up (nobody erased
on record: the plain cost of indexing a run), then a subject is erased while nothing of them is in the
bucket, and a further run of the same size that holds them is written and caught up: the catch-up erases
them from it (the cost of a run that outlived an erasure).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import numpy as np
from numpy.lib import format as npy

from kyc.aws.learning_eraser import LearningBucketEraser, LearningErasure
from kyc.aws.learning_index import DynamoDBLearningIndex
from kyc.domain.dataset import LabelledVideo, build_manifest
from kyc.domain.learning_erasure import LearningSubject

BUCKET, TABLE = "bench-learning", "bench-learning-index"


def _crops(shas: list[str], per_video: int, rng: np.random.Generator) -> bytes:
    """A crops.npz as np.savez_compressed lays it out, written in blocks (20,000 x 8 crops are 2 GB raw)."""
    n = len(shas) * per_video
    grid = np.linspace(0, 1, 32, dtype=np.float32)
    base = (grid[None, :] + grid[:, None]) / 2
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        members: dict[str, tuple[np.dtype, tuple[int, ...], Callable[[int, int], np.ndarray]]] = {
            "sha256.npy": (
                np.dtype("<U64"),
                (n,),
                lambda a, b: np.array([shas[i // per_video] for i in range(a, b)]),
            ),
            "tensors.npy": (
                np.dtype("<f4"),
                (n, 3, 32, 32),
                lambda a, b: base[None, None] * rng.uniform(0.5, 1.0, (b - a, 3, 1, 1)).astype(np.float32),
            ),
            "labels.npy": (np.dtype("<i8"), (n,), lambda a, b: np.zeros(b - a, np.int64)),
        }
        for name, (dtype, shape, rows) in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                npy.write_array_header_2_0(
                    member, {"descr": npy.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
                )
                for start in range(0, n, 8192):
                    member.write(
                        np.ascontiguousarray(rows(start, min(n, start + 8192)), dtype=dtype).tobytes()
                    )
        with archive.open("version.npy", "w") as member:
            npy.write_array(member, np.array("ds-bench"))
    return out.getvalue()


def _measure(
    label: str, erase: Callable[[], LearningErasure], calls: Counter[str], listing: list[float]
) -> None:
    calls.clear()
    listing.clear()
    tracemalloc.start()
    began = time.perf_counter()
    done = erase()
    seconds = time.perf_counter() - began
    answer = done.to_dict() if isinstance(done, LearningErasure) else done
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    requests = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
    print(f"{label}: {seconds:.2f} s, peak traced memory {peak / 1e6:.1f} MB ({peak / 256e6:.0%} of 256 MB)")
    print(f"  requests: {requests}")
    print(
        f"  of which moto's ListObjectVersions: {sum(listing):.2f} s (moto copies every listed version's"
        " body; S3 lists metadata only)"
    )
    print(f"  erased: {json.dumps(answer, sort_keys=True)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--crops-per-video", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=("sweep", "index", "late"), default="sweep")
    args = parser.parse_args()
    rng = np.random.default_rng(21)
    calls: Counter[str] = Counter()
    listing: list[float] = []
    started: list[float] = []

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.split(".")[-1]] += 1
        if event_name.endswith("ListObjectVersions"):
            started.append(time.perf_counter())

    def listed(**_: Any) -> None:
        listing.append(time.perf_counter() - started.pop())

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _run(args, port, calls, count, listed, listing, rng)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _run(
    args: argparse.Namespace,
    port: int,
    calls: Counter[str],
    count: Callable[..., None],
    listed: Callable[..., None],
    listing: list[float],
    rng: np.random.Generator,
) -> None:
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="eu-west-1")
    s3 = session.client("s3", endpoint_url=endpoint)
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    shas = [f"{i:064x}" for i in range(args.videos)]
    videos = [LabelledVideo(s, "genuine", None, applicant=f"ps-{i // 2}") for i, s in enumerate(shas)]
    manifest = build_manifest(
        videos, {s: f"uploads/{s[:8]}.mp4" for s in shas}, created="2026-12-06T00:00:00Z", source="b"
    )
    built = time.perf_counter()
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
    objects = 2 * args.runs + 1
    print(
        f"learning bucket: {objects} objects, {scanned / 1e6:.1f} MB "
        f"({args.runs} runs x {args.videos} videos x {args.crops_per_video} crops; "
        f"built in {time.perf_counter() - built:.0f} s)"
    )
    s3.meta.events.register("before-call.s3.*", count)
    s3.meta.events.register("after-call.s3.ListObjectVersions", listed)
    ddb.meta.events.register("before-call.dynamodb.*", count)
    at = "2026-12-06T01:00:00Z"
    stranger = LearningSubject.of(["f" * 64], ["uploads/stranger.mp4"], ["ps-stranger"])
    if args.mode == "sweep":
        eraser = LearningBucketEraser(BUCKET, "alias/aws/s3", s3)
        _measure("sweep, stranger", lambda: eraser.erase(stranger, erased_at=at), calls, listing)
        _measure(
            "sweep, labelled subject",
            lambda: eraser.erase(LearningSubject.of([shas[7]]), erased_at=at),
            calls,
            listing,
        )
        return
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    eraser = LearningBucketEraser(BUCKET, "alias/aws/s3", s3, index=DynamoDBLearningIndex(TABLE, 90, ddb))
    if args.mode == "late":
        _late(args, s3, eraser, manifest, shas, calls, listing, rng)
        return
    _measure(
        "index, stranger, first erasure after the runs (catch-up)",
        lambda: eraser.erase(stranger, erased_at=at),
        calls,
        listing,
    )
    other = LearningSubject.of(["e" * 64], ["uploads/other.mp4"], ["ps-other"])
    _measure("index, stranger, index warm", lambda: eraser.erase(other, erased_at=at), calls, listing)
    _measure(
        "index, labelled subject",
        lambda: eraser.erase(LearningSubject.of([shas[7]]), erased_at=at),
        calls,
        listing,
    )


def _late(
    args: argparse.Namespace,
    s3: Any,
    eraser: LearningBucketEraser,
    manifest: dict[str, Any],
    shas: list[str],
    calls: Counter[str],
    listing: list[float],
    rng: np.random.Generator,
) -> None:
    """A catch-up of one more run, without and then with a subject erased while the run was going."""
    eraser.index_new_versions()  # the existing runs: indexed before anything is measured
    late_sha = "d" * 64
    rows = [*shas[:-1], late_sha]
    with_late = build_manifest(
        [LabelledVideo(s, "genuine", None, applicant=f"ps-{i // 2}") for i, s in enumerate(rows)],
        {s: f"uploads/{s[:8]}.mp4" for s in rows},
        created="2026-12-07T00:00:00Z",
        source="b",
    )
    for name, document, erase_first in (("plain", manifest, False), ("late", with_late, True)):
        if erase_first:  # erased while the run is going: nothing of them in the bucket yet
            eraser.erase(LearningSubject.of([late_sha]), erased_at="2026-12-07T00:30:00Z")
        shas_of = [r["sha256"] for r in document["rows"]]
        for key, body in (
            (f"runs/{name}/dataset/dataset.json", json.dumps(document).encode()),
            (f"runs/{name}/crops/crops.npz", _crops(shas_of, args.crops_per_video, rng)),
        ):
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        label = (
            "catch-up of a run, nobody on record"
            if not erase_first
            else ("catch-up of a run holding a subject erased while it ran")
        )
        _measure(label, eraser.index_new_versions, calls, listing)


if __name__ == "__main__":
    main()
