"""The decisions table as erasure sees it: find a client's submissions, replace a record once.

Kept apart from DynamoDBDecisionStore, whose one write is the first decision: this module is the
only code that rewrites a decision record, and only into its pseudonymised form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import deserialise_item, serialise_item
from kyc.domain.erasure import LEASE_RECORD, pseudonymise_review_item

CLIENT_REFERENCE_INDEX = "ClientReferenceIndex"


class DynamoDBErasureStore:
    """A conditional put: the record exists and carries no ``erased_at`` yet (erasure happens once)."""

    def __init__(self, table_name: str, dynamodb_client: Any = None) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")

    def submissions_of(self, client_reference: str) -> list[str]:
        """Every submission recorded under a client reference (erased ones have left the index)."""
        paginator = self._ddb.get_paginator("query")
        sids: list[str] = []
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=CLIENT_REFERENCE_INDEX,
            KeyConditionExpression="client_reference = :r",
            ExpressionAttributeValues={":r": {"S": client_reference}},
            ProjectionExpression="submission_id",
        ):
            sids.extend(item["submission_id"]["S"] for item in page.get("Items", []))
        return sorted(set(sids))

    def replace_once(self, item: dict[str, Any]) -> bool:
        """Write the pseudonymised ``item``; False when the record is gone or already erased."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=serialise_item(item),
                ConditionExpression="attribute_exists(submission_id) AND attribute_not_exists(erased_at)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


class DynamoDBReviewErasure:
    """The API's tables as erasure sees them (issue 20): a case's review records and its screening.

    Verdicts and approvals are rewritten once into their pseudonymised form (no free text), the lease
    is deleted, and the screening item (owner, raw key, client reference) is deleted. Every step is
    safe to repeat: a rewritten record is found already erased, a deleted item is gone.
    """

    def __init__(
        self,
        reviews_table: str,
        screenings_table: str,
        idempotency_table: str = "",
        dynamodb_client: Any = None,
    ) -> None:
        self._reviews = reviews_table
        self._screenings = screenings_table
        self._idempotency = idempotency_table
        self._ddb = dynamodb_client or client("dynamodb")

    def screenings_of(self, client_reference: str) -> list[dict[str, Any]]:
        """Every API screening declared with this client reference (uploaded or not), oldest id first."""
        if not self._screenings:
            return []
        paginator = self._ddb.get_paginator("query")
        ids: set[str] = set()
        for page in paginator.paginate(
            TableName=self._screenings,
            IndexName=CLIENT_REFERENCE_INDEX,
            KeyConditionExpression="client_reference = :r",
            ExpressionAttributeValues={":r": {"S": client_reference}},
        ):
            ids.update(item["screening_id"]["S"] for item in page.get("Items", []))
        found = []
        for screening_id in sorted(ids):
            item = self._ddb.get_item(
                TableName=self._screenings, Key={"screening_id": {"S": screening_id}}, ConsistentRead=True
            ).get("Item")
            if item:  # the index is eventually consistent: an item deleted since is simply gone
                found.append(deserialise_item(item))
        return found

    def delete_idempotency_record(self, record_id: str | None) -> bool:
        """Delete the Powertools Idempotency record that would answer a retry of the declaration."""
        if not (self._idempotency and record_id):
            return False
        answer = self._ddb.delete_item(
            TableName=self._idempotency, Key={"id": {"S": record_id}}, ReturnValues="ALL_OLD"
        )
        return bool(answer.get("Attributes"))

    def erase_case(self, review_id: str, *, erased_at: datetime) -> dict[str, int]:
        """Pseudonymise every verdict and approval of the case, delete its lease; the counts."""
        counts = {"review_records_pseudonymised": 0, "review_records_already": 0, "review_leases_deleted": 0}
        if not self._reviews:
            return counts
        for item in self._case_items(review_id):
            key = {"review_id": {"S": review_id}, "record": {"S": str(item["record"])}}
            if item["record"] == LEASE_RECORD:
                self._ddb.delete_item(TableName=self._reviews, Key=key)
                counts["review_leases_deleted"] += 1
            elif "erased_at" in item:
                counts["review_records_already"] += 1
            else:
                self._ddb.put_item(
                    TableName=self._reviews,
                    Item=serialise_item(pseudonymise_review_item(item, erased_at=erased_at)),
                    ConditionExpression="attribute_exists(#r)",
                    ExpressionAttributeNames={"#r": "record"},
                )
                counts["review_records_pseudonymised"] += 1
        return counts

    def _case_items(self, review_id: str) -> list[dict[str, Any]]:
        paginator = self._ddb.get_paginator("query")
        items: list[dict[str, Any]] = []
        for page in paginator.paginate(
            TableName=self._reviews,
            KeyConditionExpression="review_id = :r",
            ExpressionAttributeValues={":r": {"S": review_id}},
            ConsistentRead=True,
        ):
            items.extend(deserialise_item(i) for i in page.get("Items", []))
        return items

    def delete_screening(self, screening_id: str | None, *, key: str | None) -> tuple[bool, bool]:
        """Delete the API screening that declared this upload, and the Idempotency record that would
        answer a retry of the declaration with its form; the screening only if it names the same key
        (a key someone else chose can share a stem). (screening deleted, idempotency record deleted)."""
        if not (self._screenings and screening_id and key):
            return False, False
        try:
            old = self._ddb.delete_item(
                TableName=self._screenings,
                Key={"screening_id": {"S": screening_id}},
                ConditionExpression="#k = :k",
                ExpressionAttributeNames={"#k": "key"},
                ExpressionAttributeValues={":k": {"S": key}},
                ReturnValues="ALL_OLD",
            ).get("Attributes", {})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False, False
            raise
        record = old.get("idempotency_record", {}).get("S")
        return True, self.delete_idempotency_record(record)
