"""Ask SageMaker and S3 what the scoring endpoint serves (the deployment witness, kyc.domain.model_witness).

DescribeEndpoint -> DescribeEndpointConfig (production variants) -> DescribeModel (model data) ->
S3 GetObjectAttributes (the SHA-256 S3 verified at upload). Whatever the endpoint points at now is
read, so a promotion or rollback (UpdateEndpoint to another config) is followed without any model
name being configured. Cost per clip is about nothing: DescribeEndpoint is asked at most once per
``ttl_s`` per warm container, and the rest once per deployed state (config names and the endpoint's
LastModifiedTime), since SageMaker configs and models cannot change in place. A container that starts
reporting another artefact than at the last DescribeEndpoint makes the witness ask again at once, so
an honest switch is witnessed on its first batch; one that keeps reporting the old hash (a lying
container) is witnessed within ``ttl_s``.

Never raises: a call that fails makes the account unreadable, and an unreadable witness binds no
calibration (REVIEW MODEL_NOT_CALIBRATED, fail closed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kyc.domain.model_witness import (
    WitnessAccount,
    WitnessUnreadable,
    model_data_object,
    variants_that_may_answer,
    witness_account,
)

_CACHE_LIMIT = 8  # deployed states remembered (a promotion and a rollback or two)


class WitnessOutOfTime(BotoCoreError):
    """The caller's deadline passed before the next service call: the account is unreadable (never
    cached). Live shadow traffic bounds its witness this way (kyc.aws.shadow_traffic)."""

    fmt = "the witness ran out of its time budget"


def _error(call: str, exc: Exception) -> str:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return f"{call} failed: {code}"
    return f"{call} failed: {type(exc).__name__}"


class SageMakerModelWitness:
    """``account(invoked_variant)`` -> ``WitnessAccount.to_dict()`` for the endpoint ``endpoint_name``.

    ``data_bucket``/``data_prefix``: where the stack allows model data to live (the template's
    ``ModelDataBucket``/``ModelDataPrefix``, the scope of its s3:GetObjectAttributes grant).
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        data_bucket: str,
        data_prefix: str = "",
        sagemaker: Any = None,
        s3: Any = None,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if sagemaker is None or s3 is None:
            from kyc.aws.clients import client

            sagemaker = sagemaker or client("sagemaker")
            s3 = s3 or client("s3")
        self._endpoint_name = endpoint_name
        self._data_bucket = data_bucket
        self._data_prefix = data_prefix
        self._sagemaker = sagemaker
        self._s3 = s3
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._endpoint: tuple[float, dict[str, Any]] | None = None
        self._reported: str | None = None  # the artefact the container reported at the last DescribeEndpoint
        self._accounts: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.calls = 0  # service calls made (the cache's effect, for tests and benchmarks)
        self._deadline: float | None = None

    def _spend(self) -> None:
        """Count a service call about to start; refuse it once the caller's deadline has passed."""
        if self._deadline is not None and self._clock() >= self._deadline:
            raise WitnessOutOfTime()
        self.calls += 1

    def account(
        self,
        invoked_variant: str | None,
        reported_sha256: str | None = None,
        *,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """What SageMaker and S3 say the variant that answered (all when unknown) was created from.
        ``reported_sha256``: the artefact the container reported for this batch (a change refreshes).
        ``deadline`` (on ``clock``): no service call starts after it; the account is then unreadable, so
        the time spent is at most the deadline plus one call's client timeouts."""
        if not self._data_bucket:  # nowhere the stack may read model data: nothing to ask
            detail = {"endpoint": self._endpoint_name}
            return WitnessAccount(
                None, "ModelDataBucket is not set: no model data can be witnessed", detail
            ).to_dict()
        with self._lock:
            self._deadline = deadline
            try:
                endpoint = self._describe_endpoint(refresh=reported_sha256 != self._reported)
                self._reported = reported_sha256
            except (ClientError, BotoCoreError) as exc:
                return WitnessAccount(
                    None, _error("DescribeEndpoint", exc), {"endpoint": self._endpoint_name}
                ).to_dict()
            key = (
                endpoint.get("EndpointConfigName"),
                (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName"),
                str(endpoint.get("LastModifiedTime")),
                invoked_variant,
            )
            if key not in self._accounts:
                account = self._resolve(endpoint, invoked_variant)
                if account.unreadable is not None:
                    return account.to_dict()  # never cached: the next batch asks again
                if len(self._accounts) >= _CACHE_LIMIT:
                    self._accounts.pop(next(iter(self._accounts)))
                self._accounts[key] = account.to_dict()
            return dict(self._accounts[key])

    def _describe_endpoint(self, *, refresh: bool) -> dict[str, Any]:
        now = self._clock()
        if refresh or self._endpoint is None or now - self._endpoint[0] >= self._ttl_s:
            self._spend()
            described = self._sagemaker.describe_endpoint(EndpointName=self._endpoint_name)
            self._endpoint = (now, {k: v for k, v in described.items() if k != "ResponseMetadata"})
        return self._endpoint[1]

    def _resolve(self, endpoint: dict[str, Any], invoked_variant: str | None) -> WitnessAccount:
        """Describe the configs and models that may answer and their model data objects, then let the
        domain name the artefact. A failed call leaves its description out: the domain says which."""
        configs: dict[str, Any] = {}
        models: dict[str, Any] = {}
        objects: dict[tuple[str, str], Any] = {}
        try:
            pairs = variants_that_may_answer(endpoint, invoked_variant)
        except WitnessUnreadable as exc:
            return WitnessAccount(None, str(exc), {"endpoint": self._endpoint_name})
        failures: list[str] = []
        for config_name, _ in pairs:
            try:
                self._spend()
                configs[config_name] = self._sagemaker.describe_endpoint_config(
                    EndpointConfigName=config_name
                )
            except (ClientError, BotoCoreError) as exc:
                failures.append(_error(f"DescribeEndpointConfig {config_name}", exc))
                continue
            for variant in configs[config_name].get("ProductionVariants") or []:
                name = variant.get("ModelName")
                if not name or name in models:
                    continue
                try:
                    self._spend()
                    models[name] = self._sagemaker.describe_model(ModelName=name)
                    bucket, key = model_data_object(models[name])
                except (ClientError, BotoCoreError) as exc:
                    failures.append(_error(f"DescribeModel {name}", exc))
                    continue
                except WitnessUnreadable:
                    continue  # the domain says why
                if bucket != self._data_bucket or not key.startswith(self._data_prefix):
                    continue  # outside the grant: never asked; the domain names the location
                try:
                    self._spend()
                    objects[(bucket, key)] = self._s3.get_object_attributes(
                        Bucket=bucket, Key=key, ObjectAttributes=["Checksum", "ObjectSize"]
                    )
                except (ClientError, BotoCoreError) as exc:
                    failures.append(_error(f"GetObjectAttributes s3://{bucket}/{key}", exc))
        account = witness_account(
            endpoint,
            configs,
            models,
            objects,
            invoked_variant=invoked_variant,
            data_bucket=self._data_bucket,
            data_prefix=self._data_prefix,
        )
        if failures and account.unreadable is not None:
            return WitnessAccount(None, f"{account.unreadable} ({'; '.join(failures)})", account.detail)
        return account
