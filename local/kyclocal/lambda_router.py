"""Runs the real handler code when moto's Lambda is invoked (moto itself runs no code without Docker).

moto's Step Functions engine calls Lambda over HTTP on the moto server; the server's Lambda
backend lands here, in the same process, and we call ``functions/<name>/app.py`` as Lambda would:
the event as JSON, a context object, and an error payload (``errorType``) when the handler raises.
Everything a handler prints is captured per invocation and written to CloudWatch Logs in moto,
as Lambda does, so logs can be read back (lineage) the way they are in AWS.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

LogSink = Callable[[str, str, list[str]], None]


DEFAULT_TIMEOUT_S = 300.0  # when the function's configured timeout is not known (a direct invoke)


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that Powertools and our handlers read.

    ``get_remaining_time_in_millis`` counts down, as Lambda's does, from the function's configured
    ``Timeout`` (moto's Lambda, i.e. template.yaml or a later UpdateFunctionConfiguration) at the start
    of the invocation."""

    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = ""
    aws_request_id: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    function_version: str = "$LATEST"
    timeout_s: float = DEFAULT_TIMEOUT_S
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_s - time.monotonic()) * 1000))


class _InvocationStdout(io.TextIOBase):
    """sys.stdout replacement: a thread inside an invocation writes to that invocation's buffer.

    One instance per process; whatever stdout was in place before (a terminal, pytest's capture)
    stays the fallback for every other thread.
    """

    def __init__(self) -> None:
        self.fallback: Any = sys.stdout
        self._local = threading.local()

    def capture(self, buffer: list[str] | None) -> None:
        self._local.buffer = buffer

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            return self.fallback.write(text)
        buffer.append(text)
        return len(text)

    def flush(self) -> None:
        if getattr(self._local, "buffer", None) is None:
            self.fallback.flush()


_STDOUT = _InvocationStdout()


def _route_stdout() -> _InvocationStdout:
    """Put the router's stdout in place (again: test runners swap sys.stdout between tests) and point
    every Powertools log handler at it, whenever and under whatever service name it was created."""
    if sys.stdout is not _STDOUT:
        _STDOUT.fallback = sys.stdout
        sys.stdout = _STDOUT
    _fresh_observability()
    for logger in list(logging.Logger.manager.loggerDict.values()):
        for handler in getattr(logger, "handlers", ()):
            if _is_powertools(handler) and handler.stream is not _STDOUT:
                handler.stream = _STDOUT  # not setStream(): it flushes the old stream, which may be closed
    return _STDOUT


def _fresh_observability() -> None:
    """A Lambda environment builds Powertools' Logger and Metrics from its own variables. A copy of
    ``kyc.observability`` imported earlier in this process (by a test or a command) was built without
    them (service "service_undefined", no metrics namespace): drop it, so the handlers import one
    built under the stack's environment."""
    module = sys.modules.get("kyc.observability")
    if module is not None and module.logger.service != os.environ.get("POWERTOOLS_SERVICE_NAME"):
        del sys.modules["kyc.observability"]


def _is_powertools(handler: logging.Handler) -> bool:
    formatter = type(handler.formatter).__module__ if handler.formatter else ""
    return isinstance(handler, logging.StreamHandler) and formatter.startswith("aws_lambda_powertools")


class LambdaRouter:
    """Maps function names to handler files and serves moto's invoke calls with them."""

    def __init__(self, functions: dict[str, Path], log_sink: LogSink | None = None) -> None:
        self._paths = functions
        self._idle: dict[str, list[ModuleType]] = {}
        self._loaded: dict[str, int] = {}
        self._lock = threading.Lock()
        self._log_sink = log_sink
        self.invocations: list[tuple[str, float]] = []
        self.fault: Callable[[str, dict[str, Any]], None] | None = None  # tests inject crashes here
        self.clock: Any = None  # a kyclocal.stage_clock.StageClock: benchmarks read per-stage time here
        # Lambda ends an invocation at its timeout and the caller gets Sandbox.Timedout, whatever the
        # handler wrote before. Off by default (a loaded test machine is slower than Lambda); tests of
        # timing turn it on. In-process code cannot be stopped: the handler runs to its end, and an
        # invocation that outlasted its timeout is then answered as Lambda would have answered it.
        self.enforce_timeouts = False

    def install(self, deployed_names: dict[str, str] | None = None) -> None:
        """Patch moto's Docker-free Lambda backend; also route this process's stdout per invocation.

        ``deployed_names`` maps logical ids to the names the stack gave the functions; the router
        knows functions by logical id, so an invoke of a deployed name runs its logical id's handler.
        """
        from moto.awslambda_simple.models import LambdaSimpleBackend

        router = self
        by_deployed_name = {deployed: logical for logical, deployed in (deployed_names or {}).items()}
        _route_stdout()

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            function = backend.get_function(function_name, qualifier)
            name = by_deployed_name.get(function.function_name, function.function_name)
            payload, errored = router.invoke(name, body, timeout_s=float(function.timeout))
            if errored:
                response_headers["x-amz-function-error"] = "Unhandled"
            return payload

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]

    def module(self, name: str) -> ModuleType:
        """An idle execution environment of ``name``: its handler module, loaded fresh when none is idle.

        Lambda runs one invocation per environment at a time and gives concurrent invocations
        environments of their own, so module-level state (clients, batch processors, caches) is
        never shared between two running invocations. The router keeps that contract in-process.
        """
        with self._lock:
            idle = self._idle.setdefault(name, [])
            if idle:
                return idle.pop()
            self._loaded[name] = self._loaded.get(name, 0) + 1
            instance = self._loaded[name]
        path = self._paths[name]
        spec = importlib.util.spec_from_file_location(f"kyc_function_{path.parent.name}_{instance}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
        spec.loader.exec_module(module)
        return module

    def release(self, name: str, module: ModuleType) -> None:
        with self._lock:
            self._idle.setdefault(name, []).append(module)

    def invoke(self, name: str, body: Any, timeout_s: float | None = None) -> tuple[bytes, bool]:
        """Run the handler; return (payload, errored) exactly as Lambda's Invoke API would shape them.
        ``timeout_s``: the function's configured timeout (the context counts down from it)."""
        event = json.loads(body) if isinstance(body, str | bytes) and body else (body or {})
        request_id = str(uuid.uuid4())
        context = LocalLambdaContext(
            function_name=name,
            aws_request_id=request_id,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
            log_group_name=f"/aws/lambda/{name}",
            timeout_s=timeout_s or DEFAULT_TIMEOUT_S,
        )
        captured: list[str] = []
        stdout = _route_stdout()
        started = time.perf_counter()
        cpu_started = time.thread_time()
        stdout.capture(captured)
        try:
            if self.fault:
                self.fault(name, event)
            module = self.module(name)
            try:
                result = module.lambda_handler(event, context)
            finally:
                self.release(name, module)
            payload, errored = json.dumps(result).encode("utf-8"), False
            if self.enforce_timeouts and context.get_remaining_time_in_millis() <= 0:
                payload, errored = _timed_out(request_id, context.timeout_s), True
        except Exception as exc:
            captured.append(
                json.dumps(
                    {
                        "level": "ERROR",
                        "message": "handler raised",
                        "exception": traceback.format_exc(),
                        "function_name": name,
                    }
                )
                + "\n"
            )
            payload = json.dumps(
                {"errorType": type(exc).__name__, "errorMessage": str(exc), "requestId": request_id}
            ).encode("utf-8")
            errored = True
        finally:
            stdout.capture(None)
            self.invocations.append((name, time.perf_counter() - started))
            if self.clock is not None:
                sid = event.get("submission_id") or (event.get("submission") or {}).get("submission_id")
                self.clock.record(name, time.perf_counter() - started, time.thread_time() - cpu_started, sid)
        if self._log_sink:
            lines = [line for line in "".join(captured).splitlines() if line.strip()]
            self._log_sink(name, request_id, lines)
        return payload, errored


def _timed_out(request_id: str, timeout_s: float) -> bytes:
    """What Lambda answers for an invocation that reached its timeout (Step Functions: Sandbox.Timedout)."""
    message = f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
    return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message}).encode("utf-8")
