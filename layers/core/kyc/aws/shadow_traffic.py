"""Live shadow traffic: score a batch on the shadowed candidate too, inside a bounded budget.

The shadow pointer (``/kyc/<stack>/shadow-policy``, written by ``functions/shadow``) names the
candidate's endpoint and policy. While it names a deployment, the score function sends every batch
it scored on the champion to that endpoint as well and writes what came back beside the champion's
scores (``kyc.domain.shadow.shadow_batch_key``). The shadow never decides and never fails a batch:

- its own client: connect timeout 1 s, read timeout ``KYC_SHADOW_TIMEOUT_SECONDS`` (default 10 s), no
  botocore retry, and at most one retry of ours (throttling, 5xx, timeouts), with a backoff of at
  most 0.2 s. Worst case per batch: 2 x (1 + timeout) + 0.2 s = 22.2 s at the default, whatever the
  endpoint does (hangs, 500s, throttles);
- every failure (SSM, the endpoint, garbage that breaks the contract) becomes a FAILED shadow
  document and a ``ShadowFailures`` metric, never an exception out of ``score_shadow``;
- the pointer is cached as the production pointer is (``KYC_POLICY_CACHE_SECONDS``), its absence
  too, so an unshadowed stack pays one SSM read per warm container per cache period; it is read on
  a client of its own (1 s connect, 3 s read, one attempt), inside the worst case below;
- the deployment witness (``kyc.aws.sagemaker_model_witness``, the one scoring, the re-screen and
  promotion use) says what the shadow endpoint serves, on clients of its own (1 s connect, 3 s read,
  no retry) and under a deadline: no call starts after ``SHADOW_WITNESS_BUDGET_S``, so it adds at
  most 4 + 4 = 8 s, and usually nothing (cached ``KYC_MODEL_WITNESS_TTL_S`` per warm container);
- it runs only if the Lambda's remaining time after the champion covers its worst case
  (``shadow_worst_case_s``: 34.2 s at the default) plus ``SHADOW_MARGIN_S``; otherwise the batch's
  shadow is SKIPPED (recorded, counted), so the shadow can never time the invocation out and turn the
  champion's scores into a failed batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

from kyc.aws.sagemaker_frame_scorer import SageMakerFrameScorer, ScoringError
from kyc.aws.sagemaker_model_witness import SageMakerModelWitness
from kyc.aws.ssm_policy_source import PolicyOverrideProvider
from kyc.domain.contract import FrameImage
from kyc.domain.promotion import split_pointer

SHADOW_ATTEMPTS = 2  # the call and at most one retry
SHADOW_MAX_BACKOFF_S = 0.2
SHADOW_CONNECT_TIMEOUT_S = 1.0
SHADOW_WITNESS_CONNECT_TIMEOUT_S = 1.0
SHADOW_WITNESS_READ_TIMEOUT_S = 3.0
SHADOW_WITNESS_BUDGET_S = 4.0  # no witness call starts later than this after the shadow answered
# the shadow pointer's SSM read, on a client of its own: one attempt, so at most 1 + 3 s when SSM hangs
SHADOW_POINTER_CONNECT_TIMEOUT_S = 1.0
SHADOW_POINTER_READ_TIMEOUT_S = 3.0
# what must be left after the shadow's worst case: its document's S3 write, the lineage log, the return
SHADOW_MARGIN_S = 5.0
NOT_ENOUGH_TIME = "NOT_ENOUGH_TIME"  # the reason a SKIPPED shadow batch document gives


def shadow_worst_case_s(timeout_s: float) -> float:
    """The longest the shadow of one batch can take: the pointer's read (1 s connect + 3 s read, one
    attempt), 2 x (1 s connect + ``timeout_s`` read) + 0.2 s backoff for the call, then the witness's
    budget plus one witness call in flight (34.2 s at 10 s)."""
    pointer = SHADOW_POINTER_CONNECT_TIMEOUT_S + SHADOW_POINTER_READ_TIMEOUT_S
    call = SHADOW_ATTEMPTS * (SHADOW_CONNECT_TIMEOUT_S + timeout_s) + SHADOW_MAX_BACKOFF_S
    witness = SHADOW_WITNESS_BUDGET_S + SHADOW_WITNESS_CONNECT_TIMEOUT_S + SHADOW_WITNESS_READ_TIMEOUT_S
    return pointer + call + witness


def shadow_time_needed_s(timeout_s: float) -> float:
    """The Lambda time that must remain after the champion for the shadow to run at all."""
    return shadow_worst_case_s(timeout_s) + SHADOW_MARGIN_S


def shadow_pointer_config() -> Config:
    """The shadow pointer's SSM client: short timeouts, one attempt. The default client (5 s connect,
    30 s read, 5 attempts) could hold the invocation for minutes before the time check below."""
    return Config(
        read_timeout=SHADOW_POINTER_READ_TIMEOUT_S,
        connect_timeout=SHADOW_POINTER_CONNECT_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
    )


def shadow_witness_config() -> Config:
    """The shadow witness's SageMaker and S3 clients: short timeouts, no retry (an unreadable account
    is never cached: the next batch asks again)."""
    return Config(
        read_timeout=SHADOW_WITNESS_READ_TIMEOUT_S,
        connect_timeout=SHADOW_WITNESS_CONNECT_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
    )


def shadow_endpoint_witness(
    endpoint_name: str, *, data_bucket: str, data_prefix: str, ttl_s: float
) -> SageMakerModelWitness:
    """The deployment witness of a shadow endpoint, on its own bounded clients (``shadow_witness_config``)."""
    import boto3

    session = boto3.session.Session()
    return SageMakerModelWitness(
        endpoint_name,
        data_bucket=data_bucket,
        data_prefix=data_prefix,
        ttl_s=ttl_s,
        sagemaker=session.client("sagemaker", config=shadow_witness_config()),
        s3=session.client("s3", config=shadow_witness_config()),
    )


@dataclass(frozen=True)
class ShadowPointer:
    """One version of the shadow pointer that names a deployment."""

    parameter: str
    version: int | None
    policy: dict[str, Any]
    deployment: dict[str, Any]

    def record(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "parameter_version": self.version} | self.deployment


class ShadowPointerSource:
    """The current shadow pointer (None while no candidate is shadowed), cached ``max_age_s``."""

    def __init__(
        self,
        parameter: str,
        max_age_s: int,
        *,
        provider: PolicyOverrideProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.parameter = parameter
        self.max_age_s = max_age_s
        if provider is None:
            import boto3

            ssm = boto3.session.Session().client("ssm", config=shadow_pointer_config())
            provider = PolicyOverrideProvider(ssm_client=ssm)
        self._provider = provider
        self._clock = clock
        self._absent_until = 0.0

    def current(self) -> ShadowPointer | None:
        if not self.parameter or self._clock() < self._absent_until:
            return None
        try:
            fetched = self._provider.get(self.parameter, max_age=self.max_age_s)
        except Exception as exc:
            if _is_not_found(exc):  # no candidate was ever shadowed: remember that for max_age_s
                self._absent_until = self._clock() + self.max_age_s
                return None
            raise
        policy, deployment = split_pointer(json.loads(fetched["document"]))
        if deployment is None:  # cleared by a promotion: nothing is shadowed
            return None
        version = fetched.get("parameter_version")
        return ShadowPointer(
            self.parameter, int(version) if version is not None else None, policy, deployment
        )


def _is_not_found(exc: BaseException) -> bool:
    while exc is not None:
        if type(exc).__name__ == "ParameterNotFound":
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def shadow_client_config(timeout_s: float) -> Config:
    """Short timeouts and no botocore retry: ours (``SHADOW_ATTEMPTS``) are the only ones."""
    return Config(
        read_timeout=timeout_s,
        connect_timeout=SHADOW_CONNECT_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
    )


class ShadowScorer:
    """Scores a batch on the shadow pointer's endpoint; returns a document, never raises."""

    def __init__(
        self,
        timeout_s: float,
        frame_record: Callable[[Any], dict[str, Any]],
        runtime_client: Any = None,
        witness: Callable[[str], SageMakerModelWitness] | None = None,
    ) -> None:
        if runtime_client is None:
            import boto3

            runtime_client = boto3.session.Session().client(
                "sagemaker-runtime", config=shadow_client_config(timeout_s)
            )
        self.timeout_s = timeout_s
        self._frame_record = frame_record  # the score function's own per-frame record (one shape)
        self._client = runtime_client
        self._scorers: dict[str, SageMakerFrameScorer] = {}
        self._witness = witness  # endpoint -> its deployment witness (None: not witnessed, unit tests)

    def _scorer(self, endpoint_name: str) -> SageMakerFrameScorer:
        if endpoint_name not in self._scorers:
            self._scorers[endpoint_name] = SageMakerFrameScorer(
                endpoint_name,
                client=self._client,
                max_attempts=SHADOW_ATTEMPTS,
                base_delay_s=SHADOW_MAX_BACKOFF_S,
                max_delay_s=SHADOW_MAX_BACKOFF_S,
            )
        return self._scorers[endpoint_name]

    def _document(self, pointer: ShadowPointer, batch_index: int) -> dict[str, Any]:
        return {
            "batch_index": batch_index,
            "endpoint_name": pointer.deployment["endpoint_name"],
            "pointer": pointer.record(),
            "policy": pointer.policy,  # what the would-be decision is taken under (decide reads it)
        }

    def skipped(self, pointer: ShadowPointer, batch_index: int, remaining_s: float) -> dict[str, Any]:
        """The shadow batch document when the Lambda's remaining time cannot cover the shadow: nothing
        was sent to the candidate; the numbers say why."""
        return self._document(pointer, batch_index) | {
            "status": "SKIPPED",
            "reason": NOT_ENOUGH_TIME,
            "remaining_s": round(remaining_s, 3),
            "needed_s": round(shadow_time_needed_s(self.timeout_s), 3),
            "attempts": 0,
            "latency_ms": 0.0,
        }

    def score(self, pointer: ShadowPointer, batch_index: int, frames: Sequence[FrameImage]) -> dict[str, Any]:
        """The shadow batch document: SCORED with the candidate's scores and what the deployment
        witness says the endpoint serves, or FAILED with why."""
        endpoint = pointer.deployment["endpoint_name"]
        document = self._document(pointer, batch_index)
        started = time.perf_counter()
        try:
            call = self._scorer(endpoint).score(frames)
        except ScoringError as exc:
            return document | _failed(str(exc.reason), exc.attempts, started)
        except Exception as exc:  # anything else the shadow does is its own failure, not the batch's
            return document | _failed(type(exc).__name__, None, started)
        return document | {
            "status": "SCORED",
            "reason": None,
            "model": call.model.to_dict(),
            "invoked_variant": call.invoked_variant,
            "latency_ms": round(call.latency_ms, 3),
            "attempts": call.attempts,
            "request_sha256": call.request_sha256,
            "response_sha256": call.response_sha256,
            "frames": [self._frame_record(s) for s in call.scores],  # as the champion's are recorded
            # what SageMaker and S3 say the shadow endpoint serves: the container does not write this
            "model_witness": self._account(endpoint, call.invoked_variant, call.model.artefact_sha256),
        }

    def _account(self, endpoint: str, variant: str | None, reported: str | None) -> dict[str, Any] | None:
        if self._witness is None:
            return None
        deadline = time.monotonic() + SHADOW_WITNESS_BUDGET_S
        return self._witness(endpoint).account(variant, reported, deadline=deadline)


def _failed(reason: str, attempts: int | None, started: float) -> dict[str, Any]:
    return {
        "status": "FAILED",
        "reason": reason,
        "attempts": attempts,
        "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
    }
