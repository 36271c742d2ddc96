"""The learning loop's promotion steps on the local stack (docs/learning-loop.md, issue 21 item 3).

Used in process (a ``LocalStack``) or from another process (``RemoteStack``: a running `kycscreen up`
through its AWS endpoint, as the `kycscreen register|approve|rescreen|promote|rollback` commands do).

register -> approve -> (EventBridge) shadow -> rescreen -> promote -> rollback (-> reject: the
candidate's endpoint retired), each the same code
AWS runs: the Model Registry and endpoints are moto's SageMaker, the pointer is moto's SSM, the shadow
deployment and the re-screen are the template's functions (through the local Lambda router). What is
emulated, and only that:
- SageMaker's "Model Package State Change" event: moto emits none, so ``approve`` (``reject``) builds
  the event SageMaker sends and ``kyclocal.events.deliver`` matches it against the rules CloudFormation
  created (moto's own EventBridge pattern matcher) and hands it to their targets (ShadowDeployRule's,
  RetireCandidateRule's).
- The Distributed Map: moto's Step Functions engine does not run a Map with an S3 ItemReader in
  DISTRIBUTED mode, so ``rescreen`` runs the state machine's item processor (the same function) over
  the same S3 manifest with the template's ``RescreenMaxConcurrency`` bound, then its report state.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kyc.aws import model_registry as reg
from kyc.aws.model_registry import ModelRegistry, RegisteredPackage
from kyc.aws.production_pointer import PointerVersion, ProductionPointer
from kyc.aws.sagemaker_deployment import CANDIDATES, DeploymentError, endpoint_status, witnessed
from kyc.aws.shadow_pointer import clear_shadow_pointer
from kyc.domain.lineage import lineage_key
from kyc.domain.promotion import (
    PromotionError,
    bound_image_digest,
    pointer_document,
    promotion_refusals,
    split_pointer,
)
from kyclocal.endpoints import CONFIG_NAME, LOCAL_IMAGE, MODEL_FILE

if TYPE_CHECKING:
    from kyclocal.stack import LocalStack

SHADOW_FUNCTION = "ShadowDeployFunction"
RESCREEN_FUNCTION = "RescreenFunction"


class LoopError(RuntimeError):
    """A step refused (the message says which step is missing or what does not match)."""


class RemoteStack:
    """A running local stack (`kycscreen up`) seen from another process, through its AWS endpoint only:
    names from CloudFormation's outputs, parameters and resources, functions through Lambda Invoke
    (which the running stack routes to the real handlers)."""

    def __init__(self, endpoint_url: str, stack_name: str = "kyc-local") -> None:
        from kyclocal.stack import REGION

        self.endpoint_url, self.region = endpoint_url, REGION
        cfn = self.client("cloudformation")
        described = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        from kyclocal.template import local_template

        defaults = {n: str(p["Default"]) for n, p in local_template().parameters.items() if "Default" in p}
        given = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
        self.parameters = defaults | given
        summaries = [
            r
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
            for r in page["StackResourceSummaries"]
        ]
        self.physical_ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
        self.kms_key_id = self.outputs["ScreeningKeyArn"]
        self.audit_bucket = self.outputs["AuditBucketName"]
        self.decisions_table = self.outputs["DecisionsTableName"]

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def invoke(self, function: str, payload: str) -> tuple[bytes, bool]:
        response = self.client("lambda").invoke(FunctionName=self.physical_ids[function], Payload=payload)
        return response["Payload"].read(), "FunctionError" in response


def _invoke(stack: Any, function: str, payload: str) -> tuple[bytes, bool]:
    if isinstance(stack, RemoteStack):
        return stack.invoke(function, payload)
    return stack.router.invoke(function, payload)


def _audit_bucket(stack: Any) -> str:
    return stack.audit_bucket if isinstance(stack, RemoteStack) else stack.resources.audit_bucket


def _decisions_table(stack: Any) -> str:
    return stack.decisions_table if isinstance(stack, RemoteStack) else stack.resources.decisions_table


def registry(stack: LocalStack | RemoteStack) -> ModelRegistry:
    return ModelRegistry(stack.outputs["ModelPackageGroupName"], stack.client("sagemaker"))


def candidates_prefix(stack: LocalStack | RemoteStack) -> str:
    """Where candidates' model data lives (the shadow and re-screen roles' witness read grant)."""
    return f"{stack.parameters.get('ModelDataPrefix') or ''}{CANDIDATES}"


def _upload_model_data(stack: LocalStack | RemoteStack, config: Path, sha: str) -> str:
    """Put the candidate's model file, uncompressed, where the deployment witness reads model data
    (``ModelDataBucket``/``ModelDataPrefix``, issue 24) with an S3-verified SHA-256, and its serving
    config beside it; returns the model file's S3 URI. The witness then names exactly the bytes the
    candidate's policy is bound to (docs/model-contract.md)."""
    bucket = stack.parameters.get("ModelDataBucket") or ""
    if not bucket:
        raise LoopError(
            "ModelDataBucket is not set: a candidate deployed without it could never be witnessed"
        )
    document = json.loads(config.read_text(encoding="utf-8"))
    model_file = config.parent / document["path"]
    if hashlib.sha256(model_file.read_bytes()).hexdigest() != sha:
        raise LoopError(f"{model_file} is not the package's model ({sha})")
    s3 = stack.client("s3")
    prefix = f"{candidates_prefix(stack)}{sha}/"
    s3.put_object(
        Bucket=bucket,
        Key=prefix + MODEL_FILE,
        Body=model_file.read_bytes(),
        ChecksumAlgorithm="SHA256",
        ContentType="application/octet-stream",
    )
    config_body = json.dumps(document | {"path": MODEL_FILE}).encode()
    s3.put_object(Bucket=bucket, Key=prefix + CONFIG_NAME, Body=config_body, ContentType="application/json")
    return f"s3://{bucket}/{prefix}{MODEL_FILE}"


def register_candidate(stack: LocalStack | RemoteStack, out: Path) -> RegisteredPackage | None:
    """Register what `kycscreen retrain` wrote to ``out`` (None when the gate registered nothing).

    The model file goes to the model data location (``_upload_model_data``); its policy and the report
    under ``models/<sha256>/`` in the audit bucket (stack key, the decisions' retention); the package
    names them by S3 URI."""
    package_file = out / "package.json"
    if not package_file.is_file():
        return None
    package = json.loads(package_file.read_text(encoding="utf-8"))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    policy_path = Path(package["policy"])
    config = policy_path.parent / "model.json"
    sha = package["model_sha256"]
    if package["policy_bound_to_sha256"] != sha:
        raise LoopError("the package's policy is not bound to its model")
    bucket = _audit_bucket(stack)
    model_data_url = _upload_model_data(stack, config, sha)
    uris = {}
    for name, body, kind in (
        ("policy.json", policy_path.read_bytes(), "application/json"),
        ("report.json", json.dumps(report, indent=2).encode(), "application/json"),
    ):
        key = f"models/{sha}/{name}"
        stack.client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=kind,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=stack.kms_key_id,
        )
        uris[name] = f"s3://{bucket}/{key}"
    models = registry(stack)
    models.ensure_group()
    return models.register(
        image=LOCAL_IMAGE,
        model_data_url=model_data_url,
        description=f"{(package.get('model') or {}).get('name')} trained on {package['dataset_version']}",
        metadata={
            reg.MODEL_SHA256: sha,
            reg.POLICY_BOUND_TO: package["policy_bound_to_sha256"],
            reg.CONTRACT_VERSION: package["contract_version"],
            reg.DATASET_VERSION: package["dataset_version"],
            reg.LABELLED_SET_SHA256: package["labelled_set_sha256"],
            reg.REPORT_URI: uris["report.json"],
            reg.POLICY_URI: uris["policy.json"],
            reg.POLICY_VERSION: package["policy_version"],
            reg.GATE_PASSED: "true" if report["gate"]["passed"] else "false",
        },
    )


def approve(stack: LocalStack | RemoteStack, arn: str, *, approver: str, note: str) -> dict[str, Any]:
    """A person's approval, then what EventBridge does with SageMaker's state-change event."""
    package = registry(stack).describe(arn)
    if package.metadata.get(reg.GATE_PASSED) != "true":
        raise LoopError(f"{arn} did not pass the gate: nothing to approve")
    approved = registry(stack).approve(arn, approver=approver, note=note)
    return _state_change(stack, approved, "ShadowDeployRule")


def reject(stack: LocalStack | RemoteStack, arn: str, *, approver: str, note: str) -> dict[str, Any]:
    """A person's rejection (UpdateModelPackage Rejected), then what EventBridge does with SageMaker's
    state-change event: RetireCandidateRule hands it to the shadow function, which deletes the
    candidate's endpoint unless production serves it (``kyc.aws.candidate_retirement``). A repeated
    rejection sends the event again (the registry is not written twice): the retirement is idempotent."""
    rejected = registry(stack).reject(arn, approver=approver, note=note)
    return _state_change(stack, rejected, "RetireCandidateRule")


def _state_change(
    stack: LocalStack | RemoteStack, package: RegisteredPackage, rule_id: str
) -> dict[str, Any]:
    """SageMaker's "Model Package State Change" event (moto emits none), matched against the rule as
    CloudFormation created it (moto resolved its pattern) by moto's own EventBridge matcher (its
    TestEventPattern API is not implemented), and handed to the rule's target."""
    from kyclocal.stack import ACCOUNT

    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "1970-01-01T00:00:00Z",
        "region": stack.region,
        "resources": [package.arn],
        "detail": {
            "ModelPackageGroupName": package.group,
            "ModelPackageVersion": package.version,
            "ModelPackageArn": package.arn,
            "ModelApprovalStatus": package.approval_status,
        },
    }
    # the rules as CloudFormation created them (moto resolved their patterns), matched by moto's
    # EventBridge matcher (its TestEventPattern API is not implemented): kyclocal.events
    from kyclocal.events import deliver

    rule = stack.physical_ids[rule_id].rsplit("/", 1)[-1]
    hit = [d for d in deliver(stack, event) if d.rule == rule and d.function == SHADOW_FUNCTION]
    if not hit:
        return {"status": "NOT_MATCHED", "rule": rule}
    if hit[0].errored:
        raise LoopError(f"{rule_id}'s target failed: {hit[0].payload.decode()[:300]}")
    return hit[0].answer()


def _retained(stack: LocalStack | RemoteStack) -> list[dict[str, Any]]:
    """The backlog manifest: every scored decision on record (a decision, not an INVALID/ERROR)."""
    ddb = stack.client("dynamodb")
    items = []
    for page in ddb.get_paginator("scan").paginate(TableName=_decisions_table(stack)):
        for raw in page["Items"]:
            decision = raw.get("decision", {}).get("S")
            if decision in ("PASS", "REVIEW", "REJECT"):
                sid = raw["submission_id"]["S"]
                items.append({"submission_id": sid, "recorded": decision, "lineage_key": lineage_key(sid)})
    return sorted(items, key=lambda i: i["submission_id"])


def rescreen(stack: LocalStack | RemoteStack, arn: str) -> dict[str, Any]:
    """Score the retained backlog with the shadowed candidate; the report's URI and counts."""
    package = registry(stack).describe(arn)
    shadow = package.metadata.get(reg.SHADOW_POLICY_PARAMETER)
    if not shadow:
        raise LoopError(f"{arn} was never deployed in shadow: approve it first")
    run_id = uuid.uuid4().hex
    items = _retained(stack)
    bucket = _audit_bucket(stack)
    manifest_key = f"rescreen/{run_id}/manifest.json"
    stack.client("s3").put_object(
        Bucket=bucket,
        Key=manifest_key,
        Body=json.dumps(items).encode(),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=stack.kms_key_id,
    )
    run = {
        "run_id": run_id,
        "model_package_arn": arn,
        "shadow_policy_version": int(shadow.rsplit(":", 1)[1]),
        "expected": len(items),
        "manifest": f"s3://{bucket}/{manifest_key}",
    }
    # the Distributed Map: the ItemReader's items, the ItemSelector's shape, MaxConcurrency at a time
    listed = json.loads(stack.client("s3").get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    bound = int(stack.parameters["RescreenMaxConcurrency"])
    with ThreadPoolExecutor(max_workers=bound) as pool:
        list(
            pool.map(
                lambda item: _invoke(
                    stack, RESCREEN_FUNCTION, json.dumps({"mode": "item", "item": item, "run": run})
                ),
                listed,
            )
        )
    payload, errored = _invoke(stack, RESCREEN_FUNCTION, json.dumps({"mode": "report", "run": run}))
    if errored:
        raise LoopError(f"the re-screen report failed: {payload.decode()[:300]}")
    return json.loads(payload) | {"max_concurrency": bound}


def pointer(stack: LocalStack | RemoteStack) -> ProductionPointer:
    return ProductionPointer(stack.parameters["PolicyParameterName"], stack.kms_key_id, stack.client("ssm"))


def promote(stack: LocalStack | RemoteStack, arn: str) -> PointerVersion:
    """Switch traffic and policy in ONE write of the production pointer, or refuse.

    Refused unless the package is Approved, passed the gate, was shadowed and re-screened without
    failures, and its policy is bound to its model's SHA-256; the deployment witness (SageMaker's
    description of the endpoint's model and S3's verified checksum of its model data, never what the
    model's creator wrote about it) must name exactly those bytes, and the image the calibration names."""
    package = registry(stack).describe(arn)
    refusals = promotion_refusals(package.to_dict())
    if refusals:
        raise LoopError("; ".join(refusals))
    if not stack.parameters.get("PolicyParameterName"):
        raise LoopError("the stack has no PolicyParameterName: nothing can point at a promoted model")
    shadow_name, _, version = package.metadata[reg.SHADOW_POLICY_PARAMETER].rpartition(":")
    shadow_doc = json.loads(
        stack.client("ssm").get_parameter(Name=f"{shadow_name}:{version}", WithDecryption=True)["Parameter"][
            "Value"
        ]
    )
    policy, deployment = split_pointer(shadow_doc)
    sha = package.metadata[reg.MODEL_SHA256]
    try:
        account = witnessed(
            deployment["endpoint_name"],
            artefact_sha256=sha,
            image_digest=bound_image_digest(policy),
            data_bucket=stack.parameters.get("ModelDataBucket") or "",
            data_prefix=candidates_prefix(stack),
            sagemaker_client=stack.client("sagemaker"),
            s3_client=stack.client("s3"),
        )
    except DeploymentError as exc:
        raise LoopError(f"promotion refused: {exc}") from exc
    variants = sorted({str(m["variant"]) for m in account["models"]})
    try:
        document = pointer_document(
            policy,
            endpoint_name=deployment["endpoint_name"],
            variant=variants[0] if len(variants) == 1 else deployment.get("variant", ""),
            artefact_sha256=sha,
            model_package_arn=arn,
            drift_baseline=_rescreened_mix(stack, package.metadata[reg.RESCREEN_REPORT_URI]),
        )
    except PromotionError as exc:
        raise LoopError(str(exc)) from exc
    production = pointer(stack)
    current = production.current()
    written = production.put(document, expected_version=current.version if current else None)
    clear_shadow(stack, shadow_name, arn)
    return written


def clear_shadow(stack: LocalStack | RemoteStack, shadow_name: str, arn: str) -> bool:
    """After a promotion the candidate is the champion, not a shadow: live shadow traffic stops
    (``kyc.aws.shadow_pointer``: a new version without a deployment, only while it names ``arn``).
    A rollback leaves the pointer as it is."""
    cleared = clear_shadow_pointer(
        shadow_name, stack.kms_key_id, arn=arn, cleared_by="promote", ssm_client=stack.client("ssm")
    )
    return cleared is not None


def _rescreened_mix(stack: LocalStack | RemoteStack, report_uri: str) -> dict[str, Any] | None:
    """The candidate's decision mix on the re-screened backlog (the team's own recent traffic), from
    the report the re-screen wrote, not from the caller: the drift baseline it is promoted with."""
    bucket, _, key = report_uri.removeprefix("s3://").partition("/")
    report = json.loads(stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    return report.get("drift_baseline")


def rollback(stack: LocalStack | RemoteStack) -> PointerVersion:
    """One step back: the pointer's previous value, from SSM's own history, written as a new version."""
    production = pointer(stack)
    current = production.current()
    previous = production.previous()
    _, deployment = split_pointer(previous.document)
    if deployment is not None:
        # a rejected candidate's endpoint is retired: pointing production at it would score nothing
        status = endpoint_status(deployment["endpoint_name"], stack.client("sagemaker"))
        if status in (None, "Deleting", "Failed"):
            raise LoopError(
                f"rollback refused: version {previous.version} names {deployment['endpoint_name']}, "
                f"which SageMaker reports {status or 'does not exist'} (a rejected candidate's endpoint "
                "is deleted); promote a serving package instead"
            )
    return production.put(previous.document, expected_version=current.version if current else None)
