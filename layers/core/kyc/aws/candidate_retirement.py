"""A rejected candidate's endpoint stops billing (issue 21, docs/learning-loop.md "Rejection").

Run by ShadowDeployFunction when the registry says a package of the stack's group is Rejected (the
EventBridge rule RetireCandidateRule, or `kycscreen reject` locally through the same function). The
event is a trigger, not evidence: the package's status, its record, the production and shadow
pointers and what the endpoint serves are read back here. The endpoint ``<EndpointName>-v<version>``
is deleted (its endpoint config and model stay for audit, as for a refused shadow deployment) only if

- the production pointer does not name it (the serving champion is never deleted: REFUSED),
- the package's own record says this stack's shadow step created it (an adopted endpoint is not the
  stack's), and
- the deployment witness (SageMaker + S3) says it serves exactly the package's bytes.

A shadow pointer that names the package is cleared first (a new version without a deployment): a
rejected candidate is not worth live shadow traffic, and a pointer left naming a deleted endpoint would
only turn every shadow call into a failure. The outcome is recorded on the package once (a repeated
event finds it recorded and writes nothing), so an auditor reads it beside the approval and shadow steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from kyc.aws import model_registry as reg
from kyc.aws.clients import client
from kyc.aws.model_registry import ModelRegistry, RegisteredPackage
from kyc.aws.production_pointer import ProductionPointer
from kyc.aws.sagemaker_deployment import (
    DeploymentError,
    endpoint_name_for,
    endpoint_status,
    retire_endpoint,
    witnessed,
)
from kyc.aws.shadow_pointer import clear_shadow_pointer
from kyc.domain import retirement as rule
from kyc.domain.promotion import PromotionError, bound_image_digest, split_pointer


@dataclass(frozen=True)
class Retirement:
    """What the rejection did: ``status`` is one of ``kyc.domain.retirement``'s outcomes."""

    model_package_arn: str
    endpoint_name: str
    status: str
    reason: str | None = None
    shadow_pointer_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class StackNames:
    """Where this stack keeps what the rule reads (the function's environment)."""

    endpoint_prefix: str  # EndpointName: candidates are <EndpointName>-v<version>
    production_parameter: str  # PolicyParameterName ("" when the stack has no production pointer)
    shadow_parameter: str
    kms_key_id: str
    data_bucket: str  # ModelDataBucket, where the witness reads candidates' checksums
    data_prefix: str  # <ModelDataPrefix>candidates/


def retire_rejected(
    package: RegisteredPackage,
    registry: ModelRegistry,
    names: StackNames,
    *,
    policy: dict[str, Any] | None = None,
    sagemaker_client: Any = None,
    ssm_client: Any = None,
    s3_client: Any = None,
) -> Retirement:
    """Delete the rejected ``package``'s endpoint, or say why it stays; idempotent. ``policy``: the
    package's policy document, for the image digest its calibration names (the witness checks it)."""
    sm = sagemaker_client or client("sagemaker")
    ssm = ssm_client or client("ssm")
    arn, meta = package.arn, package.metadata
    endpoint = endpoint_name_for(names.endpoint_prefix, package.version or 0)

    def done(status: str, reason: str | None = None, version: int | None = None) -> Retirement:
        return Retirement(arn, endpoint, status, reason, version)

    if package.approval_status != reg.REJECTED:
        return done(rule.REFUSED, f"{arn} is {package.approval_status}, not {reg.REJECTED}")
    status = endpoint_status(endpoint, sm)
    if status is None or status == "Deleting":
        if meta.get(reg.SHADOW_ENDPOINT) != endpoint:
            return done(rule.NOTHING_TO_RETIRE, "this stack never deployed the package")
        if meta.get(reg.RETIRED_ENDPOINT) != endpoint:  # recorded once: a repeated event writes nothing
            _record(registry, arn, endpoint, rule.ALREADY_GONE)
        return done(rule.ALREADY_GONE)

    try:
        refusal = rule.serving_refusal(_production(names, ssm), arn=arn, endpoint=endpoint)
    except PromotionError as exc:  # what serves production cannot be told: delete nothing
        refusal = f"the production pointer cannot be read: {exc}"
    refusal = refusal or rule.ownership_refusal(meta, endpoint=endpoint)
    if refusal is None:
        try:
            witnessed(
                endpoint,
                artefact_sha256=meta.get(reg.MODEL_SHA256, ""),
                image_digest=bound_image_digest(policy or {}),
                data_bucket=names.data_bucket,
                data_prefix=names.data_prefix,
                sagemaker_client=sm,
                s3_client=s3_client or client("s3"),
            )
        except DeploymentError as exc:
            refusal = f"not the package's deployment: {exc}"
    if refusal is not None:
        if meta.get(reg.RETIRE_REFUSED) != refusal[:256]:
            registry.annotate(arn, {reg.RETIRE_REFUSED: refusal[:256]})
        return done(rule.REFUSED, refusal)

    cleared = clear_shadow_pointer(
        names.shadow_parameter, names.kms_key_id, arn=arn, cleared_by="reject", ssm_client=ssm
    )
    try:
        retire_endpoint(endpoint, sm)
    except sm.exceptions.ClientError as exc:
        if endpoint_status(endpoint, sm) not in (None, "Deleting"):
            raise
        del exc  # deleted meanwhile (a concurrent delivery of the same event): gone is what we wanted
    extra = {reg.RETIRE_SHADOW_POINTER: f"{names.shadow_parameter}:{cleared}"} if cleared else {}
    _record(registry, arn, endpoint, rule.RETIRED, extra)
    return done(rule.RETIRED, version=cleared)


def _production(names: StackNames, ssm: Any) -> dict[str, Any] | None:
    """The production pointer's deployment block (None: the template's champion endpoint serves)."""
    if not names.production_parameter:
        return None
    current = ProductionPointer(names.production_parameter, names.kms_key_id, ssm).current()
    if current is None:
        return None
    return split_pointer(current.document)[1]


def _record(
    registry: ModelRegistry, arn: str, endpoint: str, outcome: str, extra: dict[str, str] | None = None
) -> None:
    registry.annotate(
        arn,
        {
            reg.RETIRED_ENDPOINT: endpoint,
            reg.RETIRE_OUTCOME: outcome,
            reg.RETIRED_AT: datetime.now(UTC).isoformat(timespec="seconds"),
        }
        | (extra or {}),
    )
