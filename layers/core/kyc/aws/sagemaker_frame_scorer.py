"""Score frames on a SageMaker endpoint, classifying every failure into a reason code.

Retries are ours, not botocore's: the client is built with one attempt so that each failure is
seen, counted and mapped to ENDPOINT_THROTTLED / ENDPOINT_UNAVAILABLE / ENDPOINT_TIMEOUT /
MODEL_ERROR / CONTRACT_VIOLATION. No path returns scores that did not pass the contract checks.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from kyc.domain.contract import (
    CONTENT_TYPE,
    CUSTOM_ATTRIBUTES,
    ContractError,
    FrameImage,
    FrameScore,
    ModelInfo,
    encode_request,
    parse_response,
)
from kyc.domain.reasons import ReasonCode

# Read timeout above the 60 s container limit so the service, not the socket, reports slowness.
# ``total_max_attempts`` = 1 means no botocore retry at all: its ``max_attempts`` key counts
# *retries* (max_attempts=1 would still send the request twice behind our back).
CLIENT_CONFIG = Config(
    read_timeout=70, connect_timeout=5, retries={"mode": "standard", "total_max_attempts": 1}
)

_THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    }
)
_TRANSIENT_CODES = frozenset(
    {"ServiceUnavailable", "InternalFailure", "InternalDependencyException", "ModelNotReadyException"}
)


class ScoringError(Exception):
    """Frames could not be scored; ``reason`` is the code the decision records."""

    def __init__(self, reason: ReasonCode, message: str, *, attempts: int = 0) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.attempts = attempts


@dataclass(frozen=True)
class EndpointCall:
    """Scores that passed the contract, plus what lineage needs to replay or audit the call."""

    model: ModelInfo
    scores: tuple[FrameScore, ...]
    invoked_variant: str | None
    latency_ms: float
    attempts: int
    request_sha256: str
    response_sha256: str


@dataclass(frozen=True)
class _Failure:
    reason: ReasonCode
    retryable: bool
    message: str


def _classify_client_error(error: ClientError) -> _Failure:
    info = error.response.get("Error", {})
    code = info.get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    message = f"{code} (HTTP {status})"
    if code in _THROTTLING_CODES:
        return _Failure(ReasonCode.ENDPOINT_THROTTLED, True, message)
    if code == "ModelError":
        original = error.response.get("OriginalStatusCode")
        message = f"ModelError (container status {original})"
        # A 4xx from the container means it refused these frames: retrying cannot help.
        client_fault = isinstance(original, int) and 400 <= original < 500
        return _Failure(ReasonCode.MODEL_ERROR, not client_fault, message)
    if code in _TRANSIENT_CODES or status >= 500:
        return _Failure(ReasonCode.ENDPOINT_UNAVAILABLE, True, message)
    # ValidationError (endpoint missing, body refused), access denied and the like: not transient.
    return _Failure(ReasonCode.ENDPOINT_UNAVAILABLE, False, message)


def _classify(error: Exception) -> _Failure | None:
    if isinstance(error, ClientError):
        return _classify_client_error(error)
    if isinstance(error, ReadTimeoutError):
        return _Failure(ReasonCode.ENDPOINT_TIMEOUT, True, "read timeout")
    if isinstance(
        error, ConnectTimeoutError | EndpointConnectionError | ConnectionClosedError | HTTPClientError
    ):
        return _Failure(ReasonCode.ENDPOINT_UNAVAILABLE, True, type(error).__name__)
    return None


def _read_body(body: Any) -> bytes:
    return body.read() if hasattr(body, "read") else bytes(body)


class SageMakerFrameScorer:
    """The FrameScorer for a SageMaker real-time or serverless endpoint.

    Backoff is exponential with full jitter (delay = uniform(0, min(max_delay, base * 2**n))), so
    parallel Map iterations that were throttled together do not retry together.
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        client: Any = None,
        max_attempts: int = 4,
        base_delay_s: float = 0.2,
        max_delay_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if client is None:
            import boto3  # imported here so tests and the domain never need AWS credentials

            client = boto3.client("sagemaker-runtime", config=CLIENT_CONFIG)
        self._endpoint_name = endpoint_name
        self._client = client
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def _delay(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self._max_delay_s, self._base_delay_s * (2 ** (attempt - 1))))

    def score(self, frames: Sequence[FrameImage]) -> EndpointCall:
        """Score one batch; returns only contract-valid scores or raises ScoringError."""
        try:
            body = encode_request(frames)
        except ContractError as exc:
            raise ScoringError(ReasonCode.CONTRACT_VIOLATION, f"request: {exc}") from exc
        expected_ids = [f.frame_id for f in frames]
        request_sha256 = hashlib.sha256(body).hexdigest()
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = self._client.invoke_endpoint(
                    EndpointName=self._endpoint_name,
                    Body=body,
                    ContentType=CONTENT_TYPE,
                    Accept=CONTENT_TYPE,
                    CustomAttributes=CUSTOM_ATTRIBUTES,
                )
                payload = _read_body(response["Body"])
                # Latency of the call that answered, not of the backoff before it.
                latency_ms = (time.perf_counter() - started) * 1000.0
                break
            except Exception as exc:
                failure = _classify(exc)
                if failure is None:
                    raise
                if not failure.retryable or attempt >= self._max_attempts:
                    raise ScoringError(
                        failure.reason, f"{failure.message} after {attempt} attempt(s)", attempts=attempt
                    ) from exc
                self._sleep(self._delay(attempt))
        try:
            batch = parse_response(payload, expected_ids)
        except ContractError as exc:
            raise ScoringError(ReasonCode.CONTRACT_VIOLATION, str(exc), attempts=attempt) from exc
        return EndpointCall(
            model=batch.model,
            scores=batch.scores,
            invoked_variant=response.get("InvokedProductionVariant"),
            latency_ms=latency_ms,
            attempts=attempt,
            request_sha256=request_sha256,
            response_sha256=hashlib.sha256(payload).hexdigest(),
        )
