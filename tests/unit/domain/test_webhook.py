"""Webhook signing (kyc.domain.webhook) against the recipes docs/review.md gives receivers.

The oracles are independent of the code under test: the documented OpenSSL one-liner run by the
shell over the exact bytes, and the documented Python snippet executed from the doc itself; a
hand-computed vector pins the scheme (timestamp, a dot, the raw body).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import time

import pytest

from kyc.domain.webhook import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookError,
    check_url,
    sign_event,
    signature,
    verify,
)
from tests.fixtures.webhook_recipe import documented_recipe, documented_verifier

SECRET = "k7Qm2ZxN4pV9rT1sW8yB3dF6hJ0lA5cE"  # a test key, made up here
EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Screening Decision",
    "source": "kyc.screening",
    "account": "123456789012",
    "time": "2026-12-06T12:00:00Z",
    "region": "eu-west-1",
    "resources": [],
    "detail": {
        "submission_id": "a" * 64,
        "decision": "REVIEW",
        "client_reference": "ACME-é-42",
        "reasons": ["MODEL_UNCERTAIN"],
    },
}


def test_signature_is_hmac_sha256_over_timestamp_dot_body_by_hand():
    # computed once with `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`
    vector = "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
    assert signature(b"secret", 1700000000, b'{"a":1}') == vector
    assert signature(b"secret", 1700000001, b'{"a":1}') != vector  # the timestamp is signed


def test_signed_request_carries_the_event_and_the_timestamp_in_header_and_signature():
    signed = sign_event(EVENT, secret=SECRET.encode(), timestamp=1765022400)
    body = json.loads(signed.body)
    assert body == {
        "id": EVENT["id"],
        "type": "Screening Decided",
        "time": EVENT["time"],
        "detail": EVENT["detail"],
    }
    assert "account" not in body and "region" not in body
    assert signed.headers[TIMESTAMP_HEADER] == "1765022400"
    assert signed.headers[EVENT_ID_HEADER] == EVENT["id"]
    mac = hmac.new(SECRET.encode(), b"1765022400." + signed.body, hashlib.sha256).hexdigest()
    assert signed.headers[SIGNATURE_HEADER] == "v1=" + mac


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is the oracle")
def test_documented_openssl_one_liner_reproduces_the_signature(tmp_path):
    signed = sign_event(EVENT, secret=SECRET.encode(), timestamp=int(time.time()))
    (tmp_path / "body.json").write_bytes(signed.body)
    out = subprocess.run(
        ["bash", "-c", documented_recipe("bash")],
        cwd=tmp_path,
        env={"SECRET": SECRET, "TS": signed.headers[TIMESTAMP_HEADER], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == signed.headers[SIGNATURE_HEADER].removeprefix("v1=")
    # and it is not a constant: another body, another digest
    (tmp_path / "body.json").write_bytes(signed.body.replace(b"REVIEW", b"PASS"))
    other = subprocess.run(
        ["bash", "-c", documented_recipe("bash")], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"SECRET": SECRET, "TS": signed.headers[TIMESTAMP_HEADER], "PATH": "/usr/bin:/bin"},
    ).stdout.strip()  # fmt: skip
    assert other != out


def test_documented_python_snippet_accepts_the_signed_request_and_refuses_tampering_and_replay():
    check = documented_verifier()
    now = int(time.time())
    signed = sign_event(EVENT, secret=SECRET.encode(), timestamp=now)
    headers = dict(signed.headers)
    assert check(SECRET, headers, signed.body)
    assert not check("another-secret", headers, signed.body)
    assert not check(SECRET, headers, signed.body.replace(b"REVIEW", b"PASS"))  # body changed
    assert not check(SECRET, headers | {TIMESTAMP_HEADER: str(now + 1)}, signed.body)  # timestamp changed
    old = sign_event(EVENT, secret=SECRET.encode(), timestamp=now - 3600)
    assert not check(SECRET, dict(old.headers), old.body)  # a valid signature, replayed an hour later
    # the library's own verify agrees with the documented snippet on all of these
    assert verify(SECRET.encode(), body=signed.body, timestamp_header=headers[TIMESTAMP_HEADER],
                  signature_header=headers[SIGNATURE_HEADER], now=now)  # fmt: skip
    assert not verify(SECRET.encode(), body=old.body, timestamp_header=old.headers[TIMESTAMP_HEADER],
                      signature_header=old.headers[SIGNATURE_HEADER], now=now)  # fmt: skip


def test_only_decision_and_review_events_are_sent():
    with pytest.raises(WebhookError):
        sign_event(EVENT | {"detail-type": "Object Created"}, secret=b"k", timestamp=1)
    with pytest.raises(WebhookError):
        sign_event({k: v for k, v in EVENT.items() if k != "id"}, secret=b"k", timestamp=1)
    with pytest.raises(WebhookError):
        signature(b"", 1, b"{}")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.example.com/kyc", True),
        ("http://127.0.0.1:8080/hook", True),  # local runs only
        ("http://hooks.example.com/kyc", False),
        ("https://user:pw@hooks.example.com/kyc", False),
        ("ftp://hooks.example.com/", False),
        ("https:///nohost", False),
    ],
)
def test_webhook_url_must_be_https_without_credentials(url, ok):
    if ok:
        assert check_url(url) == url
    else:
        with pytest.raises(WebhookError):
            check_url(url)
