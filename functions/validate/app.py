"""ValidateUpload: is this upload a video we can safely screen? A refusal is an answer, not an error."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.errors import ObjectTooLargeError
from kyc.aws.kms_mac import KmsMac
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.aws.ssm_policy_source import PolicyOverrideProvider
from kyc.domain.identity import pseudonymise_key
from kyc.domain.provenance import audit_view
from kyc.domain.reasons import ReasonCode
from kyc.media import c2pa_manifest
from kyc.media.c2pa_manifest import C2paConfig
from kyc.media.isolated import read_c2pa_isolated, validate_isolated
from kyc.media.sandbox import SandboxUsage, sandbox_for_invocation
from kyc.media.validation import ValidationReport
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

LIMITS = settings.media_limits()
MEMORY_FRACTION = settings.sandbox_memory_fraction()
STORE = S3ObjectStore()
PSEUDONYM_MAC = KmsMac(settings.pseudonym_key_id())
C2PA = settings.c2pa_reading()
TRUST_SOURCE = PolicyOverrideProvider() if C2PA.trust_parameter else None
TRUST_CACHE_SECONDS = 300
C2PA_BUDGET_S = 20.0  # a manifest read takes milliseconds; this bounds a hostile one
c2pa_manifest.preload()  # load the native reader once, so each sandbox child starts with it


@logger.inject_lambda_context(correlation_id_path="submission.submission_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("validate")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submission = event["submission"]
    report, usage, provenance = _validate(submission, context)
    count("UploadsValidated", outcome="accepted" if report.accepted else "refused")
    if not report.accepted:
        count("UploadsRefused", reason_code=str(report.reason))
    result = report.to_dict()
    # evidence beside the model, for the decision (kyc.domain.provenance): always present, None when refused
    result["provenance"] = {
        "c2pa": None if provenance is None else provenance[0],
        "container": result.pop("forensics", None),
    }
    if provenance is not None:
        count("C2paManifests", state=str(provenance[0]["state"]))
    log_lineage(
        "validate",
        submission["submission_id"],
        execution_arn=event.get("execution_arn"),
        inputs={
            "object": pseudonymise_key(submission["key"], PSEUDONYM_MAC),
            "version_id": submission.get("version_id"),
            "etag": submission.get("etag"),
        },
        outputs={
            "sha256": result["sha256"],
            "size": result["size"],
            "accepted": result["accepted"],
            "reason": result["reason"],
            "sandbox": None if usage is None else usage.to_dict(),
            "provenance": audit_view(**result["provenance"]),  # logs outlive an erasure
            "c2pa_sandbox": None if provenance is None or provenance[1] is None else provenance[1].to_dict(),
        },
        parameters={
            "max_bytes": LIMITS.max_bytes,
            "allowed_codecs": sorted(LIMITS.allowed_codecs),
            "c2pa": {
                "trust_parameter": C2PA.trust_parameter or None,
                "max_manifest_bytes": C2PA.max_manifest_bytes,
            },
        },
    )
    return result


Provenance = tuple[dict[str, Any], SandboxUsage | None]


def _validate(
    submission: dict[str, Any], context: LambdaContext
) -> tuple[ValidationReport, SandboxUsage | None, Provenance | None]:
    """Download, then open and decode in the sandbox child; the AWS calls stay in this process.

    An accepted upload's C2PA manifest is read next, on the same downloaded and hashed bytes, in a
    sandbox child of its own (kyc.media.isolated.read_c2pa_isolated)."""
    declared = submission.get("size")
    if isinstance(declared, int) and declared > LIMITS.max_bytes:
        return _too_large(declared), None, None
    with tempfile.TemporaryDirectory(prefix="kyc-validate-") as tmp:
        try:
            upload = STORE.download(
                submission["bucket"],
                submission["key"],
                submission.get("version_id"),
                Path(tmp) / "upload",
                max_bytes=LIMITS.max_bytes,
            )
        except ObjectTooLargeError:
            return _too_large(declared if isinstance(declared, int) else LIMITS.max_bytes + 1), None, None
        sandbox = sandbox_for_invocation(context, LIMITS.decode_budget_s, MEMORY_FRACTION)
        report, usage = validate_isolated(upload.path, LIMITS, sandbox, sha256=upload.sha256)
        if not report.accepted:
            return report, usage, None
        budget = min(C2PA_BUDGET_S, LIMITS.decode_budget_s)
        c2pa_sandbox = sandbox_for_invocation(context, budget, MEMORY_FRACTION)
        summary, c2pa_usage = read_c2pa_isolated(upload.path, _c2pa_config(), c2pa_sandbox)
        return report, usage, (summary.to_dict(), c2pa_usage)


def _c2pa_config() -> C2paConfig:
    """Trust anchors from the configured SSM parameter (cached), or none: every signer untrusted."""
    anchors = None
    if TRUST_SOURCE is not None:
        anchors = TRUST_SOURCE.get(C2PA.trust_parameter, max_age=TRUST_CACHE_SECONDS)["document"]
    return C2paConfig(trust_anchors_pem=anchors, max_manifest_bytes=C2PA.max_manifest_bytes)


def _too_large(size: int) -> ValidationReport:
    """Refused from the object's size alone: oversized bytes are never downloaded or hashed."""
    return ValidationReport(
        accepted=False,
        reason=ReasonCode.TOO_LARGE,
        message=f"the upload is larger than {LIMITS.max_bytes} bytes",
        sha256="",
        size_bytes=size,
        media=None,
    )
