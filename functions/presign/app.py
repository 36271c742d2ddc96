"""IssueUploadUrl: POST /uploads -> a short-lived presigned POST for one declared selfie video.

Client applications never hold bucket credentials: their backend calls this API (IAM-signed), and the
applicant's device POSTs the file straight to S3 with the returned form. The form's policy pins the
generated key, the size range, the content type and SSE-KMS with the stack key (docs/upload-edge.md).

Refusals are 400 with ``{"error": {"code", "message"}}``; the code is one of
``kyc.domain.upload_request.UploadErrorCode``. Unexpected failures raise, so the Lambda Errors alarm
fires and API Gateway answers a generic 502 without any detail of the failure.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.kms_mac import KmsMac
from kyc.aws.s3_presigner import S3Presigner
from kyc.domain.upload_request import (
    UploadErrorCode,
    UploadPolicy,
    UploadRequest,
    UploadRequestError,
    plan_upload,
)
from kyc.observability import count, logger, metrics, tracer

# A declaration is three short fields; anything much bigger is not one.
MAX_BODY_BYTES = 4096
NO_STORE = {"Cache-Control": "no-store"}  # the signed form is a short-lived credential: never cache it


def _upload_policy() -> tuple[str, UploadPolicy]:
    """The intake bucket and the upload limits, from the template's parameters."""
    edge = settings.upload_edge()
    return edge.intake_bucket, UploadPolicy(
        upload_prefix=edge.upload_prefix,
        max_bytes=settings.media_limits().max_bytes,
        kms_key_arn=settings.stack_resources().kms_key_id,
        expires_in_s=edge.url_expiry_s,
    )


BUCKET, POLICY = _upload_policy()
PRESIGNER = S3Presigner(BUCKET)
PSEUDONYM_MAC = KmsMac(settings.pseudonym_key_id())
app = APIGatewayRestResolver()


@app.post("/uploads")
def issue_upload_url() -> Response:
    try:
        request = UploadRequest.parse(_json_body(app.current_event.decoded_body), POLICY)
    except UploadRequestError as exc:
        count("UploadUrlsRefused", reason_code=str(exc.code))
        logger.info("upload url refused", extra={"reason_code": str(exc.code)})
        return _json(HTTPStatus.BAD_REQUEST, {"error": {"code": str(exc.code), "message": exc.message}})
    ticket = plan_upload(request, POLICY, mac=PSEUDONYM_MAC)
    signed = PRESIGNER.presign_post(ticket)
    count("UploadUrlsIssued")
    # No key and no client reference in the log. The key no longer holds the reference (its folder is
    # the reference's keyed pseudonym), but the object id, its last segment, is enough to correlate
    # with the bucket's access log.
    logger.info(
        "upload url issued",
        extra={
            "object_id": ticket.object_id,
            "content_type": request.content_type,
            "declared_size": request.size,
            "expires_in": ticket.expires_in_s,
            "caller": (app.current_event.request_context.identity.user_arn or "unknown"),
        },
    )
    return _json(
        HTTPStatus.OK,
        {
            "upload": {"url": signed.url, "fields": dict(signed.fields)},
            "key": ticket.key,
            "expires_in": ticket.expires_in_s,
        },
    )


def _json_body(raw: str | None) -> Any:
    if not raw:
        raise UploadRequestError(UploadErrorCode.INVALID_BODY, "a JSON body is required")
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        raise UploadRequestError(UploadErrorCode.INVALID_BODY, f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise UploadRequestError(UploadErrorCode.INVALID_BODY, "the body is not valid JSON") from exc


def _json(status: HTTPStatus, body: dict[str, Any]) -> Response:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=NO_STORE,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
