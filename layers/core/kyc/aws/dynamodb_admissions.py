"""Admission records in the reuse table: which uploads were received and have not settled yet.

The start function writes one (``queued``) when the admission queue's consumer first receives an
upload (the receipt time is S3's event time, which no applicant controls) and marks it ``started``
when the gate lets it through; the reuse check settles it once the upload's entries are indexed, the
state machine on every terminal path, the reconcile function when an execution died outside it, and
erasure deletes it. The reuse check reads the unsettled ones received before its own upload from the
sparse index ``ADMISSIONS_INDEX`` (KEYS_ONLY): the witness of uploads in flight, queued ones included,
with no Step Functions call at all; the gate reads the same index to admit in receipt order.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import serialise_item
from kyc.domain.reuse import (
    ADMISSIONS_INDEX,
    ADMITTED,
    QUEUED,
    SETTLED,
    STARTED,
    InFlight,
    admission_bucket,
    admission_item,
    admission_key,
    admission_window,
    admission_window_after,
    admitted_from_index,
)


class DynamoDBAdmissions:
    def __init__(self, table_name: str, dynamodb_client: Any = None) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")
        self.queries = 0  # Query calls made (the cost of the witness, benchmarks/reuse_wait.py)
        self.items_read = 0

    def admit(self, submission_id: str, received_at: str, order: str | None = None) -> bool:
        """Record a received upload (``order``: its ``ordered_at``); False when it was already recorded
        (a redelivered event or a deferred message received again: a settled record stays settled,
        and the first order written stays the upload's)."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=serialise_item(admission_item(submission_id, received_at, order)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def settle(self, submission_id: str) -> bool:
        """Mark the upload settled (it leaves the index); False when there is no record (erased,
        expired, or an upload admitted before admission records existed)."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=serialise_item(admission_key(submission_id)),
                UpdateExpression="SET #state = :settled REMOVE admitted_bucket, admitted_at",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":settled": {"S": SETTLED}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_started(self, submission_id: str, received_at: str) -> bool:
        """The gate let the upload through: its record moves from the queued to the started partition
        of the index. False when it is not queued (already started, settled, erased or never written)."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=serialise_item(admission_key(submission_id)),
                UpdateExpression="SET #state = :started, admitted_bucket = :bucket",
                ConditionExpression="#state = :queued",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":started": {"S": STARTED},
                    ":queued": {"S": QUEUED},
                    ":bucket": {"S": admission_bucket(received_at)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def unsettled_before(self, submission_id: str, received_at: str) -> list[InFlight]:
        """Every upload received before this one and not settled: started ones within
        ``ADMISSION_HORIZON``, queued ones within ``ORDER_HORIZON`` (a row older than that is never
        waited for, and TTL deletes it after ``ADMISSION_TTL``). One Query per bucket and state."""
        return self._before(submission_id, received_at, queued=False) + self._before(
            submission_id, received_at, queued=True
        )

    def queued_before(self, submission_id: str, received_at: str) -> bool:
        """Is an upload received before this one (within ``ORDER_HORIZON``) still queued?"""
        return bool(self._before(submission_id, received_at, queued=True, limit=1))

    def started_after(self, submission_id: str, received_at: str) -> bool:
        """Does an upload received after this one (within ``ADMISSION_HORIZON``) run, unsettled? Its
        check may be waiting for this one."""
        buckets, after, until = admission_window_after(received_at, submission_id)
        return any(self._query(bucket, after, until, limit=1, exclude=after) for bucket in buckets)

    def _before(
        self, submission_id: str, received_at: str, *, queued: bool, limit: int | None = None
    ) -> list[InFlight]:
        buckets, since, before = admission_window(received_at, submission_id, queued=queued)
        found: list[InFlight] = []
        for bucket in buckets:
            found += self._query(bucket, since, before, limit=limit, exclude=before)
            if limit is not None and len(found) >= limit:
                break
        return found

    def _query(self, bucket: str, low: str, high: str, *, limit: int | None, exclude: str) -> list[InFlight]:
        """The rows of one index partition with ``low <= admitted_at <= high``, ``exclude`` left out
        (the asking upload's own key); with ``limit``, stops once that many are found."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": ADMISSIONS_INDEX,
            "KeyConditionExpression": "admitted_bucket = :b AND admitted_at BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":b": {"S": bucket}, ":low": {"S": low}, ":high": {"S": high}},
        }
        if limit is not None:
            request["Limit"] = limit + 1  # the own key may be one of them
        found: list[InFlight] = []
        while True:
            page = self._ddb.query(**request)
            self.queries += 1
            items = page.get("Items", [])
            self.items_read += len(items)
            for item in items:
                key = item.get("admitted_at", {}).get("S", "")
                if key != exclude and (row := admitted_from_index(key)) is not None:
                    found.append(row)
            if "LastEvaluatedKey" not in page or (limit is not None and len(found) >= limit):
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record(self, submission_id: str) -> tuple[str | None, str | None]:
        """The record's state and ``ordered_at`` (strongly consistent GetItem), (None, None) without one."""
        item = self._ddb.get_item(
            TableName=self._table, Key=serialise_item(admission_key(submission_id)), ConsistentRead=True
        ).get("Item")
        if not item:
            return None, None
        return item.get("state", {}).get("S"), item.get("ordered_at", {}).get("S")

    def ordered_at(self, submission_id: str) -> str | None:
        """The upload's ``ordered_at`` as its first receipt wrote it (a strongly consistent Query of its
        own key: the reuse role reads the table by Query only); None without a record or without one
        written (a record from before, or erased)."""
        items = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk = :sk",
            ExpressionAttributeValues=serialise_item(
                {":" + k: v for k, v in admission_key(submission_id).items()}
            ),
            ConsistentRead=True,
        ).get("Items", [])
        return items[0].get("ordered_at", {}).get("S") if items else None

    def state(self, submission_id: str) -> str | None:
        """The record's state (strongly consistent), None without one."""
        item = self._ddb.get_item(
            TableName=self._table, Key=serialise_item(admission_key(submission_id)), ConsistentRead=True
        ).get("Item")
        return item.get("state", {}).get("S") if item else None

    def delete(self, submission_id: str) -> None:
        """Erasure: the record goes with the upload's other entries."""
        self._ddb.delete_item(TableName=self._table, Key=serialise_item(admission_key(submission_id)))


__all__ = ["ADMITTED", "QUEUED", "SETTLED", "STARTED", "DynamoDBAdmissions"]
