"""Identity of a submission: derived from the object, so every retry and duplicate agrees."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass


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


def submission_id(bucket: str, key: str, version_id: str | None, etag: str | None = None) -> str:
    """A stable id for one upload: SHA-256 over bucket, key and version (or ETag without versioning).

    It doubles as the Step Functions execution name (<= 80 characters, no raw key, so keys with
    spaces, ``%`` or personal identifiers never appear in names or logs).
    """
    discriminator = version_id or (f"etag:{etag}" if etag else "")
    material = "\x00".join((bucket, key, discriminator)).encode("utf-8")
    return hashlib.sha256(material).hexdigest()


def pseudonymise_key(key: str) -> str:
    """A non-reversible stand-in for an object key in logs: keys may carry applicant identifiers."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
