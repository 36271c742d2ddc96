"""Where the evidence digest and its verifiers call AWS: the decisions table, the audit bucket's
object versions, KMS Sign and Verify.

The domain (``kyc.domain.digest``) decides what a digest says; these adapters only list, read and
store. Every reader here lists *versions* (``ListObjectVersions``): a delete marker hides an object
from ``GetObject`` and ``ListObjectsV2``, never from this listing (issue 23).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import deserialise_item
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.domain.digest import (
    DIGEST_PREFIX,
    EVIDENCE_PREFIX,
    SIGNING_ALGORITHM,
    ObjectVersion,
    PreviousDigest,
    StoredDigest,
    period_time,
)


class DecisionItems:
    """Every decision item from a time on, by a filtered Scan: no index a writer could leave out
    (an unknown ``decision`` value, a missing ``decided_at`` or one typed as a number all show).
    A Scan reads the whole table (docs/digests.md: cost); the filter only trims what is returned."""

    def __init__(self, table_name: str, dynamodb_client: Any = None) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")

    def since(self, start: str | None) -> list[dict[str, Any]]:
        """Items not dated before ``start``: dated at or after it, undated, or dated by a non-string."""
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        if start is not None:
            kwargs |= {
                # only a string date before start is left out (the type test first: a number is kept)
                "FilterExpression": "NOT (attribute_type(decided_at, :string) AND decided_at < :s)",
                "ExpressionAttributeValues": {":s": {"S": start}, ":string": {"S": "S"}},
            }
        items: list[dict[str, Any]] = []
        for page in self._ddb.get_paginator("scan").paginate(**kwargs):
            items.extend(deserialise_item(raw) for raw in page.get("Items", []))
        return items

    def all(self) -> list[dict[str, Any]]:
        return self.since(None)

    def get(self, submission_id: str) -> dict[str, Any] | None:
        response = self._ddb.get_item(
            TableName=self._table, Key={"submission_id": {"S": submission_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return deserialise_item(item) if item else None


class AuditVersions:
    """Every version and delete marker under a prefix of the audit bucket, and the bytes of one version."""

    def __init__(self, bucket: str, s3_client: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3_client or client("s3")

    def list(self, prefix: str = EVIDENCE_PREFIX) -> list[ObjectVersion]:
        return list(self._iter(prefix))

    def _iter(self, prefix: str) -> Iterator[ObjectVersion]:
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                yield ObjectVersion(version["Key"], str(version["VersionId"]), _at(version["LastModified"]))
            for marker in page.get("DeleteMarkers", []):
                yield ObjectVersion(
                    marker["Key"], str(marker["VersionId"]), _at(marker["LastModified"]), delete_marker=True
                )

    def read(self, key: str, version_id: str) -> bytes | None:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchVersion", "404", "NoSuchKey"):
                return None
            raise

    def stored_digests(self) -> list[StoredDigest]:
        """Every digest key, read at its *first* version (the one the chain linked), with how many
        versions it has and whether a delete marker hides it."""
        versions: dict[str, list[ObjectVersion]] = {}
        hidden: set[str] = set()
        for version in self._iter(DIGEST_PREFIX):
            if version.delete_marker:
                hidden.add(version.key)
            else:
                versions.setdefault(version.key, []).append(version)
        out = []
        for key, found in sorted(versions.items()):
            first = min(found, key=lambda v: (v.at, v.version_id))
            data = self.read(key, first.version_id)
            if data is not None:
                out.append(StoredDigest(key=key, data=data, versions=len(found), hidden=key in hidden))
        return out


def _at(value: Any) -> str:
    return period_time(value) if isinstance(value, datetime) else str(value)


class KmsDigestSigner:
    """ECDSA P-256 over the message's SHA-256: the private key never leaves KMS. The hash is taken
    here and sent as ``MessageType=DIGEST``, the same signature KMS makes over a RAW message, for a
    digest of any size (KMS refuses a RAW message over 4096 bytes: about 20 listed entries)."""

    def __init__(self, key_id: str, kms_client: Any = None) -> None:
        self.key_id = key_id
        self._kms = kms_client or client("kms")

    def sign(self, message: bytes) -> bytes:
        response = self._kms.sign(
            KeyId=self.key_id,
            Message=hashlib.sha256(message).digest(),
            MessageType="DIGEST",
            SigningAlgorithm=SIGNING_ALGORITHM,
        )
        return bytes(response["Signature"])

    def public_key_der(self) -> bytes:
        """The SubjectPublicKeyInfo (DER) verifiers check signatures with, offline."""
        return bytes(self._kms.get_public_key(KeyId=self.key_id)["PublicKey"])


class KmsSignatureVerifier:
    """Checks a digest signature with KMS Verify: the scheduled verifier's way, since the Lambda
    runtime has no ``cryptography`` (docs/digests.md: why not a layer). The message goes as its
    SHA-256 (``MessageType=DIGEST``): the same ECDSA_SHA_256 check as over the raw bytes, for a
    digest of any size (RAW takes at most 4096 bytes). The caller may Verify, never Sign."""

    def __init__(self, key_id: str, kms_client: Any = None) -> None:
        self.key_id = key_id
        self._kms = kms_client or client("kms")

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            response = self._kms.verify(
                KeyId=self.key_id,
                Message=hashlib.sha256(message).digest(),
                MessageType="DIGEST",
                Signature=signature,
                SigningAlgorithm=SIGNING_ALGORITHM,
            )
        except self._kms.exceptions.KMSInvalidSignatureException:
            return False
        return bool(response.get("SignatureValid"))


class S3DigestStore:
    """Digests under ``digests/YYYY/MM/DD/`` in the audit bucket, each written once."""

    def __init__(self, bucket: str, kms_key_id: str = "", s3_client: Any = None) -> None:
        self._bucket = bucket
        self._s3 = s3_client or client("s3")
        self._store = S3ObjectStore(kms_key_id=kms_key_id, s3_client=self._s3)
        self._versions = AuditVersions(bucket, self._s3)

    def latest(self) -> PreviousDigest | None:
        """The newest digest by key, read from the version listing: a delete marker does not hide it,
        so hiding the chain's head cannot make the next run start a fresh chain. None before the first."""
        found = [v for v in self._versions.list(DIGEST_PREFIX) if not v.delete_marker]
        if not found:
            return None
        key = max(v.key for v in found)
        first = min((v for v in found if v.key == key), key=lambda v: (v.at, v.version_id))
        data = self._versions.read(key, first.version_id)
        if data is None:
            raise LookupError(f"s3://{self._bucket}/{key}: listed but unreadable")
        return PreviousDigest(key=key, data=data)

    def put_new(self, key: str, data: bytes) -> bool:
        """False when a digest already has this key (a concurrent or repeated writer lost)."""
        return self._store.put_new(self._bucket, key, data, "application/json")
