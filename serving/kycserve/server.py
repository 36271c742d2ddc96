"""A SageMaker-compatible model server on the standard library.

Two faces on one port:
- the container contract SageMaker calls inside an endpoint: ``GET /ping``, ``POST /invocations``;
- the SageMaker runtime REST API boto3 calls (``POST /endpoints/{name}/invocations``), so the score
  Lambda runs unchanged against it locally via ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``. On that
  route a container error is wrapped as the service does it: HTTP 424 ModelError with
  ``OriginalStatusCode``.

Beside them, Amazon Rekognition's ``DetectFaces`` (``POST /`` with ``X-Amz-Target``), for the face
stage via ``AWS_ENDPOINT_URL_REKOGNITION`` (kycserve.rekognition).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kyc.domain.contract import (
    CONTENT_TYPE,
    CONTRACT_VERSION,
    CUSTOM_ATTRIBUTES,
    MAX_REQUEST_BYTES,
    ContractError,
    decode_request,
    encode_response,
)
from kycserve.faults import SERVICE_FAULTS, Fault, FaultInjector
from kycserve.models import Model
from kycserve.rekognition import CONTENT_TYPE as REKOGNITION_CONTENT_TYPE
from kycserve.rekognition import MAX_BODY_BYTES as REKOGNITION_MAX_BODY_BYTES
from kycserve.rekognition import TARGET_PREFIX as REKOGNITION_TARGET_PREFIX
from kycserve.rekognition import LocalFaceDetector, ServiceError, error_body
from kycserve.rekognition import handle as rekognition_reply

logger = logging.getLogger("kycserve")

_RUNTIME_ROUTE = re.compile(r"^/endpoints/([A-Za-z0-9-]{1,63})/invocations$")
_SERVICE_ERRORS = {
    Fault.THROTTLE: (400, "ThrottlingException", "Rate exceeded"),
    Fault.SERVICE_UNAVAILABLE: (503, "ServiceUnavailable", "The service is unavailable"),
    Fault.INTERNAL_FAILURE: (500, "InternalFailure", "An internal failure occurred"),
    Fault.MODEL_NOT_READY: (429, "ModelNotReadyException", "Model is not ready"),
}


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = CONTENT_TYPE


def _error(status: int, message: str) -> _Reply:
    return _Reply(status, json.dumps({"error": message}).encode())


class ModelServer(ThreadingHTTPServer):
    """Holds the model (None while loading: /ping answers 503) and the fault plan."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        model: Model | None,
        *,
        faults: FaultInjector | None = None,
        variant: str = "AllTraffic",
    ) -> None:
        super().__init__(address, _Handler)
        self.model = model
        self.faults = faults or FaultInjector()
        # faults of one endpoint name only (e.g. a shadowed candidate that hangs beside a healthy champion)
        self.endpoint_faults: dict[str, FaultInjector] = {}
        self.variant = variant
        # issue 21: endpoint name -> the model SageMaker says it serves (None: this server's own model);
        # raises LookupError for an endpoint that does not exist. Set by the local stack.
        self.endpoints: Callable[[str], Model | None] | None = None
        self.face_detector = LocalFaceDetector()
        # error codes the next DetectFaces calls answer with (e.g. "ThrottlingException"), for tests
        self.rekognition_faults: deque[str] = deque()
        # a kyclocal.stage_clock.StageClock: CPU per request, for benchmarks/stages.py; None: not timed
        self.clock: Any = None


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _send(self, reply: _Reply, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout test): nothing to tell it

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True  # body left unread
            return None
        return self.rfile.read(length)

    def do_GET(self) -> None:
        if self.path != "/ping":
            self._send(_error(404, "not found"))
            return
        model = self.server.model
        if model is None:
            self._send(_error(503, "model loading"))
            return
        body = {"status": "healthy", "contract_version": CONTRACT_VERSION, "model": model.describe()}
        self._send(_Reply(200, json.dumps(body).encode()))

    def do_POST(self) -> None:
        clock = self.server.clock
        if clock is None:
            self._post()
            return
        label = "local DetectFaces" if self.path == "/" else "local model endpoint"
        with clock.timed(label):  # where a local run's time goes (benchmarks/stages.py)
            self._post()

    def _post(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        if self.path == "/" and target.startswith(REKOGNITION_TARGET_PREFIX):
            self._rekognition_reply(target)
            return
        runtime = _RUNTIME_ROUTE.match(self.path)
        if self.path != "/invocations" and runtime is None:
            self._send(_error(404, "not found"))
            return
        body = self._read_body()
        injector = self.server.faults
        if runtime is not None:
            injector = self.server.endpoint_faults.get(runtime.group(1), injector)
        fault = injector.next()
        self._slow_seconds = injector.slow_seconds  # a SLOW fault sleeps as long as its own plan says
        if runtime is None:
            self._send(
                self._container_reply(body, fault), {"X-Amzn-SageMaker-Custom-Attributes": CUSTOM_ATTRIBUTES}
            )
            return
        self._runtime_reply(body, fault, runtime.group(1))

    def _rekognition_reply(self, target: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = None
        if length <= REKOGNITION_MAX_BODY_BYTES:
            body = self.rfile.read(length)
        else:
            self.close_connection = True  # body left unread
        faults = self.server.rekognition_faults
        code = faults.popleft() if faults else None
        if code is not None:
            status, reply = 400, error_body(ServiceError(code, "injected by the local server"))
        else:
            status, reply = rekognition_reply(target, body, self.server.face_detector)
        self._send(_Reply(status, reply, REKOGNITION_CONTENT_TYPE))

    def _runtime_reply(self, body: bytes | None, fault: Fault | None, endpoint: str) -> None:
        model = self.server.model
        if self.server.endpoints is not None:
            try:
                model = self.server.endpoints(endpoint) or model
            except LookupError as exc:  # as SageMaker answers an endpoint that does not exist
                self._send_service_error(400, "ValidationError", f"Endpoint {endpoint} not found: {exc}")
                return
        if body is None:
            self._send_service_error(
                400, "ValidationError", f"Request body exceeds {MAX_REQUEST_BYTES} bytes"
            )
            return
        if fault in SERVICE_FAULTS:
            status, code, message = _SERVICE_ERRORS[fault]  # type: ignore[index]
            self._send_service_error(status, code, message)
            return
        reply = self._container_reply(body, fault, model)
        if reply.status != 200:
            message = reply.body.decode("utf-8", "replace")
            payload = {
                "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if reply.status < 500 else "SERVER_ERROR_FROM_MODEL",
                "message": f"Received client error ({reply.status}) from model"
                if reply.status < 500
                else f"Received server error ({reply.status}) from model",
                "OriginalStatusCode": reply.status,
                "OriginalMessage": message,
            }
            self._send(_Reply(424, json.dumps(payload).encode()), {"x-amzn-ErrorType": "ModelError"})
            return
        self._send(
            reply,
            {
                "x-Amzn-Invoked-Production-Variant": self.server.variant,
                "X-Amzn-SageMaker-Custom-Attributes": CUSTOM_ATTRIBUTES,
            },
        )

    def _send_service_error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        self._send(_Reply(status, body, "application/x-amz-json-1.1"), {"x-amzn-ErrorType": code})

    def _container_reply(self, body: bytes | None, fault: Fault | None, model: Model | None = None) -> _Reply:
        """What the container answers: the model's scores, or a container-level error."""
        model = model or self.server.model
        if model is None:
            return _error(503, "model loading")
        if body is None:
            return _error(413, f"request exceeds {MAX_REQUEST_BYTES} bytes")
        attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes", "")
        if "contract=" in attributes and CUSTOM_ATTRIBUTES not in attributes.split(","):
            return _error(400, f"unsupported contract; this server speaks {CUSTOM_ATTRIBUTES}")
        if fault is Fault.CONTAINER_4XX:
            return _error(400, "injected client error")
        if fault is Fault.CONTAINER_5XX:
            return _error(500, "injected server error")
        if fault is Fault.SLOW:
            time.sleep(getattr(self, "_slow_seconds", self.server.faults.slow_seconds))
        try:
            frames = decode_request(body)
        except ContractError as exc:
            return _error(400, str(exc))
        try:
            scores = model.predict(frames)
            payload = encode_response(model.info, scores)
        except Exception:  # a model bug is the container's 500, never a made-up score
            logger.exception("model failed")
            return _error(500, "model failed")
        return _Reply(200, _apply_payload_fault(payload, fault))


def _apply_payload_fault(payload: bytes, fault: Fault | None) -> bytes:
    if fault is Fault.MALFORMED_JSON:
        return payload[: len(payload) // 2]
    if fault not in (
        Fault.DROP_FRAME,
        Fault.EXTRA_FRAME,
        Fault.OUT_OF_RANGE,
        Fault.NAN_SCORE,
        Fault.MISSING_MODEL,
    ):
        return payload
    document = json.loads(payload)
    frames = document["frames"]
    if fault is Fault.DROP_FRAME:
        frames.pop()
    elif fault is Fault.EXTRA_FRAME:
        frames.append({"frame_id": "never-sent", "p_fake": 0.0, "faces": [], "quality": []})
    elif fault is Fault.OUT_OF_RANGE:
        frames[0]["p_fake"] = 1.5
    elif fault is Fault.NAN_SCORE:
        frames[0]["p_fake"] = math.nan
    else:
        del document["model"]
    return json.dumps(document).encode()


def start_server(
    model: Model | None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    faults: FaultInjector | None = None,
    variant: str = "AllTraffic",
) -> tuple[ModelServer, threading.Thread, str]:
    """Serve in a background thread; port 0 picks a free port. Returns (server, thread, base URL)."""
    server = ModelServer((host, port), model, faults=faults, variant=variant)
    thread = threading.Thread(target=server.serve_forever, name="kycserve", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    return server, thread, f"http://{bound_host}:{bound_port}"


def stop(server: ModelServer, thread: threading.Thread, timeout: float = 5.0) -> None:
    """Stop accepting requests and release the port."""
    server.shutdown()
    server.server_close()
    thread.join(timeout)


# Kept for callers that like a verb-object name.
stop_server = stop
