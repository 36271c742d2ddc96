"""The shadow pointer's SSM read is bounded: a hanging SSM cannot hold the score function (issue 21)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kyc.aws.shadow_traffic import (
    SHADOW_POINTER_CONNECT_TIMEOUT_S,
    SHADOW_POINTER_READ_TIMEOUT_S,
    ShadowPointerSource,
)


@contextmanager
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts connections, reads nothing, answers nothing: SSM as seen during a network partition."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", held
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def test_a_hanging_ssm_costs_the_shadow_one_bounded_read(monkeypatch: pytest.MonkeyPatch) -> None:
    with silent_server() as (url, held):
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
