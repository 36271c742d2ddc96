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
from kyc.domain.identity import pseudonymise_key
from kyc.domain.reasons import ReasonCode
from kyc.media.isolated import validate_isolated
from kyc.media.sandbox import SandboxUsage, sandbox_for_invocation
from kyc.media.validation import ValidationReport
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

LIMITS = settings.media_limits()
MEMORY_FRACTION = settings.sandbox_memory_fraction()
STORE = S3ObjectStore()
PSEUDONYM_MAC = KmsMac(settings.pseudonym_key_id())


@logger.inject_lambda_context(correlation_id_path="submission.submission_id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@stage_duration("validate")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submission = event["submission"]
    report, usage = _validate(submission, context)
    count("UploadsValidated", outcome="accepted" if report.accepted else "refused")
    if not report.accepted:
        count("UploadsRefused", reason_code=str(report.reason))
    result = report.to_dict()
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
        },
        parameters={"max_bytes": LIMITS.max_bytes, "allowed_codecs": sorted(LIMITS.allowed_codecs)},
    )
    return result


def _validate(
    submission: dict[str, Any], context: LambdaContext
) -> tuple[ValidationReport, SandboxUsage | None]:
    """Download, then open and decode in the sandbox child; the AWS calls stay in this process."""
    declared = submission.get("size")
    if isinstance(declared, int) and declared > LIMITS.max_bytes:
        return _too_large(declared), None
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
            return _too_large(declared if isinstance(declared, int) else LIMITS.max_bytes + 1), None
        sandbox = sandbox_for_invocation(context, LIMITS.decode_budget_s, MEMORY_FRACTION)
        return validate_isolated(upload.path, LIMITS, sandbox, sha256=upload.sha256)


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
