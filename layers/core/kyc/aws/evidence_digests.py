"""Where the evidence digest calls AWS: the decisions index by time, KMS Sign, the digests in S3.

The domain (``kyc.domain.digest``) decides what a digest says; these adapters only fetch and store.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import deserialise_item
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.domain.digest import DIGEST_PREFIX, SIGNING_ALGORITHM, PreviousDigest
from kyc.domain.outcomes import Decision

TIME_INDEX = "ReviewQueueIndex"  # decision (HASH), decided_at (RANGE): decide's own index, ALL projected


class DecisionTimeIndex:
    """Decision records by ``decided_at`` through the table's ReviewQueueIndex: one Query per outcome
    and period (five small queries an hour), never a scan, whatever the table's size."""

    def __init__(self, table_name: str, dynamodb_client: Any = None) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")

    def decided_in(self, start: str | None, end: str) -> list[dict[str, Any]]:
        """Records with ``start <= decided_at < end`` (``start`` None: everything before ``end``)."""
        items: list[dict[str, Any]] = []
        for decision in Decision:
            kwargs = self._query(decision, start, end)
            while True:
                page = self._ddb.query(**kwargs)
                items.extend(deserialise_item(raw) for raw in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return _before(items, end)

    def first_decided(
        self, start: str | None, end: str, limit: int
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Up to ``limit`` records per outcome from ``start`` on (oldest first), and, for each outcome
        with more before ``end``, the last ``decided_at`` read (see ``kyc.domain.digest.capped_end``)."""
        items: list[dict[str, Any]] = []
        truncated: list[str] = []
        for decision in Decision:
            page = self._ddb.query(**self._query(decision, start, end) | {"Limit": limit})
            found = [deserialise_item(raw) for raw in page.get("Items", [])]
            items.extend(found)
            if "LastEvaluatedKey" in page and found:
                truncated.append(str(found[-1]["decided_at"]))
        return _before(items, end), truncated

    def _query(self, decision: Decision, start: str | None, end: str) -> dict[str, Any]:
        values: dict[str, Any] = {":d": {"S": str(decision)}, ":e": {"S": end}}
        if start is None:
            condition = "decision = :d AND decided_at <= :e"
        else:
            condition = "decision = :d AND decided_at BETWEEN :s AND :e"
            values[":s"] = {"S": start}
        return {
            "TableName": self._table,
            "IndexName": TIME_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }


def _before(items: list[dict[str, Any]], end: str) -> list[dict[str, Any]]:
    # BETWEEN is inclusive: a record exactly at ``end`` belongs to the next period
    return [i for i in items if str(i.get("decided_at", "")) < end]


class KmsDigestSigner:
    """ECDSA P-256 over the raw message (KMS hashes it with SHA-256): the private key never leaves KMS."""

    def __init__(self, key_id: str, kms_client: Any = None) -> None:
        self.key_id = key_id
        self._kms = kms_client or client("kms")

    def sign(self, message: bytes) -> bytes:
        response = self._kms.sign(
            KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
        )
        return bytes(response["Signature"])

    def public_key_der(self) -> bytes:
        """The SubjectPublicKeyInfo (DER) verifiers check signatures with, offline."""
        return bytes(self._kms.get_public_key(KeyId=self.key_id)["PublicKey"])


class S3DigestStore:
    """Digests under ``digests/YYYY/MM/DD/`` in the audit bucket, each written once."""

    def __init__(self, bucket: str, kms_key_id: str = "", s3_client: Any = None) -> None:
        self._bucket = bucket
        self._s3 = s3_client or client("s3")
        self._store = S3ObjectStore(kms_key_id=kms_key_id, s3_client=self._s3)

    def latest(self, today: date) -> PreviousDigest | None:
        """The newest digest: today's day prefix first, then day by day back to the first digest's
        day (a day lists at most one digest per schedule tick). None before the first digest."""
        first = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=DIGEST_PREFIX, MaxKeys=1).get("Contents")
        if not first:
            return None
        first_day = _day_of(first[0]["Key"]) or today
        day = today
        while day >= first_day:
            keys = self._keys(f"{DIGEST_PREFIX}{day:%Y/%m/%d}/")
            if keys:
                key = max(keys)
                return PreviousDigest(key=key, data=self._store.get_bytes(self._bucket, key))
            day -= timedelta(days=1)
        raise LookupError(f"s3://{self._bucket}/{DIGEST_PREFIX}: no digest between {first_day} and {today}")

    def put_new(self, key: str, data: bytes) -> bool:
        """False when a digest already has this key (a concurrent or repeated writer lost)."""
        return self._store.put_new(self._bucket, key, data, "application/json")

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys


def _day_of(key: str) -> date | None:
    parts = key.removeprefix(DIGEST_PREFIX).split("/")
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except (IndexError, ValueError):
        return None
