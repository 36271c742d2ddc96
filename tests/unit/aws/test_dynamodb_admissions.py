"""Admission records against moto's DynamoDB (the template's table and sparse index): what a reuse
check sees of the uploads received before its own. Receipt times are hand-placed around the 6-hour
bucket boundaries and the 6-hour horizon, and the expected sets written out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.dynamodb_admissions import DynamoDBAdmissions
from kyc.aws.dynamodb_reuse_index import DynamoDBReuseIndex
from tests.unit.aws.test_dynamodb_reuse_index import create_reuse_table

TABLE = "reuse-index"
L_AT = "2026-12-06T12:00:01+00:00"  # the later copy: one second into the 12:00 bucket


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_reuse_table(client, TABLE)
        yield client


def _ids(rows: list[Any]) -> set[str]:
    return {r.submission_id for r in rows}


def test_only_unsettled_uploads_received_within_the_horizon_before_this_one_are_seen(ddb: Any) -> None:
    admissions = DynamoDBAdmissions(TABLE, ddb)
    placed = {
        "prev-bucket": "2026-12-06T11:59:59+00:00",  # the 06:00 bucket, 2 s before L
        "same-bucket": "2026-12-06T12:00:00.5+00:00",
        "tie-a": L_AT,  # the same instant: the smaller id is the earlier
        "tie-z": L_AT,
        "at-horizon": "2026-12-06T06:00:01+00:00",  # exactly 6 h before L: still waited for
        "too-old": "2026-12-06T06:00:00+00:00",  # 6 h 1 s before: a dead screening, never waited for
        "later": "2026-12-06T12:00:02+00:00",
        "settled": "2026-12-06T11:00:00+00:00",
    }
    for sid, at in placed.items():
        assert admissions.admit(sid, at)
        assert admissions.mark_started(sid, at)  # let through the gate: running screenings
    assert admissions.settle("settled")
    assert not admissions.admit("settled", placed["settled"])  # a redelivery does not reopen it
    assert not admissions.mark_started("settled", placed["settled"])  # nor does a late start

    seen = admissions.unsettled_before("tie-m", L_AT)

    assert _ids(seen) == {"prev-bucket", "same-bucket", "tie-a", "at-horizon"}
    assert admissions.queries == 4  # the 06:00 and 12:00 buckets, started and queued, one page each
    assert admissions.items_read == 4  # settled and later rows are not read at all past the key bounds


def test_queued_uploads_are_seen_within_the_order_horizon_only_and_started_later_ones_are_owed(
    ddb: Any,
) -> None:
    """Issue 24 item 5: a queued record is waited for (and holds later uploads at the gate) within
    15 minutes of its receipt; a started upload received later makes an earlier one owed a slot."""
    admissions = DynamoDBAdmissions(TABLE, ddb)
    admissions.admit("q-recent", "2026-12-06T11:45:01+00:00")  # exactly 15 min before L
    admissions.admit("q-stale", "2026-12-06T11:45:00+00:00")  # 15 min 1 s before: a dead message
    admissions.admit("q-later", "2026-12-06T12:00:02+00:00")
    assert _ids(admissions.unsettled_before("l", L_AT)) == {"q-recent"}
    assert admissions.queued_before("l", L_AT)
    assert not admissions.queued_before("q-stale", "2026-12-06T11:45:00+00:00")  # the earliest
    assert not admissions.started_after("l", L_AT)  # q-later is queued, not started
    assert admissions.mark_started("q-later", "2026-12-06T12:00:02+00:00")
    assert admissions.started_after("l", L_AT)
    assert not admissions.started_after("q-later", "2026-12-06T12:00:02+00:00")  # not owed to itself
    assert admissions.state("q-later") == "started"
    assert not admissions.mark_started("q-later", "2026-12-06T12:00:02+00:00")
    assert not admissions.started_after("l", "2026-12-06T18:00:03+00:00")  # beyond the 6 h horizon


def test_settling_is_idempotent_and_needs_a_record(ddb: Any) -> None:
    admissions = DynamoDBAdmissions(TABLE, ddb)
    assert not admissions.settle("never-admitted")  # no row is created by settling
    assert admissions.state("never-admitted") is None
    admissions.admit("a", L_AT)
    assert admissions.settle("a") and admissions.settle("a")
    assert admissions.state("a") == "settled"


def test_erasure_deletes_the_admission_record(ddb: Any) -> None:
    admissions = DynamoDBAdmissions(TABLE, ddb)
    admissions.admit("gone", "2026-12-06T11:00:00+00:00")
    DynamoDBReuseIndex(TABLE, ddb).erase("gone")
    assert admissions.state("gone") is None
    assert admissions.unsettled_before("later", L_AT) == []
