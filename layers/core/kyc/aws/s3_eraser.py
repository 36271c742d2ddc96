"""Deletes every version of an object, and every delete marker, so no copy of the bytes survives.

On a versioned bucket a plain DeleteObject only adds a delete marker and the bytes stay as a
noncurrent version; erasure must name each version id. Deleting creates no Object Created event,
so an erasure never starts a screening.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kyc.aws.clients import client
from kyc.domain.erasure import DeletedVersions, ErasureError

_BATCH = 1000  # DeleteObjects takes at most 1000 keys per request


class ErasureIncompleteError(ErasureError):
    """S3 refused to delete some versions: the erasure must be retried, and is safe to retry."""


class S3VersionEraser:
    """Lists object versions under a prefix (or of one exact key) and deletes them all."""

    def __init__(self, s3_client: Any = None) -> None:
        self._s3 = s3_client or client("s3")

    def version_ids(self, bucket: str, key: str) -> list[str]:
        """Version ids of exactly ``key`` (not of keys that merely start with it); markers excluded."""
        return [v["VersionId"] for v in self._list(bucket, key, lambda k: k == key) if not v["marker"]]

    def erase_key(self, bucket: str, key: str) -> DeletedVersions:
        return self._erase(bucket, key, lambda k: k == key)

    def erase_prefix(self, bucket: str, prefix: str) -> DeletedVersions:
        return self._erase(bucket, prefix, lambda k: k.startswith(prefix))

    def _erase(self, bucket: str, prefix: str, keep: Callable[[str], bool]) -> DeletedVersions:
        found = list(self._list(bucket, prefix, keep))
        versions: dict[str, int] = {}
        markers: dict[str, int] = {}
        for entry in found:
            tally = markers if entry["marker"] else versions
            tally[entry["Key"]] = tally.get(entry["Key"], 0) + 1
        for start in range(0, len(found), _BATCH):
            batch = found[start : start + _BATCH]
            response = self._s3.delete_objects(
                Bucket=bucket,
                Delete={
                    "Objects": [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in batch],
                    "Quiet": True,
                },
            )
            errors = response.get("Errors") or []
            if errors:
                codes = sorted({e.get("Code", "?") for e in errors})
                raise ErasureIncompleteError(f"s3://{bucket}: {len(errors)} versions not deleted ({codes})")
        return DeletedVersions(bucket=bucket, versions=versions, delete_markers=markers)

    def _list(self, bucket: str, prefix: str, keep: Callable[[str], bool]) -> Iterator[dict[str, Any]]:
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                if keep(version["Key"]):
                    yield {"Key": version["Key"], "VersionId": version["VersionId"], "marker": False}
            for marker in page.get("DeleteMarkers", []):
                if keep(marker["Key"]):
                    yield {"Key": marker["Key"], "VersionId": marker["VersionId"], "marker": True}
