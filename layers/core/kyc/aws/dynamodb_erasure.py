"""The decisions table as erasure sees it: find a client's submissions, replace a record once.

Kept apart from DynamoDBDecisionStore, whose one write is the first decision: this module is the
only code that rewrites a decision record, and only into its pseudonymised form.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import serialise_item

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
