"""The optional webhook (issue 20): what is POSTed to the customer's URL and how it is signed.

No AWS here (the secret comes in as bytes, the clock as an argument). The scheme (docs/review.md,
"Webhook"): the body is the event as canonical JSON; the signature is HMAC-SHA256, keyed with the
stack's webhook secret, over ``<timestamp>.<body>`` where ``<timestamp>`` is Unix seconds, sent as
``X-Kyc-Timestamp`` and inside the signed string, so a captured request cannot be replayed later
with a new timestamp. ``X-Kyc-Signature: v1=<hex>`` names the scheme's version, so a second secret
or algorithm can be added beside it during a rotation. The receiver recomputes the HMAC over the
raw bytes it received (never over re-serialised JSON), compares in constant time, and refuses a
timestamp outside its tolerance (``verify`` is that recipe, for receivers written in Python).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kyc.domain.digest import canonical_bytes

SIGNATURE_VERSION = "v1"
TIMESTAMP_HEADER = "X-Kyc-Timestamp"
SIGNATURE_HEADER = "X-Kyc-Signature"
EVENT_ID_HEADER = "X-Kyc-Event-Id"
EVENT_TYPE_HEADER = "X-Kyc-Event-Type"
DEFAULT_TOLERANCE_S = 300
# The decision bus's detail types the webhook forwards, and the type each is sent to the customer as
# (docs/review.md, "Webhook"): the bus's ``Screening Decision`` (DecisionEventsPipe) is ``Screening
# Decided`` for receivers, beside ``Screening Reviewed`` (the API).
DETAIL_TYPES: tuple[str, ...] = ("Screening Decision", "Screening Reviewed")
SENT_TYPES: dict[str, str] = {
    "Screening Decision": "Screening Decided",
    "Screening Reviewed": "Screening Reviewed",
}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class WebhookError(ValueError):
    """An event or URL the webhook cannot send."""


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: Mapping[str, str]


def webhook_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """What the customer receives of an EventBridge event: its id (for de-duplication: a retry sends
    the same id), type, time and detail; nothing of the bus, account or region."""
    detail_type = event.get("detail-type")
    if detail_type not in DETAIL_TYPES:
        raise WebhookError(f"not a webhook event: {detail_type!r}")
    detail = event.get("detail")
    if not isinstance(detail, Mapping) or not event.get("id"):
        raise WebhookError("an event without an id or a detail object")
    return {
        "id": str(event["id"]),
        "type": SENT_TYPES[detail_type],
        "time": event.get("time"),
        "detail": dict(detail),
    }


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``<timestamp>.<body>`` (the timestamp as decimal ASCII)."""
    if not secret:
        raise WebhookError("an empty signing secret")
    return hmac.new(secret, str(int(timestamp)).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def sign_event(event: Mapping[str, Any], *, secret: bytes, timestamp: int) -> SignedRequest:
    """The request for one event: the exact body bytes and the headers that sign them."""
    payload = webhook_payload(event)
    body = canonical_bytes(payload)
    return SignedRequest(
        body=body,
        headers={
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(int(timestamp)),
            SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={signature(secret, timestamp, body)}",
            EVENT_ID_HEADER: payload["id"],
            EVENT_TYPE_HEADER: payload["type"],
        },
    )


def verify(
    secret: bytes,
    *,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """The receiver's check: a fresh timestamp and a ``v1`` signature over the raw body that matches."""
    if not timestamp_header or not signature_header or not timestamp_header.isdigit():
        return False
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    offered = [
        part.split("=", 1)[1]
        for part in signature_header.split(",")
        if part.strip().startswith(f"{SIGNATURE_VERSION}=")
    ]
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in offered)


def check_url(url: str) -> str:
    """The customer's URL: https (plain http only to loopback, for local runs), no credentials in it."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookError("the webhook URL must be https://host/...")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise WebhookError("the webhook URL must use https")
    if parts.username or parts.password:
        raise WebhookError("the webhook URL must not carry credentials (the signature authenticates)")
    return url
