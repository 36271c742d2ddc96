"""The learning index in DynamoDB (``LearningIndexTable``, issue 21): token -> learning units, and the
catalogue of object versions already indexed (tokens and units in ``kyc.domain.learning_index``).

Items (string keys ``pk``/``sk``, TTL ``expires_at``: a token entry lives the learning data's retention
plus two days, a catalogue entry plus one day and is ignored once past it, so a version is always
indexed again before its entries can go; DynamoDB's TTL deletes late and in no order):

- ``t#<token>`` / ``<unit>``: the unit (a run folder or a labels object) holds a row with that token;
- ``catalogue`` / ``<sha256(key)>#<version id>``: that version was indexed (``sweep``: it could not
  be, so erasure reads its object every time). One partition: the whole catalogue is one paginated
  Query (about 4,000 versions per 1 MB page), compared with the bucket's version listing.
- ``erased`` / ``<token>``: a subject whose erasure was recorded (``kyc.domain.learning_index.erased_tokens``,
  one-way tokens only, the token entries' retention): what a pipeline run that started before the erasure
  writes after it is erased by the next catch-up. One partition, one paginated Query per catch-up.

A subject's lookup is one Query per token (three at most per video): one read when they hold nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kyc.aws.clients import client

_BATCH = 25  # BatchWriteItem's limit
_MAX_UNPROCESSED_ROUNDS = 8


class LearningIndexError(RuntimeError):
    """DynamoDB kept part of a batch unprocessed after every retry: the erasure fails and is retried."""


CATALOGUE = "catalogue"
ERASED = "erased"


def version_ref(key: str, version_id: str) -> str:
    return f"{hashlib.sha256(key.encode()).hexdigest()}#{version_id}"


class DynamoDBLearningIndex:
    def __init__(
        self, table_name: str, retention_days: int, dynamodb_client: Any = None, *, max_workers: int = 8
    ) -> None:
        self.table = table_name
        self._retention_s = (retention_days + 1) * 86400  # the catalogue's; token entries a day more
        self._ddb = dynamodb_client or client("dynamodb")
        self._workers = max_workers
        self.reads = 0  # Query requests made (the lookup's cost; the benchmark prints it)

    def _expires(self, extra_s: int = 0) -> str:
        return str(int(time.time()) + self._retention_s + extra_s)

    # --- writing ------------------------------------------------------------------------------
    def record(self, unit: str, tokens: Iterable[str]) -> int:
        """File ``unit`` under every token (idempotent puts); how many entries were written."""
        expires = self._expires(86400)
        requests = [
            {"PutRequest": {"Item": {"pk": {"S": "t#" + t}, "sk": {"S": unit}, "expires_at": {"N": expires}}}}
            for t in sorted(set(tokens))
        ]
        self._batch_write(requests)
        return len(requests)

    def catalogue(self, key: str, version_ids: Iterable[str], *, sweep: bool = False) -> None:
        """Mark versions of ``key`` as indexed (after their tokens are recorded: a crash in between
        only makes the next erasure index them again)."""
        expires = self._expires()
        self._batch_write(
            [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": CATALOGUE},
                            "sk": {"S": version_ref(key, vid)},
                            "sweep": {"BOOL": sweep},
                            "expires_at": {"N": expires},
                        }
                    }
                }
                for vid in sorted(set(version_ids))
            ]
        )

    def remember_erased(self, tokens: Iterable[str]) -> int:
        """Record a subject's erasure (before its sweep: a run that writes after it is caught by the next
        catch-up); kept as long as a token entry, longer than the learning data a run can write."""
        expires = self._expires(86400)
        requests = [
            {"PutRequest": {"Item": {"pk": {"S": ERASED}, "sk": {"S": t}, "expires_at": {"N": expires}}}}
            for t in sorted(set(tokens))
        ]
        self._batch_write(requests)
        return len(requests)

    # --- reading ------------------------------------------------------------------------------
    def erased(self) -> frozenset[str]:
        """The tokens of every subject whose erasure is still on record."""
        now = int(time.time())
        return frozenset(
            i["sk"]["S"] for i in self._query(ERASED) if int(i.get("expires_at", {}).get("N", "0")) > now
        )

    def catalogued(self) -> dict[str, bool]:
        """Every indexed version (``version_ref``) -> ``sweep``."""
        now = int(time.time())
        return {
            i["sk"]["S"]: bool(i.get("sweep", {}).get("BOOL"))
            for i in self._query(CATALOGUE)
            if int(i.get("expires_at", {}).get("N", "0")) > now  # past its TTL: index the version again
        }

    def units(self, tokens: Iterable[str]) -> set[str]:
        """Every unit filed under any of ``tokens``."""
        pks = sorted({"t#" + t for t in tokens})
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            answers = list(pool.map(self._query, pks))
        return {i["sk"]["S"] for items in answers for i in items}

    def _query(self, pk: str) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self._ddb.query(**request)
            self.reads += 1
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- erasure ------------------------------------------------------------------------------
    def forget(self, tokens: Iterable[str]) -> int:
        """Delete every entry of the subject's tokens (the index names them too); how many."""
        pks = sorted({"t#" + t for t in tokens})
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            answers = list(pool.map(self._query, pks))
        requests = [
            {"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for items in answers for i in items
        ]
        self._batch_write(requests)
        return len(requests)

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        batches = [requests[s : s + _BATCH] for s in range(0, len(requests), _BATCH)]
        if len(batches) <= 1:
            for batch in batches:
                self._write_batch(batch)
            return
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            list(pool.map(self._write_batch, batches))

    def _write_batch(self, batch: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self.table: batch}
        for attempt in range(_MAX_UNPROCESSED_ROUNDS):
            pending = self._ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(2.0, 0.05 * 2**attempt))
        raise LearningIndexError("DynamoDB left learning index writes unprocessed")
