"""A burst of distinct uploads above the screening slots, deferred in the admission queue as in AWS.

Usage: .venv/bin/python benchmarks/admission_burst.py [--uploads 12] [--slots 2] [--no-defer]

Issue 24 item 5: every upload gets its admission record before the gate, and a reuse check waits
for earlier unsettled uploads; the gate admits in receipt order (kyc.domain.reuse.admission_verdict)
so that no running check waits for an upload queued behind its own slot. Distinct tiny clips
(128x128, 1.2 s, 8 fps, 4 frames sampled; the reference model), uploaded at once. Figures: wall time
from the first upload to the last decision, the decisions and their reasons, and how many deliveries
(and uploads) the start function deferred.
Exit 1 when any upload ends in ERROR or undecided.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the clip generator lives with the tests

from kyclocal.stack import LocalStack, LocalStackSettings  # noqa: E402
from tests.fixtures.clips import make_clip  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=12)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--no-defer", action="store_true", help="the pump waits for a slot instead")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kyc-admission-") as tmp:
        root = Path(tmp)
        clips = [
            make_clip(root / f"c{i:03d}.mp4", width=128, height=128, fps=8, seconds=1.2,
                      colour=((40 + 15 * i) % 256, (90 + 37 * i) % 256, 160))
            for i in range(args.uploads)
        ]  # fmt: skip
        settings = LocalStackSettings(
            frame_count=4, max_running_executions=args.slots, defer_when_full=not args.no_defer
        )
        with LocalStack(settings) as stack:
            figures = run(stack, clips, args.timeout)
    figures |= {"uploads": args.uploads, "slots": args.slots, "deferral": not args.no_defer}
    print(json.dumps(figures, indent=2))
    return 0 if figures["ok"] else 1


def run(stack: LocalStack, clips: list[Path], timeout_s: float) -> dict[str, Any]:
    deferred: Counter[str] = Counter()
    deliver = stack._deliver_batch

    def counting(queue_url: str, function: str, messages: list[dict[str, Any]]) -> set[str]:
        failed = deliver(queue_url, function, messages)
        if function == "StartScreeningFunction":
            deferred.update(failed)
        return failed

    stack._deliver_batch = counting  # type: ignore[method-assign]
    started = time.monotonic()
    ids = [stack.upload(c, key=f"uploads/burst/{i:03d}/c.mp4")["submission_id"] for i, c in enumerate(clips)]
    items = [stack.wait_for_decision(s, timeout_s=timeout_s) for s in ids]
    wall = time.monotonic() - started
    decisions = Counter((i or {}).get("decision", "UNDECIDED") for i in items)
    reasons = Counter(r for i in items if i for r in i.get("reasons", []))
    running = stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)
    return {
        "wall_s": round(wall, 1),
        "decisions": dict(decisions),
        "reasons": dict(reasons),
        "deliveries_deferred": sum(deferred.values()),
        "uploads_deferred": len(deferred),
        "executions": len(running["executions"]),
        "ok": decisions.get("ERROR", 0) == 0 and decisions.get("UNDECIDED", 0) == 0,
    }


if __name__ == "__main__":
    sys.exit(main())
