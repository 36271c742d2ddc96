"""Screenings declared through the API (``ScreeningsTable``), and the upload each one became.

A screening is created before its upload exists, so its id is the object id of the generated key
(the submission id, a hash over bucket, key and S3 version, is only known once S3 has the bytes).
The item binds the screening to the IAM principal that declared it: reads by anyone else answer
"not found". The submission is found from the bucket's own version list (the first version of the
key is the one the form's upload created; a form reused within its lifetime makes later versions,
each its own screening in the pipeline, docs/upload-edge.md).
"""

from __future__ import annotations

from typing import Any

from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import deserialise_item, serialise_item
from kyc.domain.identity import MacFunction, submission_id


class ScreeningRegistry:
    def __init__(
        self, table_name: str, *, mac: MacFunction, dynamodb_client: Any = None, s3_client: Any = None
    ) -> None:
        """``mac``: the pseudonym key's MAC (KMS GenerateMac), since submission ids are keyed (issue 23)."""
        self._table = table_name
        self._mac = mac
        self._ddb = dynamodb_client or client("dynamodb")
        self._s3 = s3_client or client("s3")

    def put(self, item: dict[str, Any]) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item=serialise_item(item),
            ConditionExpression="attribute_not_exists(screening_id)",
        )

    def get(self, screening_id: str) -> dict[str, Any] | None:
        found = self._ddb.get_item(
            TableName=self._table, Key={"screening_id": {"S": screening_id}}, ConsistentRead=True
        ).get("Item")
        return deserialise_item(found) if found else None

    def submission_of(self, screening: dict[str, Any]) -> str | None:
        """The submission id of the screening's upload, or None while nothing has been uploaded."""
        bucket, key = screening["bucket"], screening["key"]
        listed = self._s3.list_object_versions(Bucket=bucket, Prefix=key, MaxKeys=50)
        versions = [v for v in listed.get("Versions", []) if v.get("Key") == key]
        if not versions:
            return None
        first = min(versions, key=lambda v: v["LastModified"])
        version = first.get("VersionId")
        etag = str(first.get("ETag", "")).strip('"') or None
        return submission_id(bucket, key, None if version in (None, "null") else version, etag, mac=self._mac)
