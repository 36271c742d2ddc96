"""The reuse index against moto: lookups are Queries (never a Scan), a retry writes nothing new,
the window and TTL bound what is read, erasure removes every entry a submission wrote."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.dynamodb_reuse_index import DynamoDBReuseIndex
from kyc.domain.reuse import FrameSignature, ReuseParams, bands, expires_at, index_entries, window_start

TABLE = "reuse-index"
PARAMS = ReuseParams(window_days=7, retention_days=7)
NOW = calendar.timegm((2026, 11, 8, 12, 0, 0))


class CountingClient:
    """The real moto client, with a tally of the operations called on it."""

    def __init__(self, inner: Any) -> None:
        self._inner, self.calls = inner, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if callable(attr) and not name.startswith("get_paginator"):
            self.calls.append(name)
        return attr


def create_reuse_table(client: Any, name: str) -> None:
    """The table as template.yaml declares it: its keys and the admission records' sparse index
    (moto ignores SSE, TTL and PITR)."""
    keys = ("pk", "sk", "admitted_bucket", "admitted_at")
    client.create_table(
        TableName=name,
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


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_reuse_table(client, TABLE)
        yield client


def _record(
    index: DynamoDBReuseIndex, sid: str, received_at: str, sha: str, frames: list[FrameSignature]
) -> None:
    entries = index_entries(
        submission_id=sid, received_at=received_at, sha256=sha, frames=frames, params=PARAMS
    )
    index.record(sid, entries, expires_at(received_at, PARAMS))


def _count(ddb: Any) -> int:
    return len(ddb.scan(TableName=TABLE)["Items"])  # the test may scan; the index never does


FRAMES = [
    FrameSignature(
        i, i / 4, (0x1111_2222_3333_4444 * (i + 1)) & (2**64 - 1), i + 1, (0.5, 0.4, 0.25), 7 * i + 1
    )
    for i in range(10)
]
BANDS = PARAMS.max_distance + 1  # multi-index hashing: one entry per band of the scene hash


def _keys(frames: list[FrameSignature]) -> set[str]:
    return {k for f in frames for k in bands(f.scene, PARAMS.max_distance)}


def test_record_is_idempotent_and_lookups_query_never_scan(ddb: Any) -> None:
    counting = CountingClient(ddb)
    index = DynamoDBReuseIndex(TABLE, counting)
    _record(index, "A", "2026-11-08T10:00:00Z", "aa" * 32, FRAMES)
    size = _count(ddb)
    assert size == 1 + BANDS * len(FRAMES) + 1  # bytes, every band of every frame, the submission's list
    _record(index, "A", "2026-11-08T10:00:00Z", "aa" * 32, FRAMES)  # a retried stage
    assert _count(ddb) == size
    counting.calls.clear()
    since = window_start("2026-11-08T11:00:00Z", PARAMS)
    exact = index.exact("aa" * 32, since, now=NOW)
    keys = _keys(FRAMES)
    frames, cut = index.frames(keys, since, now=NOW)
    assert exact == [{"submission_id": "A", "indexed_at": "2026-11-08T10:00:00.000000Z"}]
    assert {(f.submission_id, f.signature) for f in frames} == {("A", f) for f in FRAMES}  # every field back
    assert index.items_read == BANDS * len(FRAMES)
    assert not cut
    assert set(counting.calls) == {"query"} and len(counting.calls) == 1 + len(keys)


def test_window_and_expiry_bound_what_is_read(ddb: Any) -> None:
    index = DynamoDBReuseIndex(TABLE, ddb)
    _record(index, "old", "2026-10-20T10:00:00Z", "bb" * 32, FRAMES[:2])  # before the 7-day window
    _record(index, "new", "2026-11-07T10:00:00Z", "bb" * 32, FRAMES[:2])
    since = window_start("2026-11-08T10:00:00Z", PARAMS)
    assert [e["submission_id"] for e in index.exact("bb" * 32, since, now=NOW)] == ["new"]
    # TTL deletes lazily: an entry past its expiry is not evidence even while it is still stored
    later = expires_at("2026-11-07T10:00:00Z", PARAMS) + 1
    assert index.exact("bb" * 32, "2026-01-01T00:00:00.000000Z", now=later) == []


def test_hot_bucket_is_cut_and_says_so(ddb: Any) -> None:
    index = DynamoDBReuseIndex(TABLE, ddb, bucket_limit=3)
    for n in range(5):
        _record(index, f"S{n}", f"2026-11-08T0{n}:00:00Z", f"{n:02d}" * 32, FRAMES[:1])
    frames, cut = index.frames(
        bands(FRAMES[0].scene, PARAMS.max_distance)[:1], "2026-11-01T00:00:00.000000Z", now=NOW
    )
    assert cut and len(frames) == 3


def test_erase_removes_every_entry_of_one_submission_only(ddb: Any) -> None:
    index = DynamoDBReuseIndex(TABLE, ddb)
    _record(index, "A", "2026-11-08T10:00:00Z", "aa" * 32, FRAMES)
    _record(index, "A", "2026-11-08T10:30:00Z", "aa" * 32, FRAMES[:3])  # re-screened: more entries
    _record(index, "B", "2026-11-08T10:00:00Z", "cc" * 32, FRAMES[:2])
    b_only = 1 + BANDS * 2 + 1
    deleted = index.erase("A")
    assert deleted == (1 + BANDS * len(FRAMES)) + (1 + BANDS * 3)
    assert _count(ddb) == b_only
    assert index.erase("A") == 0  # a second erasure finds nothing
    since = "2026-11-01T00:00:00.000000Z"
    frames, _ = index.frames(_keys(FRAMES), since, now=NOW)
    assert {f.submission_id for f in frames} == {"B"}
