"""The shadow pointer's SSM read is bounded: a hanging SSM cannot hold the score function (issue 21)."""

from __future__ import annotations

import time

import pytest

from kyc.aws.shadow_traffic import (
    SHADOW_POINTER_CONNECT_TIMEOUT_S,
    SHADOW_POINTER_READ_TIMEOUT_S,
    ShadowPointerSource,
)
from tests.fixtures.hostile import loopback_listener


def test_a_hanging_ssm_costs_the_shadow_one_bounded_read(monkeypatch: pytest.MonkeyPatch) -> None:
    with loopback_listener(silent=True) as (url, held):
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        source = ShadowPointerSource("/kyc/stack/shadow-policy", 60)
        started = time.monotonic()
        with pytest.raises(Exception, match=r"(?i)timeout|timed out"):
            source.current()
        elapsed = time.monotonic() - started
    # the default client (30 s read, 5 attempts) was still waiting after 45 s; the bound is one 3 s read
    assert (
        SHADOW_POINTER_READ_TIMEOUT_S - 0.2
        <= elapsed
        <= (SHADOW_POINTER_CONNECT_TIMEOUT_S + SHADOW_POINTER_READ_TIMEOUT_S + 0.5)
    )
    assert len(held) == 1  # one attempt: no retry of botocore's
