"""Identity of a submission: derived from the object, so every retry and duplicate agrees."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Protocol


@dataclass(frozen=True)
class SourceObject:
    """The uploaded object as S3 names it. ``version_id`` pins the exact bytes screened."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


SUBMISSION_ID_SCHEME = b"kycscreen-submission/2"


def submission_id(
    bucket: str, key: str, version_id: str | None, etag: str | None = None, *, mac: MacFunction
) -> str:
    """A stable id for one upload: HMAC-SHA256 under the pseudonym key (KMS GenerateMac) over
    bucket, key and version (or ETag without versioning), as 64 hex characters.

    Keyed (issue 23): bucket, key and version id are stored beside the id (the record's source, the
    execution input), so an unkeyed hash would let anyone holding a record confirm a guessed object
    key (an e-mail, a document number) offline, even after erasure. Under a KMS key that only the
    stack's roles may use, a guess can be checked only by calling KMS, which CloudTrail records.
    It doubles as the Step Functions execution name (<= 80 characters, no raw key). Ids written
    before this scheme (unkeyed SHA-256) stay valid as stored: docs/erasure.md (migration).
    """
    discriminator = version_id or (f"etag:{etag}" if etag else "")
    material = b"\x00".join(
        (SUBMISSION_ID_SCHEME, bucket.encode("utf-8"), key.encode("utf-8"), discriminator.encode("utf-8"))
    )
    return mac(material).hex()


class MacFunction(Protocol):
    """A keyed MAC whose key the caller never holds: KMS ``GenerateMac`` in AWS (``kyc.aws.kms_mac``).

    ``label`` names the key (an auditor reads it in every pseudonym to find the key that made it).
    """

    @property
    def label(self) -> str: ...

    def __call__(self, message: bytes) -> bytes: ...


PSEUDONYM_SCHEME = "hmac"
# hmac:<key label>:<the whole HMAC-SHA256, 64 hex>: 256 bits, so distinct inputs never share one.
PSEUDONYM_PATTERN = re.compile(r"hmac:([a-z0-9]{1,16}):([0-9a-f]{64})")


def pseudonymise_key(value: str, mac: MacFunction) -> str:
    """A keyed stand-in for an object key or a client reference in logs, lineage and erasure records.

    An unkeyed hash of a reference can be reversed by hashing candidate references; an HMAC under a
    KMS key cannot be recomputed without calling KMS with that key, which only the stack's roles may.
    The same value under the same key always gives the same pseudonym, so records stay linkable.
    """
    if not value:
        raise ValueError("nothing to pseudonymise: the value is empty")
    return f"{PSEUDONYM_SCHEME}:{mac.label}:{mac(value.encode('utf-8')).hex()}"


def pseudonym_key_segment(pseudonym: str) -> str:
    """The same pseudonym as one S3 key segment (``hmac-<label>-<hex>``: no ``:`` in object keys)."""
    if not PSEUDONYM_PATTERN.fullmatch(pseudonym):
        raise ValueError("not a keyed pseudonym")
    return pseudonym.replace(":", "-")
