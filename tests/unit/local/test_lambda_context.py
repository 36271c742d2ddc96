"""The local Lambda (kyclocal.lambda_router): its context counts down from the function's configured
timeout as Lambda's does, and with ``enforce_timeouts`` an invocation that outlasts it is answered
Sandbox.Timedout, whatever the handler returned. Oracles: the timeouts set here and a monotonic clock."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kyclocal.lambda_router import LambdaRouter

HANDLER = """
import time


def lambda_handler(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(event.get("sleep", 0))
    return {"first": first, "last": context.get_remaining_time_in_millis()}
"""


def _router(tmp_path: Path) -> LambdaRouter:
    app = tmp_path / "fn" / "app.py"
    app.parent.mkdir()
    app.write_text(HANDLER)
    return LambdaRouter({"Fn": app})


def test_the_context_counts_down_from_the_configured_timeout(tmp_path: Path) -> None:
    router = _router(tmp_path)
    payload, errored = router.invoke("Fn", json.dumps({"sleep": 0.3}), timeout_s=20)
    result = json.loads(payload)
    assert not errored
    assert 19_000 < result["first"] <= 20_000
    assert result["first"] - result["last"] >= 300  # it slept 0.3 s
    default, _ = router.invoke("Fn", json.dumps({}))  # no timeout known (a direct invoke): 300 s
    assert 299_000 < json.loads(default)["first"] <= 300_000


def test_an_invocation_past_its_timeout_is_answered_as_lambda_answers_it(tmp_path: Path) -> None:
    router = _router(tmp_path)
    started = time.monotonic()
    payload, errored = router.invoke("Fn", json.dumps({"sleep": 1.2}), timeout_s=1)
    assert not errored and json.loads(payload)["last"] == 0  # not enforced: the handler's answer
    router.enforce_timeouts = True
    payload, errored = router.invoke("Fn", json.dumps({"sleep": 1.2}), timeout_s=1)
    answer = json.loads(payload)
    assert errored and answer["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in answer["errorMessage"]
    payload, errored = router.invoke("Fn", json.dumps({"sleep": 0.1}), timeout_s=1)
    assert not errored and "first" in json.loads(payload)  # within its timeout: the handler's answer
    assert time.monotonic() - started < 10
