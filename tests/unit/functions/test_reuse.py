"""CheckReuse against moto: two copies see each other whatever the order, a retry adds nothing,
a re-screened submission never matches itself, a changed manifest is refused, refused media is
not checked."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.errors import SourceChangedError
from tests.unit.aws.test_dynamodb_reuse_index import create_reuse_table
from tests.unit.functions.handler_loader import FakeContext, load_handler

WORK, TABLE = "work", "reuse-index"
NOW = datetime.now(UTC)


def _at(hours_ago: float) -> str:
    """Receipt times relative to now: the index's TTL filter reads the real clock."""
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hashes(seed: int, n: int = 8) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(64) for _ in range(n)]


def _near(hashes: list[int], seed: int) -> list[int]:
    rng = random.Random(seed)
    out = []
    for h in hashes:
        for bit in rng.sample(range(64), 2):
            h ^= 1 << bit
        out.append(h)
    return out


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=WORK)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_reuse_table(ddb, TABLE)
        env = {"KYC_WORK_BUCKET": WORK, "KYC_REUSE_TABLE": TABLE, "KYC_REUSE_WINDOW_DAYS": "7"}
        app = load_handler("reuse", env, monkeypatch)
        yield {"s3": s3, "ddb": ddb, "app": app}


def _event(aws: dict[str, Any], sid: str, sha: str, hashes: list[int | None], received_at: str) -> dict:
    frames = [{"index": i, "phash": None if h is None else f"{h:016x}"} for i, h in enumerate(hashes)]
    body = json.dumps({"frames": frames}).encode()
    key = f"frames/{sid}/manifest.json"
    aws["s3"].put_object(Bucket=WORK, Key=key, Body=body)
    return {
        "submission": {"submission_id": sid, "received_at": received_at},
        "validation": {"sha256": sha},
        "extraction": {
            "manifest_key": key,
            "manifest_sha256": hashlib.sha256(body).hexdigest(),
            "refusal": None,
        },
    }


def _check(aws: dict[str, Any], event: dict) -> dict:
    return aws["app"].lambda_handler(event, FakeContext())


def test_a_copy_under_another_submission_matches_the_earlier_one(aws: dict[str, Any]) -> None:
    original = _hashes(1)
    first = _check(aws, _event(aws, "A", "aa" * 32, original, _at(3)))
    assert first["checked"] and not first["matched"]
    copy = _check(aws, _event(aws, "B", "bb" * 32, _near(original, 2), _at(2)))
    assert copy["matched"], copy
    (match,) = copy["matches"]
    assert (match["submission_id"], match["kind"], match["frames_matched"]) == ("A", "perceptual", 8)
    assert match["max_distance"] <= 4
    unrelated = _check(aws, _event(aws, "C", "cc" * 32, _hashes(3), _at(1)))
    assert not unrelated["matched"], unrelated


def test_same_bytes_match_exactly_even_when_no_frame_has_a_hash(aws: dict[str, Any]) -> None:
    _check(aws, _event(aws, "A", "dd" * 32, [None, None], _at(3)))
    again = _check(aws, _event(aws, "B", "dd" * 32, [None, None], _at(2.9)))
    assert [(m["submission_id"], m["kind"], m["strength"]) for m in again["matches"]] == [("A", "exact", 1.0)]


def test_concurrent_copies_see_each_other_and_retries_add_nothing(aws: dict[str, Any]) -> None:
    """Both write before they read: the one that reads second sees the first, and the first,
    retried (or re-screened), now sees the second too; its own entries never count."""
    original = _hashes(4)
    event_a = _event(aws, "A", "aa" * 32, original, _at(3))
    event_b = _event(aws, "B", "bb" * 32, _near(original, 5), _at(3))
    first_a = _check(aws, event_a)
    size = len(aws["ddb"].scan(TableName=TABLE)["Items"])
    b = _check(aws, event_b)
    retried_a = _check(aws, event_a)
    assert not first_a["matched"]
    assert [m["submission_id"] for m in b["matches"]] == ["A"]
    assert [m["submission_id"] for m in retried_a["matches"]] == ["B"]  # never "A"
    assert len(aws["ddb"].scan(TableName=TABLE)["Items"]) == size + (1 + 4 * 8 + 1)  # only B's entries


def test_outside_the_window_nothing_matches(aws: dict[str, Any]) -> None:
    original = _hashes(6)
    _check(aws, _event(aws, "A", "aa" * 32, original, _at(24 * 8)))
    late = _check(aws, _event(aws, "B", "aa" * 32, original, _at(3)))
    assert not late["matched"]


def test_changed_manifest_is_refused_and_refused_media_is_not_checked(aws: dict[str, Any]) -> None:
    event = _event(aws, "A", "aa" * 32, _hashes(7), _at(3))
    event["extraction"]["manifest_sha256"] = "0" * 64
    with pytest.raises(SourceChangedError):
        _check(aws, event)
    refused = {
        "submission": {"submission_id": "R", "received_at": _at(3)},
        "validation": {"sha256": "ee" * 32},
        "extraction": {"manifest_key": None, "manifest_sha256": None, "refusal": {"reason": "CORRUPT_MEDIA"}},
    }
    result = _check(aws, refused)
    assert (result["checked"], result["matched"]) == (False, False)
    assert aws["ddb"].scan(TableName=TABLE)["Items"] == []


def test_two_copies_interleaved_both_find_each_other(aws: dict[str, Any]) -> None:
    """B's whole check runs while A is between its write and its read (the worst interleaving
    for write-then-read): both must still be flagged, each naming the other."""
    app = aws["app"]
    original = _hashes(8)
    event_a = _event(aws, "A", "aa" * 32, original, _at(2))
    event_b = _event(aws, "B", "bb" * 32, _near(original, 9), _at(2))
    results: dict[str, dict] = {}
    real_exact = app.INDEX.exact

    def exact_with_b_in_between(*args: Any, **kwargs: Any) -> Any:
        if not results:  # A's read: B runs now, whole (its own read goes straight through)
            results["B"] = {}
            results["B"] = app.check_reuse(event_b)  # the handler's body, without Powertools' wrappers
        return real_exact(*args, **kwargs)

    app.INDEX.exact = exact_with_b_in_between
    try:
        results["A"] = _check(aws, event_a)
    finally:
        app.INDEX.exact = real_exact
    assert [m["submission_id"] for m in results["A"]["matches"]] == ["B"]
    assert [m["submission_id"] for m in results["B"]["matches"]] == ["A"]
