"""S3 reads and writes: uploads streamed to /tmp with their hash, artefacts written under the stack's key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kyc.aws.clients import client
from kyc.aws.errors import ObjectTooLargeError, SourceMissingError
from kyc.domain.lineage import canonical_json  # one byte form, kept in the domain; re-exported

_CHUNK = 1024 * 1024
# Every write carries its SHA-256 for S3 to check: a bucket under Object Lock (the audit bucket)
# refuses a PutObject without an integrity checksum, whichever SDK version the Lambda runtime has.
_CHECKSUM = {"ChecksumAlgorithm": "SHA256"}


@dataclass(frozen=True)
class DownloadedObject:
    path: Path
    sha256: str
    size: int
    etag: str | None
    version_id: str | None


@dataclass(frozen=True)
class ObjectHead:
    size: int
    etag: str | None
    version_id: str | None
    metadata: dict[str, str]


class S3ObjectStore:
    """Every write is SSE-KMS with the stack's key; every read of an upload pins its version."""

    def __init__(self, kms_key_id: str = "", s3_client: Any = None) -> None:
        self._s3 = s3_client or client("s3")
        self._kms_key_id = kms_key_id
        self._signer: Any = None

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectHead:
        kwargs = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
        try:
            response = self._s3.head_object(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchVersion", "403"):
                raise SourceMissingError(f"s3://{bucket} object not found") from exc
            raise
        return ObjectHead(
            size=int(response.get("ContentLength", 0)),
            etag=(response.get("ETag") or "").strip('"') or None,
            version_id=response.get("VersionId"),
            metadata={k.lower(): v for k, v in (response.get("Metadata") or {}).items()},
        )

    def download(
        self, bucket: str, key: str, version_id: str | None, dest: Path, *, max_bytes: int
    ) -> DownloadedObject:
        """Stream the object to ``dest``, hashing the bytes as they arrive; stop past ``max_bytes``."""
        kwargs = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
        try:
            response = self._s3.get_object(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404", "403"):
                raise SourceMissingError(f"s3://{bucket} object not found") from exc
            raise
        if int(response.get("ContentLength", 0)) > max_bytes:
            response["Body"].close()
            raise ObjectTooLargeError(f"object is larger than {max_bytes} bytes")
        digest = hashlib.sha256()
        size = 0
        with dest.open("wb") as out:
            for chunk in response["Body"].iter_chunks(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ObjectTooLargeError(f"object is larger than {max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
        return DownloadedObject(
            path=dest,
            sha256=digest.hexdigest(),
            size=size,
            etag=(response.get("ETag") or "").strip('"') or None,
            version_id=response.get("VersionId"),
        )

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str) -> str:
        """Write ``data`` and return its SHA-256 (the lineage refers to artefacts by content hash)."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": data, "ContentType": content_type}
        kwargs |= _CHECKSUM
        if self._kms_key_id:
            kwargs |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}
        self._s3.put_object(**kwargs)
        return hashlib.sha256(data).hexdigest()

    def put_new(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        """Write ``data`` only where no object exists (a conditional PUT, ``If-None-Match: *``).

        False when one does: evidence once written is never replaced, not even by a racing writer.
        """
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
            "IfNoneMatch": "*",
        } | _CHECKSUM
        if self._kms_key_id:
            kwargs |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}
        try:
            self._s3.put_object(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise
        return True

    def put_json(self, bucket: str, key: str, document: Any) -> str:
        return self.put_bytes(bucket, key, canonical_json(document), "application/json")

    def get_bytes(self, bucket: str, key: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise SourceMissingError(f"s3://{bucket}/{key} not found") from exc
            raise

    def get_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.get_bytes(bucket, key))

    def presign_get(self, bucket: str, key: str, seconds: int) -> str:
        """A short-lived GET link, signed with SigV4 (objects under SSE-KMS refuse SigV2 links)."""
        if self._signer is None:
            self._signer = boto3.session.Session().client("s3", config=Config(signature_version="s3v4"))
        return self._signer.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
        )
