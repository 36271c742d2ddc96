"""What the deployment witness (issue 24) costs per scored batch: service calls and time.

Usage: .venv/bin/python benchmarks/model_witness.py [batches] -> JSON on stdout.
moto's SageMaker and S3 in server mode over HTTP hold one endpoint, its config, its model and a 1 MiB
model data object uploaded with a SHA-256 checksum; one SageMakerModelWitness (one warm container)
then witnesses ``batches`` batches, as the score function does, and a promotion halfway through.
Times are for moto on loopback: in AWS each call is a regional API round trip (tens of ms), so the
figure that carries over is the number of calls per batch.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import time

import boto3
from moto.server import ThreadedMotoServer

from kyc.aws.sagemaker_model_witness import SageMakerModelWitness

BUCKET, ENDPOINT = "kyc-model-data", "kyc-deepfake-detector"


def _deploy(sm, s3, name: str, data: bytes) -> None:
    key = f"models/{name}/model.onnx"
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ChecksumAlgorithm="SHA256")
    source = {"S3Uri": f"s3://{BUCKET}/{key}", "S3DataType": "S3Object", "CompressionType": "None"}
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={"Image": "kycserve:1", "ModelDataSource": {"S3DataSource": source}},
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.c5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )


def main(batches: int = 2000) -> dict:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        sm = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=url)
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=url)
        s3.create_bucket(Bucket=BUCKET)
        _deploy(sm, s3, "champion", os.urandom(1 << 20))
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="champion")
        witness = SageMakerModelWitness(
            ENDPOINT, data_bucket=BUCKET, data_prefix="models/", sagemaker=sm, s3=s3
        )
        times = []
        for i in range(batches):
            if i == batches // 2:  # a promotion: the container reports new bytes, the witness asks again
                time.sleep(1.1)
                _deploy(sm, s3, "challenger", os.urandom(1 << 20))
                sm.delete_endpoint(EndpointName=ENDPOINT)
                sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="challenger")
            started = time.perf_counter()
            account = witness.account("AllTraffic", "champion" if i < batches // 2 else "challenger")
            times.append((time.perf_counter() - started) * 1000)
            assert account["unreadable"] is None, account
        cold = [times[0], times[batches // 2]]
        warm = [t for i, t in enumerate(times) if i not in (0, batches // 2)]
        return {
            "batches": batches,
            "service_calls": witness.calls,
            "calls_per_batch": round(witness.calls / batches, 4),
            "cold_ms": [round(t, 2) for t in cold],
            "warm_median_ms": round(statistics.median(warm), 4),
            "warm_p99_ms": round(sorted(warm)[int(len(warm) * 0.99)], 4),
            "note": "moto on loopback; in AWS a cold resolve is 4 regional API calls, warm batches make none",
        }
    finally:
        server.stop()


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000), indent=2))
