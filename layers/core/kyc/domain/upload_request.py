"""The upload contract: what a client may upload, and the presigned-POST policy that holds it to that.

A client application's backend asks for an upload slot by declaring the content type, the size and
optionally its own reference for the applicant. Nothing in the declaration is trusted later (the
validate stage sniffs the real bytes), but the declaration fixes what S3 will accept:

- the object key is generated here, ``<UploadPrefix><hmac-<label>-<hex> or 'anonymous'>/<uuid4>.<ext>``,
  the folder being the keyed pseudonym of the client reference (``kyc.domain.identity``): a user's
  filename never becomes (part of) a key, so path tricks, double extensions and personal data in
  filenames cannot reach the bucket (OWASP File Upload: "rename to a generated name"), and the
  reference itself never does either (S3 access logs keep every key for ``LogRetentionDays``, beyond
  any erasure); it travels as object metadata, which erasure deletes with the object;
- the POST policy pins the exact key, the size range, the declared Content-Type, SSE-KMS with the
  stack's key and the client-reference metadata; S3 refuses any form that deviates.

Pure: no boto3, no environment. The adapter (``kyc.aws.s3_presigner``) signs what this module plans;
the MAC behind the pseudonym is given by the caller (``kyc.aws.kms_mac`` in the function).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kyc.domain.identity import MacFunction, pseudonym_key_segment, pseudonymise_key

# Declared content type -> the extension of the generated key. Deliberately narrow: the containers the
# validate stage can open (docs/reason-codes.md); anything else would only end as INVALID later.
ALLOWED_CONTENT_TYPES: Mapping[str, str] = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
}

# A client reference becomes object metadata (and, pseudonymised, a key segment): letters, digits, '-'
# and '_' only (no '/', '.', spaces or percent signs, so it can smuggle no encodings into a header).
CLIENT_REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ANONYMOUS = "anonymous"

REQUEST_FIELDS = frozenset({"content_type", "size", "client_reference"})
MIN_EXPIRY_S = 60
MAX_EXPIRY_S = 3600
SSE_ALGORITHM = "aws:kms"


class UploadErrorCode(StrEnum):
    """Machine-readable refusal codes; API clients branch on these, never on the message."""

    INVALID_BODY = "INVALID_BODY"
    UNSUPPORTED_CONTENT_TYPE = "UNSUPPORTED_CONTENT_TYPE"
    INVALID_SIZE = "INVALID_SIZE"
    TOO_LARGE = "TOO_LARGE"
    INVALID_CLIENT_REFERENCE = "INVALID_CLIENT_REFERENCE"


class UploadRequestError(Exception):
    """The declaration is refused; ``code`` and the message are safe to return to the caller."""

    def __init__(self, code: UploadErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UploadPolicyError(Exception):
    """The deployment's upload settings are unusable: a configuration fault, not a client fault."""


@dataclass(frozen=True)
class UploadPolicy:
    """What the stack allows: the limits every declaration is checked against."""

    upload_prefix: str
    max_bytes: int
    kms_key_arn: str
    expires_in_s: int = 300

    def __post_init__(self) -> None:
        if not self.upload_prefix.endswith("/") or self.upload_prefix.startswith("/"):
            raise UploadPolicyError("upload prefix must be a relative key prefix ending with '/'")
        if self.max_bytes < 1:
            raise UploadPolicyError("max_bytes must be at least 1")
        if not self.kms_key_arn:
            raise UploadPolicyError("a KMS key is required: uploads are SSE-KMS with the stack key")
        if not MIN_EXPIRY_S <= self.expires_in_s <= MAX_EXPIRY_S:
            raise UploadPolicyError(f"expiry must be {MIN_EXPIRY_S}..{MAX_EXPIRY_S} seconds")


@dataclass(frozen=True)
class UploadRequest:
    """A validated declaration."""

    content_type: str
    size: int
    client_reference: str | None = None

    @classmethod
    def parse(cls, body: Any, policy: UploadPolicy) -> UploadRequest:
        """Check a decoded JSON body against the policy; every refusal names its rule."""
        if not isinstance(body, Mapping):
            raise UploadRequestError(UploadErrorCode.INVALID_BODY, "the body must be a JSON object")
        unknown = sorted(str(k) for k in body if k not in REQUEST_FIELDS)
        if unknown:
            raise UploadRequestError(UploadErrorCode.INVALID_BODY, f"unknown fields: {', '.join(unknown)}")
        return cls(
            content_type=_content_type(body.get("content_type")),
            size=_size(body.get("size"), policy.max_bytes),
            client_reference=_client_reference(body.get("client_reference")),
        )

    @property
    def extension(self) -> str:
        return ALLOWED_CONTENT_TYPES[self.content_type]


@dataclass(frozen=True)
class UploadTicket:
    """What the adapter signs: the generated key, the form fields and the policy conditions.

    ``conditions`` holds every condition except ``bucket`` and ``key``, which the signer adds itself
    (boto3 appends ``{"bucket": ...}`` and ``{"key": key}`` to every presigned POST policy).
    """

    key: str
    object_id: str
    fields: Mapping[str, str]
    conditions: tuple[Any, ...]
    expires_in_s: int


def _content_type(value: Any) -> str:
    if not isinstance(value, str) or value.strip().lower() not in ALLOWED_CONTENT_TYPES:
        allowed = ", ".join(sorted(ALLOWED_CONTENT_TYPES))
        raise UploadRequestError(
            UploadErrorCode.UNSUPPORTED_CONTENT_TYPE, f"content_type must be one of: {allowed}"
        )
    return value.strip().lower()


def _size(value: Any, max_bytes: int) -> int:
    # bool is an int in Python; JSON true must not read as a one-byte upload.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UploadRequestError(UploadErrorCode.INVALID_SIZE, "size must be a positive integer (bytes)")
    if value > max_bytes:
        raise UploadRequestError(UploadErrorCode.TOO_LARGE, f"size must be at most {max_bytes} bytes")
    return value


def _client_reference(value: Any) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not CLIENT_REFERENCE_PATTERN.fullmatch(value)
        or value.lower() == ANONYMOUS  # keeps the anonymous folder unambiguous
    ):
        raise UploadRequestError(
            UploadErrorCode.INVALID_CLIENT_REFERENCE,
            "client_reference must be 1-64 letters, digits, '-' or '_', starting with a letter or digit",
        )
    return value


def plan_upload(
    request: UploadRequest,
    policy: UploadPolicy,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    *,
    mac: MacFunction,
) -> UploadTicket:
    """Generate the key and the exact POST policy for one declared upload.

    The key's folder is the keyed pseudonym of the client reference (the same one erasure records
    keep as ``client_reference_pseudonym``), so one applicant's uploads group together without the
    reference appearing in any key (S3 access logs and CloudTrail data events record keys);
    ``mac`` is only called when a reference is declared.

    The size range tops out at the *declared* size (never above ``policy.max_bytes``): a body larger
    than declared is refused by S3 itself, before the pipeline spends anything on it.
    """
    object_id = new_id().hex
    folder = (
        pseudonym_key_segment(pseudonymise_key(request.client_reference, mac))
        if request.client_reference
        else ANONYMOUS
    )
    key = f"{policy.upload_prefix}{folder}/{object_id}.{request.extension}"
    fields: dict[str, str] = {
        "Content-Type": request.content_type,
        "x-amz-server-side-encryption": SSE_ALGORITHM,
        "x-amz-server-side-encryption-aws-kms-key-id": policy.kms_key_arn,
    }
    if request.client_reference:
        fields["x-amz-meta-client-reference"] = request.client_reference
    conditions: list[Any] = [["content-length-range", 1, request.size]]
    conditions += [{name: value} for name, value in fields.items()]
    return UploadTicket(
        key=key,
        object_id=object_id,
        fields=fields,
        conditions=tuple(conditions),
        expires_in_s=policy.expires_in_s,
    )
