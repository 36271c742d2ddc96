"""A burst of uploads, some delivered twice, through the local stack: exactly-once, throughput, latency.

Usage: .venv/bin/python benchmarks/load.py [--uploads 200] [--duplicate-share 0.25] [--model onnx]

Every upload is a distinct object (so a distinct submission) holding the same tiny clip (128x128,
1.2 s, 8 fps; 4 frames sampled). A share of them gets its S3 ``Object Created`` event sent a second
time straight into the admission queue, racing the real one, as at-least-once delivery would.
Checks, printed and enforced (exit 1 if broken): one decision item per upload, one execution per
submission, one downstream ``Screening Decision`` event per submission. Figures: uploads/s from the
first upload to the last decision, and p50/p95 time from upload to ``decided_at``.

The default model is the tiny ONNX one (p_fake from the red channel), so the run measures the
pipeline rather than the reference scorer; ``--model reference`` is slower (about 4x per frame).
With 4 frames the policy's minimum frames gate sends everything to REVIEW: that is expected here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the clip generator and the tiny model live with the tests


from kyclocal.stack import LocalStack, LocalStackSettings  # noqa: E402
from tests.fixtures.clips import make_clip  # noqa: E402
from tests.unit.serving.helpers import write_onnx_config  # noqa: E402

DEADLINE_S = 600.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--duplicate-share", type=float, default=0.25)
    parser.add_argument("--model", default="onnx", choices=("onnx", "reference"))
    parser.add_argument("--deadline", type=float, default=DEADLINE_S, help="give up after this many seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kyc-load-") as tmp:
        root = Path(tmp)
        clip = make_clip(root / "clip.mp4", width=128, height=128, fps=8, seconds=1.2, colour=(60, 120, 200))
        settings = LocalStackSettings(
            model=args.model,
            onnx_config=_onnx_config(root) if args.model == "onnx" else None,
            frame_count=4,
            defer_when_full=True,  # as the event source mapping does in AWS (the default, stated)
        )
        with LocalStack(settings) as stack:
            figures = run_burst(stack, clip, args.uploads, args.duplicate_share, args.deadline)
    figures["model"] = args.model
    print(json.dumps(figures, indent=2))
    return 0 if figures["ok"] else 1


def run_burst(stack: LocalStack, clip: Path, uploads: int, share: float, deadline_s: float) -> dict[str, Any]:
    sqs = stack.client("sqs")
    every = max(1, round(1 / share)) if share > 0 else 0
    uploaded_at: dict[str, float] = {}
    size = clip.stat().st_size
    duplicates = 0
    started = time.time()
    for i in range(uploads):
        ident = stack.upload(clip, key=f"uploads/load/{i:05d}/selfie.mp4")
        uploaded_at[ident["submission_id"]] = time.time()
        if every and i % every == 0:
            sqs.send_message(
                QueueUrl=stack.admission_queue_url, MessageBody=json.dumps(_event(ident, i, size))
            )
            duplicates += 1
    upload_s = time.time() - started
    items = _wait_for_decisions(stack, set(uploaded_at), started + deadline_s)
    finished = max((_epoch(i["decided_at"]) for i in items), default=time.time())
    drained = _wait_until_idle(stack, started + deadline_s)
    per_sid = Counter(i["submission_id"] for i in items)
    executions = _execution_names(stack)
    events = _drain_decision_events(stack)
    latencies = sorted(_epoch(i["decided_at"]) - uploaded_at[i["submission_id"]] for i in items)
    checks = {
        "one_decision_per_upload": set(per_sid) == set(uploaded_at) and set(per_sid.values()) == {1},
        "one_execution_per_submission": Counter(executions) == Counter(set(uploaded_at)),
        "one_event_per_submission": Counter(events) == Counter(set(uploaded_at)),
        "admission_queue_drained": drained,  # every duplicate delivery was taken, none left cycling
        # issue 24 item 5: uploads deferred in the queue (the local stack's default, as in AWS) and
        # copies of one clip waiting for each other's reuse checks never end in ERROR
        "no_error_decision": not any(i["decision"] == "ERROR" for i in items),
    }
    return {
        "uploads": uploads,
        "duplicate_deliveries": duplicates,
        "decision_items": len(items),
        "decisions": dict(Counter(i["decision"] for i in items)),
        "executions": len(executions),
        "decision_events": len(events),
        "upload_s": round(upload_s, 2),
        "wall_s": round(finished - started, 2),
        "throughput_uploads_per_s": round(len(items) / (finished - started), 2) if items else 0.0,
        "time_to_decision_s": {
            "p50": round(statistics.median(latencies), 2) if latencies else None,
            "p95": round(_percentile(latencies, 0.95), 2) if latencies else None,
            "max": round(latencies[-1], 2) if latencies else None,
        },
        "checks": checks,
        "ok": all(checks.values()),
    }


def _event(ident: dict[str, Any], n: int, size: int) -> dict[str, Any]:
    """The S3 Object Created event EventBridge delivered, as a second delivery would carry it."""
    return {
        "version": "0",
        "id": f"load-dup-{n}",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "version": "0",
            "bucket": {"name": ident["bucket"]},
            "object": {
                "key": ident["key"],
                "size": size,
                "etag": ident["etag"],
                "version-id": ident["version_id"],
                "sequencer": f"{n:016X}",
            },
            "request-id": f"LOADDUP{n:08d}",
            "requester": "123456789012",
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def _scan(stack: LocalStack) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    ddb, des = stack.client("dynamodb"), TypeDeserializer()
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": stack.resources.decisions_table}
    while True:
        page = ddb.scan(**kwargs)
        items.extend({k: des.deserialize(v) for k, v in item.items()} for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _wait_for_decisions(stack: LocalStack, sids: set[str], deadline: float) -> list[dict[str, Any]]:
    last = -1
    while True:
        items = _scan(stack)
        done = sum(1 for i in items if i["submission_id"] in sids)
        if done != last:
            print(f"  {done}/{len(sids)} decided", file=sys.stderr, flush=True)
            last = done
        if done >= len(sids) or time.time() > deadline:
            return items
        time.sleep(1.0)


def _wait_until_idle(stack: LocalStack, deadline: float) -> bool:
    """No execution running and no admission message left: duplicates have had their chance."""
    sfn = stack.client("stepfunctions")
    while time.time() < deadline:
        running = sfn.list_executions(stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING")
        if not running["executions"] and stack.drain_admissions(timeout_s=5):
            return True
        time.sleep(1.0)
    return False


def _execution_names(stack: LocalStack) -> list[str]:
    sfn = stack.client("stepfunctions")
    names: list[str] = []
    kwargs: dict[str, Any] = {"stateMachineArn": stack.state_machine_arn, "maxResults": 1000}
    while True:
        page = sfn.list_executions(**kwargs)
        names.extend(e["name"] for e in page["executions"])
        if not page.get("nextToken"):
            return names
        kwargs["nextToken"] = page["nextToken"]


def _drain_decision_events(stack: LocalStack) -> list[str]:
    """Submission ids of every Screening Decision event the tap queue received."""
    sqs = stack.client("sqs")
    sids: list[str] = []
    empty = 0
    while empty < 2:
        messages = sqs.receive_message(
            QueueUrl=stack.decision_events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        empty = 0 if messages else empty + 1
        for message in messages:
            sids.append(json.loads(message["Body"])["detail"]["submission_id"])
            sqs.delete_message(
                QueueUrl=stack.decision_events_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return sids


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]


def _onnx_config(root: Path) -> Path:
    return write_onnx_config(root, weight_red=20.0, bias=-10.0)


if __name__ == "__main__":
    raise SystemExit(main())
