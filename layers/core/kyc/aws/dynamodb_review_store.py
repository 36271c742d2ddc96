"""The reviews table: leases, append-only verdict and approval records, per case (``ReviewsTable``).

Item layout (partition ``review_id`` = the submission id, sort ``record``):

- ``lease``: who works the case until when; written with a condition (free, expired, or the caller's);
- ``verdict#v000001``...: one verdict each, ``attribute_not_exists`` so a record is written once and
  two writers of the same next id cannot both win;
- ``approval#v000001``: the four-eyes confirmation of that verdict, written once.

Every verdict and approval also carries ``record_kind`` and ``recorded_at`` for ``RecordTimeIndex``
(the export and the digest read records by time). The table has no update path for records: IAM
grants the API ``PutItem`` and ``DeleteItem`` (only a lease is ever deleted, by its holder).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import deserialise_item, serialise_item
from kyc.domain.review import ApprovalRecord, CaseHistory, Lease, VerdictRecord

LEASE = "lease"
VERDICT_PREFIX = "verdict#"
APPROVAL_PREFIX = "approval#"
TIME_INDEX = "RecordTimeIndex"


class RecordExists(Exception):
    """A conditional write lost: someone wrote this record (or took this lease) first."""


class DynamoDBReviewStore:
    def __init__(self, table_name: str, *, retention_s: int, dynamodb_client: Any = None) -> None:
        self._table = table_name
        self._retention_s = retention_s
        self._ddb = dynamodb_client or client("dynamodb")

    # ------------------------------------------------------------------ reads
    def case(self, review_id: str) -> tuple[CaseHistory, Lease | None]:
        verdicts, approvals, lease = [], [], None
        for item in self._query(review_id):
            record = str(item["record"])
            if record == LEASE:
                lease = Lease(
                    review_id, str(item["holder"]), str(item["acquired_at"]), str(item["expires_at"])
                )
            elif record.startswith(VERDICT_PREFIX):
                verdicts.append(VerdictRecord.from_item(item))
            elif record.startswith(APPROVAL_PREFIX):
                approvals.append(ApprovalRecord.from_item(item))
        return CaseHistory.of(verdicts, approvals), lease

    def _query(self, review_id: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "review_id = :r",
            "ExpressionAttributeValues": {":r": {"S": review_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self._ddb.query(**kwargs)
            for item in page.get("Items", []):
                yield deserialise_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def reviewed_since(self, since: str | None) -> list[str]:
        """Ids of cases with a verdict or approval recorded at or after ``since`` (all when None)."""
        ids: list[str] = []
        for kind in ("verdict", "approval"):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": TIME_INDEX,
                "KeyConditionExpression": "record_kind = :k" + (" AND recorded_at >= :s" if since else ""),
                "ExpressionAttributeValues": {":k": {"S": kind}} | ({":s": {"S": since}} if since else {}),
            }
            while True:
                page = self._ddb.query(**kwargs)
                for item in page.get("Items", []):
                    rid = item["review_id"]["S"]
                    if rid not in ids:
                        ids.append(rid)
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return ids

    # ------------------------------------------------------------------ writes
    def take_lease(self, lease: Lease, *, now: datetime) -> None:
        """Write the lease if the case is free, its lease expired, or the caller already holds it."""
        item = {
            "review_id": lease.review_id,
            "record": LEASE,
            "holder": lease.holder,
            "acquired_at": lease.acquired_at,
            "expires_at": lease.expires_at,
            "expires_epoch": int(datetime.fromisoformat(lease.expires_at).timestamp()),
            "ttl": int(datetime.fromisoformat(lease.expires_at).timestamp()) + 86400,
        }
        self._put(
            item,
            "attribute_not_exists(#r) OR expires_epoch <= :now OR holder = :me",
            {":now": {"N": str(int(now.timestamp()))}, ":me": {"S": lease.holder}},
        )

    def release_lease(self, review_id: str, holder: str) -> bool:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={"review_id": {"S": review_id}, "record": {"S": LEASE}},
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": holder}},
            )
        except ClientError as exc:
            if _lost(exc):
                return False
            raise
        return True

    def append_verdict(self, record: VerdictRecord, *, now: datetime, evidence: dict[str, str]) -> None:
        """``evidence``: the key and SHA-256 of the record's audit document, committed here first."""
        item = record.to_item() | {"record": VERDICT_PREFIX + record.verdict_id, "record_kind": "verdict"}
        self._put(self._kept(item | evidence, now), "attribute_not_exists(#r)", None)

    def append_approval(self, record: ApprovalRecord, *, now: datetime, evidence: dict[str, str]) -> None:
        item = record.to_item() | {
            "record": APPROVAL_PREFIX + record.verdict_id,
            "record_kind": "approval",
            "recorded_at": record.approved_at,
        }
        self._put(self._kept(item | evidence, now), "attribute_not_exists(#r)", None)

    def recorded_in(self, start: str | None, end: str) -> list[dict[str, Any]]:
        """Verdict and approval records with ``start <= recorded_at < end`` (RecordTimeIndex), for the
        evidence digests: their review_id, recorded_at and evidence document."""
        items: list[dict[str, Any]] = []
        for kind in ("verdict", "approval"):
            values = {":k": {"S": kind}, ":e": {"S": end}}
            condition = "record_kind = :k AND recorded_at < :e"
            if start is not None:
                values[":s"] = {"S": start}
                condition = "record_kind = :k AND recorded_at BETWEEN :s AND :e"
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": TIME_INDEX,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
            while True:
                page = self._ddb.query(**kwargs)
                items.extend(deserialise_item(raw) for raw in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [i for i in items if str(i["recorded_at"]) < end]

    def _kept(self, item: dict[str, Any], now: datetime) -> dict[str, Any]:
        return item | {"ttl": int(now.timestamp()) + self._retention_s}

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any] | None) -> None:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": serialise_item(item),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#r": "record"},
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._ddb.put_item(**kwargs)
        except ClientError as exc:
            if _lost(exc):
                raise RecordExists(item["record"]) from exc
            raise


def _lost(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
