"""The reuse index in DynamoDB: write a submission's entries, look up earlier ones, erase them.

One table, string keys ``pk``/``sk`` (items in ``kyc.domain.reuse``): ``sha#<sha256>`` for the
bytes, ``b<band>#<16 bits>`` for each frame's perceptual-hash bands, ``sub#<sid>`` listing what a
submission wrote (``indexed_all`` once all are written). Lookups are strongly consistent Queries on
one partition each, bounded below by the window's start in the sort key; never a Scan. TTL
(``expires_at``) removes entries after the raw video's retention; since TTL deletes lazily, expired
items are filtered out of every read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import deserialise_item, serialise_item
from kyc.domain.reuse import FrameSignature, IndexedFrame, admission_key, exact_key, submission_key

_BATCH = 25  # BatchWriteItem's limit
_MAX_UNPROCESSED_ROUNDS = 8


class ReuseIndexError(RuntimeError):
    """DynamoDB kept part of a batch unprocessed after every retry: the stage fails and is retried."""


class DynamoDBReuseIndex:
    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any = None,
        *,
        max_workers: int = 8,
        bucket_limit: int = 1000,
    ) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")
        self._workers = max_workers
        self._bucket_limit = bucket_limit  # items read per band bucket at most (a hot bucket is cut)
        self.items_read = 0

    # --- writing ------------------------------------------------------------------------------

    def record(self, submission_id: str, entries: Sequence[dict[str, Any]], expires_at: int) -> None:
        """List the entries under the submission first (erasure finds them even if we crash next),
        then write them. Both steps are idempotent: the list is a set union, the keys fixed."""
        self._ddb.update_item(
            TableName=self._table,
            Key=serialise_item(submission_key(submission_id)),
            UpdateExpression="ADD entry_keys :k SET submission_id = :s, expires_at = :e",
            ExpressionAttributeValues={
                ":k": {"SS": sorted({_entry_ref(e) for e in entries})},
                ":s": {"S": submission_id},
                ":e": {"N": str(expires_at)},
            },
        )
        self._batch_write([{"PutRequest": {"Item": serialise_item(e)}} for e in entries])
        self._ddb.update_item(  # last: every entry is written (the reuse check then settles its admission)
            TableName=self._table,
            Key=serialise_item(submission_key(submission_id)),
            UpdateExpression="SET indexed_all = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    # --- reading ------------------------------------------------------------------------------

    def exact(self, sha256: str, since: str, now: int | None = None) -> list[dict[str, str]]:
        """Entries of every submission indexed with these bytes since ``since``."""
        items, _ = self._query(exact_key(sha256), since, now)
        return [{"submission_id": i["submission_id"], "indexed_at": i["at"]} for i in items]

    def frames(
        self, band_keys: Iterable[str], since: str, now: int | None = None
    ) -> tuple[list[IndexedFrame], bool]:
        """Every frame filed under any of ``band_keys`` since ``since``; True when a bucket was cut.

        ``items_read`` afterwards: how many items those Queries returned (the lookup's cost)."""
        keys = sorted(set(band_keys))
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            answers = list(pool.map(lambda k: self._query(k, since, now), keys))
        self.items_read = sum(len(items) for items, _ in answers)
        frames = [
            IndexedFrame(i["submission_id"], i["at"], FrameSignature.from_item(i))
            for items, _ in answers
            for i in items
            if "scene" in i  # entries of the older single-hash index carry "phash": never compared
        ]
        return frames, any(cut for _, cut in answers)

    def _query(self, pk: str, since: str, now: int | None) -> tuple[list[dict[str, Any]], bool]:
        now = int(time.time()) if now is None else now
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk >= :since",
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":since": {"S": since}, ":now": {"N": str(now)}},
            "ConsistentRead": True,  # a copy screened a moment ago is already visible
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self._ddb.query(**request)
            items.extend(deserialise_item(i) for i in page.get("Items", []))
            if len(items) >= self._bucket_limit:
                return items[: self._bucket_limit], True
            if "LastEvaluatedKey" not in page:
                return items, False
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- erasure ------------------------------------------------------------------------------

    def erase(self, submission_id: str) -> int:
        """Delete every entry the submission wrote, then its list; the number of entries deleted.

        Safe to repeat: a second call finds no list and deletes nothing.
        """
        # its admission record too (kyc.aws.dynamodb_admissions): keys only, but it names the upload
        self._ddb.delete_item(TableName=self._table, Key=serialise_item(admission_key(submission_id)))
        key = serialise_item(submission_key(submission_id))
        found = self._ddb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if not found:
            return 0
        refs = sorted(found.get("entry_keys", {}).get("SS", []))
        self._batch_write([{"DeleteRequest": {"Key": _entry_key(r)}} for r in refs])
        self._ddb.delete_item(TableName=self._table, Key=key)
        return len(refs)

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), _BATCH):
            pending = {self._table: requests[start : start + _BATCH]}
            for attempt in range(_MAX_UNPROCESSED_ROUNDS):
                pending = self._ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))
            else:
                raise ReuseIndexError("DynamoDB left reuse index writes unprocessed")


def _entry_ref(entry: dict[str, Any]) -> str:
    return f"{entry['pk']}\n{entry['sk']}"


def _entry_key(ref: str) -> dict[str, Any]:
    pk, sk = ref.split("\n", 1)
    return {"pk": {"S": pk}, "sk": {"S": sk}}
