"""The SageMaker Model Registry as the learning loop uses it (docs/learning-loop.md).

A gated candidate is a model package version in the stack's group, ``PendingManualApproval``,
carrying what an approver and an auditor need as customer metadata: the artefact's SHA-256, the
policy's binding, the contract version, the dataset version and labelled-set hash, and S3 pointers to
the evaluation report and the calibrated policy (under the stack key). Later steps record on the same
package what they did (shadow endpoint, re-screen report), so promotion reads every step from one
place the registry keeps a history of, not from a file the caller hands it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kyc.aws.clients import client

PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"

# customer metadata keys (SageMaker: at most 50, keys <= 128 and values <= 256 characters)
MODEL_SHA256 = "ModelSha256"
POLICY_BOUND_TO = "PolicyBoundToSha256"
CONTRACT_VERSION = "ContractVersion"
DATASET_VERSION = "DatasetVersion"
LABELLED_SET_SHA256 = "LabelledSetSha256"
REPORT_URI = "EvaluationReportS3Uri"
POLICY_URI = "PolicyS3Uri"
POLICY_VERSION = "PolicyVersion"
GATE_PASSED = "GatePassed"
SHADOW_ENDPOINT = "ShadowEndpoint"
SHADOW_POLICY_PARAMETER = "ShadowPolicyParameter"
RESCREEN_REPORT_URI = "RescreenReportS3Uri"
RESCREEN_FAILED = "RescreenFailed"
# issue 21 retire: the shadow step created the endpoint (an existing one adopted is not the stack's)
SHADOW_ENDPOINT_CREATED = "ShadowEndpointCreated"
# issue 21 retire: what the rejection did with the candidate's endpoint (kyc.aws.candidate_retirement)
RETIRED_ENDPOINT = "RetiredEndpoint"
RETIRE_OUTCOME = "RetireOutcome"
RETIRED_AT = "RetiredAt"
RETIRE_REFUSED = "RetireRefused"
RETIRE_SHADOW_POINTER = "RetireClearedShadowPointer"


class RegistryError(RuntimeError):
    """The registry refused, or a package is not what the caller expects."""


@dataclass(frozen=True)
class RegisteredPackage:
    arn: str
    group: str
    version: int | None
    approval_status: str
    approval_description: str | None
    image: str | None
    model_data_url: str | None
    metadata: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """The view ``kyc.domain.promotion.promotion_refusals`` reads."""
        m = self.metadata
        rescreen = None
        if m.get(RESCREEN_REPORT_URI):
            rescreen = {"report_uri": m[RESCREEN_REPORT_URI], "failed": int(m.get(RESCREEN_FAILED, "1"))}
        return {
            "arn": self.arn,
            "version": self.version,
            "approval_status": self.approval_status,
            "gate_passed": m.get(GATE_PASSED),
            "model_sha256": m.get(MODEL_SHA256),
            "policy_bound_to_sha256": m.get(POLICY_BOUND_TO),
            "policy_uri": m.get(POLICY_URI),
            "shadow_endpoint": m.get(SHADOW_ENDPOINT),
            "rescreen": rescreen,
            "model_data_url": self.model_data_url,
        }


class ModelRegistry:
    """One model package group (the template's ``ModelPackageGroup``)."""

    def __init__(self, group: str, sagemaker_client: Any = None) -> None:
        self.group = group
        self._sm = sagemaker_client or client("sagemaker")

    def ensure_group(self, description: str = "kyc-screen candidates (issue 21)") -> None:
        """The group exists (the template creates it in AWS; an empty account gets it here)."""
        try:
            self._sm.describe_model_package_group(ModelPackageGroupName=self.group)
        except self._sm.exceptions.ClientError:
            self._sm.create_model_package_group(
                ModelPackageGroupName=self.group, ModelPackageGroupDescription=description
            )

    def register(
        self, *, image: str, model_data_url: str, metadata: Mapping[str, str], description: str
    ) -> RegisteredPackage:
        """A new package version awaiting a person's approval."""
        for key, value in metadata.items():
            if len(key) > 128 or len(str(value)) > 256:
                raise RegistryError(f"metadata {key} is too long for the registry")
        arn = self._sm.create_model_package(
            ModelPackageGroupName=self.group,
            ModelPackageDescription=description[:1000],
            ModelApprovalStatus=PENDING,
            InferenceSpecification={
                "Containers": [{"Image": image, "ModelDataUrl": model_data_url}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={k: str(v) for k, v in metadata.items()},
        )["ModelPackageArn"]
        return self.describe(arn)

    def describe(self, arn: str) -> RegisteredPackage:
        d = self._sm.describe_model_package(ModelPackageName=arn)
        containers = (d.get("InferenceSpecification") or {}).get("Containers") or [{}]
        return RegisteredPackage(
            arn=d["ModelPackageArn"],
            group=d.get("ModelPackageGroupName") or self.group,
            version=d.get("ModelPackageVersion"),
            approval_status=d.get("ModelApprovalStatus") or "",
            approval_description=d.get("ApprovalDescription"),
            image=containers[0].get("Image"),
            model_data_url=containers[0].get("ModelDataUrl"),
            metadata=dict(d.get("CustomerMetadataProperties") or {}),
        )

    def packages(self) -> list[RegisteredPackage]:
        listed = self._sm.list_model_packages(ModelPackageGroupName=self.group, MaxResults=100)
        return [self.describe(p["ModelPackageArn"]) for p in listed["ModelPackageSummaryList"]]

    def approve(self, arn: str, *, approver: str, note: str) -> RegisteredPackage:
        """A person's approval (UpdateModelPackage), naming who and why."""
        current = self.describe(arn)
        if current.approval_status != PENDING:
            raise RegistryError(f"{arn} is {current.approval_status}, not {PENDING}")
        return self._update(current, APPROVED, f"approved by {approver}: {note}"[:1000], {})

    def reject(self, arn: str, *, approver: str, note: str) -> RegisteredPackage:
        """A person's rejection (UpdateModelPackage Rejected), naming who and why; a package already
        Rejected is left as it is (a repeated rejection writes nothing)."""
        current = self.describe(arn)
        if current.approval_status == REJECTED:
            return current
        return self._update(current, REJECTED, f"rejected by {approver}: {note}"[:1000], {})

    def annotate(self, arn: str, metadata: Mapping[str, str]) -> RegisteredPackage:
        """Record what a later step did on the package (merged into its customer metadata)."""
        current = self.describe(arn)
        return self._update(current, current.approval_status, current.approval_description, metadata)

    def _update(
        self,
        current: RegisteredPackage,
        status: str,
        description: str | None,
        metadata: Mapping[str, str],
    ) -> RegisteredPackage:
        # the whole metadata every time: UpdateModelPackage merges in AWS, moto replaces
        kwargs: dict[str, Any] = {
            "ModelPackageArn": current.arn,
            "ModelApprovalStatus": status,
            "CustomerMetadataProperties": current.metadata | {k: str(v) for k, v in metadata.items()},
        }
        if description:
            kwargs["ApprovalDescription"] = description
        self._sm.update_model_package(**kwargs)
        return self.describe(current.arn)
