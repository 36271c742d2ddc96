"""The webhook's I/O (issue 20): the signing secret from Secrets Manager, and one HTTPS POST.

The secret is read through Powertools Parameters with a 5-minute cache, so a rotated value is in
use within 5 minutes and a batch costs one ``GetSecretValue`` at most. The POST follows no
redirect (a 3xx is a failed attempt: the signature names one URL), and anything but 2xx within
the timeout raises, so the message goes back to the queue for another attempt.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping

from aws_lambda_powertools.utilities import parameters

SECRET_MAX_AGE_S = 300


class WebhookDeliveryError(Exception):
    """The receiver did not accept the event (status, redirect, network error or timeout)."""


def signing_secret(secret_id: str) -> bytes:
    value = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE_S)
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float) -> int:
    """POST ``body`` as is; the 2xx status, or WebhookDeliveryError."""
    if not url.startswith(("https://", "http://")):
        raise WebhookDeliveryError("the webhook URL is not http(s)")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - checked above
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise WebhookDeliveryError(f"the receiver answered {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise WebhookDeliveryError(f"no answer from the receiver: {type(exc).__name__}") from exc
    if not 200 <= status < 300:
        raise WebhookDeliveryError(f"the receiver answered {status}")
    return status
