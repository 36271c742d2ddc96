"""The decisions table: one item per submission, written once."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from kyc.aws.clients import client


class DynamoDBDecisionStore:
    """A conditional put keeps the first terminal decision; later writers read it instead."""

    def __init__(self, table_name: str, dynamodb_client: Any = None) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")

    def put_once(self, item: dict[str, Any]) -> bool:
        """Write ``item`` unless a decision exists for its submission; False when one did."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=serialise_item(item),
                ConditionExpression="attribute_not_exists(submission_id)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, submission_id: str) -> dict[str, Any] | None:
        response = self._ddb.get_item(
            TableName=self._table, Key={"submission_id": {"S": submission_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return deserialise_item(item) if item else None


def serialise_item(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    clean = json.loads(json.dumps(item), parse_float=Decimal)  # floats become Decimal, tuples lists
    return {k: serializer.serialize(v) for k, v in clean.items() if v is not None}


def deserialise_item(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    plain = {k: deserializer.deserialize(v) for k, v in item.items()}
    return json.loads(json.dumps(plain, default=_decimal))


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(type(value).__name__)
