"""Per-stage durations and per-screening resource use of full local screenings, for the cost model.

    .venv/bin/python benchmarks/pipeline.py [--clip FILE] [--frames 32] [--runs 3] [--out FILE.json]

Runs the embedded local stack (real handlers, real state machine, reference model over HTTP) and
records, per screening: handler wall time per function (the first call of each function in the
process is reported apart: it includes imports, like a Lambda cold start), AWS API calls the
handlers made (counted in botocore, by service and operation), Step Functions state transitions
(from the execution history), CloudWatch Logs bytes (every log line, EMF records included) and the
S3 bytes written. Local timing is x86_64 CPython on a shared 2-core machine, not Lambda arm64: use
the figures as a shape, and re-measure in AWS (docs/cost.md) before budgeting.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

from kyclocal.samples import write_clip
from kyclocal.stack import LocalStack, LocalStackSettings

DEFAULT_CLIP = Path("/work/shared/corpus/media/axm__pixel7_videoOnly_cleaned.mp4")
LOG_EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs bills each event's message plus 26 bytes


class ApiCallCounter:
    """Counts API calls made by the handlers' clients (kyc.aws.clients: connect_timeout=5)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._original = BaseClient._make_api_call

    def install(self) -> None:
        counter, original = self, self._original

        def counting(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if client.meta.config.connect_timeout == 5:
                counter.calls[f"{client.meta.service_model.service_name}:{operation}"] += 1
            return original(client, operation, params)

        BaseClient._make_api_call = counting  # type: ignore[method-assign]

    def uninstall(self) -> None:
        BaseClient._make_api_call = self._original  # type: ignore[method-assign]


def log_volume(stack: LocalStack) -> tuple[int, int, int]:
    """(billable bytes, events, EMF records) over every function log group."""
    logs = stack.client("logs")
    size = events = emf = 0
    for group in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]:
        for stream in logs.describe_log_streams(logGroupName=group["logGroupName"])["logStreams"]:
            for event in logs.get_log_events(
                logGroupName=group["logGroupName"], logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]:
                size += len(event["message"].encode("utf-8")) + LOG_EVENT_OVERHEAD_BYTES
                events += 1
                emf += '"_aws"' in event["message"]
    return size, events, emf


def bucket_bytes(stack: LocalStack, bucket: str, prefix: str = "") -> tuple[int, int]:
    s3 = stack.client("s3")
    count = size = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            count += 1
            size += int(version["Size"])
    return count, size


def transitions(history: list[dict[str, Any]]) -> int:
    """Billable Standard transitions: one per state entered (retries re-enter and count too)."""
    return sum(1 for event in history if event["type"].endswith("StateEntered"))


def measure(clip: Path, frames: int, runs: int, face_source: str | None = None) -> dict[str, Any]:
    counter = ApiCallCounter()
    counter.install()
    try:
        settings = LocalStackSettings(frame_count=frames, face_evidence_source=face_source)
        with LocalStack(settings) as stack:
            return _measure(stack, counter, clip, frames, runs)
    finally:
        counter.uninstall()


def _measure(
    stack: LocalStack, counter: ApiCallCounter, clip: Path, frames: int, runs: int
) -> dict[str, Any]:
    per_run: list[dict[str, Any]] = []
    for index in range(runs + 1):  # run 0 warms the process (imports = cold start), reported apart
        calls_before = Counter(counter.calls)
        invocations_before = len(stack.router.invocations)
        started = time.perf_counter()
        ident = stack.upload(clip, key=f"uploads/bench-{index}/{clip.name}")
        item = stack.wait_for_decision(ident["submission_id"], timeout_s=600)
        wall = time.perf_counter() - started
        if item is None:
            raise SystemExit(f"no decision for run {index}")
        history = stack.execution_history(ident["submission_id"])
        durations: dict[str, list[float]] = defaultdict(list)
        for name, seconds in stack.router.invocations[invocations_before:]:
            durations[name].append(seconds)
        per_run.append(
            {
                "decision": item["decision"],
                "wall_s": wall,
                "durations": dict(durations),
                "transitions": transitions(history),
                "history_events": len(history),
                "calls": dict(counter.calls - calls_before),
            }
        )
    warm = per_run[1:]
    functions: dict[str, Any] = {}
    for name in sorted({n for run in per_run for n in run["durations"]}):
        totals = [sum(run["durations"].get(name, [])) for run in warm]
        functions[name] = {
            "invocations_per_screening": statistics.mean(len(run["durations"].get(name, [])) for run in warm),
            "billed_s_per_screening_median": statistics.median(totals),
            "billed_s_per_screening_max": max(totals),
            "first_call_s": per_run[0]["durations"].get(name, [0.0])[0],
        }
    calls: Counter[str] = Counter()
    for run in warm:
        calls.update(run["calls"])
    log_bytes, log_events, emf = log_volume(stack)
    screenings = runs + 1
    work = bucket_bytes(stack, stack.resources.work_bucket)
    audit = bucket_bytes(stack, stack.resources.audit_bucket, "decisions/")
    reviews = bucket_bytes(stack, stack.resources.review_bucket, "reviews/")  # ReviewSheetRetentionDays
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "shared 2-core",
        },
        "clip": {"name": clip.name, "bytes": clip.stat().st_size},
        "frame_count": frames,
        "runs": runs,
        "decisions": [run["decision"] for run in per_run],
        "wall_s_per_screening_median": statistics.median(run["wall_s"] for run in warm),
        "functions": functions,
        "state_transitions_per_screening": statistics.median(run["transitions"] for run in warm),
        "history_events_per_screening": statistics.median(run["history_events"] for run in warm),
        "api_calls_per_screening": {k: v / len(warm) for k, v in sorted(calls.items())},
        "log_bytes_per_screening": log_bytes / screenings,
        "log_events_per_screening": log_events / screenings,
        "emf_records_per_screening": emf / screenings,
        "s3": {
            "work_objects_per_screening": work[0] / screenings,
            "work_bytes_per_screening": work[1] / screenings,
            "audit_objects_per_screening": audit[0] / screenings,
            "audit_bytes_per_screening": audit[1] / screenings,
            "review_bytes_per_screening": reviews[1] / screenings,
            "upload_bytes": clip.stat().st_size,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clip", type=Path, help=f"default: {DEFAULT_CLIP.name} if present, else a synthetic clip"
    )
    parser.add_argument("--frames", type=int, default=32, help="template default FrameCount")
    parser.add_argument("--runs", type=int, default=3, help="measured screenings after one warm-up")
    parser.add_argument(
        "--out", type=Path, default=Path("build/bench/pipeline.json"), help="JSON for cost_model"
    )
    parser.add_argument(
        "--face-evidence-source",
        help="FaceEvidenceSource for the run (default: the template's); `model` leaves the face stage out",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip or (DEFAULT_CLIP if DEFAULT_CLIP.exists() else None)
        if clip is None:
            clip = write_clip(
                Path(tmp) / "bench.mp4", "mp4", "libx264", {}, width=1280, height=720, seconds=5
            )
        result = measure(clip, args.frames, args.runs, args.face_evidence_source)
    result["face_evidence_source"] = args.face_evidence_source
    if "ERROR" in result["decisions"]:
        # an errored screening stops early: its counts would price a pipeline that did not run
        json.dump(result, sys.stderr, indent=2)
        print(f"\nscreenings ended in ERROR ({result['decisions']}): nothing written", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    json.dump(result, sys.stdout, indent=2)
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
