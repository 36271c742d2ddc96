"""What the reuse check's wait for earlier uploads costs per look, at N uploads in flight (issue 24 item 5).

Both witnesses run against moto in server mode, over HTTP:

- **admission records** (today): the reuse table with the template's sparse ``Admissions`` index,
  ``history`` settled uploads of the same hours and N unsettled ones received in the last minutes;
  one look is ``DynamoDBAdmissions.unsettled_before`` for the latest upload. Counted: Queries,
  items read, and the read capacity they cost (KEYS_ONLY items, eventually consistent: 0.5 RCU
  per 4 KB of a page, item sizes measured from the items themselves).
- **running executions** (before): the same N screenings as RUNNING executions of a state machine;
  one look is what ``kyc.aws.stepfunctions_in_flight`` did (removed in this issue): ListExecutions
  (RUNNING, paginated) and one DescribeExecution per execution not yet cached. Counted: calls of
  each, for a cold container (every input read) and a warm one (none new).

Step Functions' API quotas (per account and Region, US East / West / Ireland; AWS Step Functions
developer guide, "Quotas"): ListExecutions bucket 200, refill 5/s; DescribeExecution bucket 300,
refill 15/s. The printed "sustained looks/s" is what the refill rates allow account-wide (every
other caller of those APIs, the admission gate's ListExecutions included, shares them).

    .venv/bin/python benchmarks/reuse_wait.py [--uploads 10 100 1000] [--history 5000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from kyc.aws.dynamodb_admissions import DynamoDBAdmissions
from kyc.domain.reuse import admission_item

TABLE = "reuse-index"
LIST_REFILL_S, DESCRIBE_REFILL_S = 5.0, 15.0  # Step Functions quotas, large Regions (docstring)
DEFINITION = json.dumps(
    {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}
)


def _table(ddb: Any) -> None:
    keys = ("pk", "sk", "admitted_bucket", "admitted_at")
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in keys],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "Admissions",
                "KeySchema": [
                    {"AttributeName": "admitted_bucket", "KeyType": "HASH"},
                    {"AttributeName": "admitted_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )


def _item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus string values (UTF-8); numbers ~ digits/2 + 1."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        size += len(str(value).encode()) if isinstance(value, str) else len(str(value)) // 2 + 1
    return size


def admissions_look(url: str, uploads: int, history: int) -> dict[str, float]:
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=url)
    ddb.delete_table(TableName=TABLE) if TABLE in ddb.list_tables()["TableNames"] else None
    _table(ddb)
    admissions = DynamoDBAdmissions(TABLE, ddb)
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(history):  # screened earlier today: settled, out of the index
        sid = f"done{i:06d}"
        admissions.admit(sid, (now - timedelta(seconds=600 + i)).isoformat())
        admissions.settle(sid)
    sizes = []
    for i in range(uploads):  # received in the last minutes, queued or screening
        at = (now - timedelta(seconds=uploads - i, microseconds=1)).isoformat()
        sid = f"live{i:06d}"
        admissions.admit(sid, at)
        item = admission_item(sid, at)
        sizes.append(_item_bytes({k: item[k] for k in ("pk", "sk", "admitted_bucket", "admitted_at")}))
    started = time.perf_counter()
    found = admissions.unsettled_before("latest", now.isoformat())
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert len(found) == uploads, (len(found), uploads)  # an oracle: every unsettled one, nothing settled
    page_kb = sum(sizes[: admissions.items_read]) / 1024
    return {
        "queries": admissions.queries,
        "items_read": admissions.items_read,
        "rcu": max(admissions.queries * 0.5, 0.5 * math.ceil(page_kb / 4)),
        "ms": elapsed_ms,
    }


def executions_look(url: str, uploads: int) -> dict[str, float]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=url)
    arn = sfn.create_state_machine(
        name=f"screening-{uploads}", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    for i in range(uploads):
        submission = {"submission_id": f"live{i:06d}", "received_at": datetime.now(UTC).isoformat()}
        sfn.start_execution(
            stateMachineArn=arn, name=f"live{i:06d}", input=json.dumps({"submission": submission})
        )
    calls = {"ListExecutions": 0, "DescribeExecution": 0}
    cache: set[str] = set()

    def look() -> None:
        arns = []
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=arn, statusFilter="RUNNING"
        ):
            calls["ListExecutions"] += 1
            arns.extend(e["executionArn"] for e in page.get("executions", []))
        for a in arns:
            if a not in cache:
                sfn.describe_execution(executionArn=a)
                calls["DescribeExecution"] += 1
                cache.add(a)

    started = time.perf_counter()
    look()
    cold = dict(calls) | {"ms": (time.perf_counter() - started) * 1000}
    calls.update({"ListExecutions": 0, "DescribeExecution": 0})
    look()
    warm = dict(calls)
    return {
        "list_cold": cold["ListExecutions"],
        "describe_cold": cold["DescribeExecution"],
        "ms_cold": cold["ms"],
        "list_warm": warm["ListExecutions"],
        "describe_warm": warm["DescribeExecution"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--history", type=int, default=5000, help="settled uploads in the same hours")
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")  # moto's server accepts any
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    print(f"one look for earlier uploads, N in flight, {args.history} settled uploads of the same hours")
    print(
        f"{'N':>6} | {'admission records: Queries':>26} {'items':>6} {'RCU':>5} {'ms':>6} |"
        f" {'executions: List':>16} {'Describe (cold)':>15} {'ms':>7} {'List':>5} {'Describe (warm)':>15}"
        f" | {'looks/s (old, cold / warm)':>26}"
    )
    try:
        for n in args.uploads:
            new = admissions_look(url, n, args.history)
            old = executions_look(url, n)
            cold_rate = min(
                LIST_REFILL_S / old["list_cold"], DESCRIBE_REFILL_S / max(1, old["describe_cold"])
            )
            warm_rate = LIST_REFILL_S / old["list_warm"]
            print(
                f"{n:>6} | {new['queries']:>26.0f} {new['items_read']:>6.0f} {new['rcu']:>5.1f}"
                f" {new['ms']:>6.1f} | {old['list_cold']:>16.0f} {old['describe_cold']:>15.0f}"
                f" {old['ms_cold']:>7.1f} {old['list_warm']:>5.0f} {old['describe_warm']:>15.0f}"
                f" | {cold_rate:>12.2f} / {warm_rate:>11.2f}",
                flush=True,
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
