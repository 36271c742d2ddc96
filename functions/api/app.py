"""The kycscreen API (docs/openapi.yaml): screenings for client backends, reviews for people.

Thin by design: API Gateway authenticates (AWS_IAM for ``/screenings``, the Cognito authorizer for
the rest); this handler authorises every call again from what API Gateway passed on (the IAM
principal, the token's ``cognito:groups``), the rules live in ``kyc.domain.review`` and
``kyc.domain.upload_request``, and AWS is reached through ``kyc.aws`` adapters. Refusals are JSON
``{"error": {"code", "message"}}`` with stable codes; unexpected failures raise (Lambda Errors alarm,
API 5xx alarm) and answer a bare 500.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.clients import client
from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore, deserialise_item
from kyc.aws.dynamodb_review_store import DynamoDBReviewStore, RecordExists
from kyc.aws.kms_mac import KmsMac
from kyc.aws.s3_object_store import S3ObjectStore, SourceMissingError
from kyc.aws.s3_presigner import S3Presigner
from kyc.aws.screening_registry import ScreeningRegistry
from kyc.domain.lineage import lineage_key
from kyc.domain.record import contact_sheet_key
from kyc.domain.review import (
    EXPORT_COLUMNS,
    Caller,
    CaseHistory,
    Permission,
    ReviewError,
    ReviewErrorCode,
    VerdictRequest,
    evidence_document,
    evidence_key,
    export_csv,
    export_row,
    in_queue,
    iso,
    parse_groups,
    plan_approval,
    plan_lease,
    plan_verdict,
    queue_item,
    require_reviewable,
    reviewed_event_detail,
    reviewer_id,
    verdict_sequence,
)
from kyc.domain.review_case import case_view, screening_view
from kyc.domain.upload_request import UploadErrorCode, UploadRequest, UploadRequestError, plan_upload
from kyc.observability import count, log_lineage, logger, metrics, tracer

API = settings.api_settings()
BUCKET, POLICY = API.intake_bucket, API.upload_policy
PRESIGNER = S3Presigner(BUCKET)
PSEUDONYM_MAC = KmsMac(settings.pseudonym_key_id())
DECISIONS = DynamoDBDecisionStore(API.decisions_table)
REVIEWS = DynamoDBReviewStore(API.reviews_table, retention_s=API.retention_days * 86400)
SCREENINGS = ScreeningRegistry(API.screenings_table, mac=PSEUDONYM_MAC)
STORE = S3ObjectStore(API.kms_key_id)
MAX_BODY_BYTES = 8192
MAX_WAIT_S = 20
POLL_INTERVAL_S = 1.0
NO_STORE = {"Cache-Control": "no-store"}
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[principal, idempotency_key]",
    payload_validation_jmespath="body",
    # a retry within the form's lifetime gets the same form; after it, the form is dead anyway
    expires_after_seconds=POLICY.expires_in_s,
)
PERSISTENCE = DynamoDBPersistenceLayer(table_name=API.idempotency_table)
app = APIGatewayRestResolver(
    cors=CORSConfig(
        allow_origin=API.cors_origin,
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        max_age=600,
    )
    if API.cors_origin
    else None
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def _error(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return _json(status, {"error": body})


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=NO_STORE | (headers or {}),
    )


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return _error(exc.status, exc.code, exc.message, exc.details)


@app.exception_handler(ReviewError)
def _review_error(exc: ReviewError) -> Response:
    count("ReviewRequestsRefused", reason_code=str(exc.code))
    return _error(exc.status, str(exc.code), exc.message, exc.details)


@app.exception_handler(UploadRequestError)
def _upload_error(exc: UploadRequestError) -> Response:
    count("UploadUrlsRefused", reason_code=str(exc.code))
    return _error(HTTPStatus.BAD_REQUEST, str(exc.code), exc.message)


@app.not_found
def _not_found(_exc: Exception) -> Response:
    return _error(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such route")


# ------------------------------------------------------------------------------------------- who calls
def _principal() -> str:
    """The IAM principal API Gateway authenticated (AWS_IAM): the owner of the screenings it declares."""
    arn = app.current_event.request_context.identity.user_arn
    if not arn:
        raise ApiError(HTTPStatus.FORBIDDEN, "FORBIDDEN", "this route takes SigV4-signed requests")
    return str(arn)


def _claims() -> dict[str, Any]:
    authorizer = app.current_event.request_context.authorizer
    claims = (authorizer.raw_event.get("claims") if authorizer else None) or {}
    if not claims.get("sub"):
        raise ApiError(HTTPStatus.UNAUTHORIZED, "UNAUTHORIZED", "sign in: no valid token")
    return claims


def _caller() -> Caller:
    """The person, from the claims the Cognito authorizer verified; their rights come from the token's
    groups here, on every call, never from anything the page sends."""
    claims = _claims()
    return Caller(reviewer_id(str(claims["sub"]), PSEUDONYM_MAC), parse_groups(claims.get("cognito:groups")))


def _body() -> Any:
    raw = app.current_event.decoded_body
    if not raw:
        return None
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_BODY", f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_BODY", "the body is not valid JSON") from exc


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------- screenings
@app.post("/screenings")
def create_screening() -> Response:
    principal = _principal()
    body = _body()
    if body is None:
        raise UploadRequestError(UploadErrorCode.INVALID_BODY, "a JSON body is required")
    key = app.current_event.headers.get("Idempotency-Key")
    request = {"principal": principal, "idempotency_key": key, "body": body}
    if key is None:
        created = _create_screening(request)
    else:
        if not (8 <= len(key) <= 128 and all(c.isalnum() or c in "_-" for c in key) and key.isascii()):
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "INVALID_IDEMPOTENCY_KEY",
                "Idempotency-Key: 8..128 of A-Z a-z 0-9 _ -",
            )
        try:
            created = _create_screening_once(request=request)
        except IdempotencyValidationError as exc:
            raise ApiError(
                HTTPStatus.CONFLICT,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with another body",
            ) from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise ApiError(
                HTTPStatus.CONFLICT,
                "IDEMPOTENCY_IN_PROGRESS",
                "the first request with this key is still running",
            ) from exc
    if "error" in created:  # a refusal, kept by idempotency as the answer to this key
        return _error(HTTPStatus.BAD_REQUEST, created["error"]["code"], created["error"]["message"])
    return _json(HTTPStatus.CREATED, created, {"Location": f"/v1/screenings/{created['screening_id']}"})


def _create_screening(request: dict[str, Any]) -> dict[str, Any]:
    try:
        upload = UploadRequest.parse(request["body"], POLICY)
    except UploadRequestError as exc:
        count("UploadUrlsRefused", reason_code=str(exc.code))
        return {"error": {"code": str(exc.code), "message": exc.message}}
    ticket = plan_upload(upload, POLICY, mac=PSEUDONYM_MAC)
    signed = PRESIGNER.presign_post(ticket)
    now = _now()
    screening = {
        "screening_id": ticket.object_id,
        "owner": request["principal"],
        "bucket": BUCKET,
        "key": ticket.key,
        "client_reference": upload.client_reference,
        "created_at": iso(now),
        "expires_at": int(now.timestamp()) + API.retention_days * 86400,
        "form_expires_at": int(now.timestamp()) + ticket.expires_in_s,
    }
    if request.get("idempotency_key"):
        # the Powertools record that answers a retry (it holds the form): erasure deletes it by this id
        screening["idempotency_record"] = PERSISTENCE._get_hashed_idempotency_key(request)
    SCREENINGS.put({k: v for k, v in screening.items() if v is not None})
    count("ScreeningsCreated")
    logger.info("screening created", extra={"screening_id": ticket.object_id, "caller": request["principal"]})
    return {
        "screening_id": ticket.object_id,
        "status": "pending",
        "upload": {"url": signed.url, "fields": dict(signed.fields)},
        "key": ticket.key,
        "expires_in": ticket.expires_in_s,
    }


@idempotent_function(data_keyword_argument="request", config=IDEMPOTENCY, persistence_store=PERSISTENCE)
def _create_screening_once(request: dict[str, Any]) -> dict[str, Any]:
    return _create_screening(request)


@app.get("/screenings/<screening_id>")
def get_screening(screening_id: str) -> Response:
    principal = _principal()
    wait = _int_param("wait", 0, 0, MAX_WAIT_S)
    if not (len(screening_id) == 32 and all(c in "0123456789abcdef" for c in screening_id)):
        raise ApiError(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such screening")
    screening = SCREENINGS.get(screening_id)
    if screening is None or screening.get("owner") != principal:
        # the same answer for "not yours" and "does not exist": no probing of other clients' ids
        raise ApiError(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such screening")
    deadline = time.monotonic() + wait
    while True:
        sid = SCREENINGS.submission_of(screening)
        decision = DECISIONS.get(sid) if sid else None
        remaining = deadline - time.monotonic()
        if decision is not None or remaining <= 0:
            break
        time.sleep(min(POLL_INTERVAL_S, remaining))
    history = REVIEWS.case(sid)[0] if decision is not None and sid else None
    return _json(
        HTTPStatus.OK, screening_view(screening, submission_id=sid, decision=decision, history=history)
    )


def _int_param(name: str, default: int, lowest: int, highest: int) -> int:
    raw = app.current_event.get_query_string_value(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lowest <= int(raw) <= highest:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER", f"{name} must be an integer {lowest}..{highest}"
        )
    return int(raw)


# ------------------------------------------------------------------------------------------- people
@app.get("/me")
def me() -> Response:
    claims = _claims()
    caller = _caller()
    rights = caller.rights
    return _json(
        HTTPStatus.OK,
        {
            "reviewer_id": caller.reviewer_id,
            "username": str(claims.get("cognito:username") or ""),
            "groups": list(caller.groups),
            "can": {
                "read": Permission.READ in rights,
                "claim": Permission.CLAIM in rights,
                "record_verdict": Permission.RECORD_VERDICT in rights,
                "approve": Permission.APPROVE in rights,
                "export": Permission.EXPORT in rights,
            },
        },
    )


@app.get("/reviews")
def list_reviews() -> Response:
    caller = _caller()
    caller.require(Permission.READ)
    event = app.current_event
    reasons = (event.multi_value_query_string_parameters or {}).get("reason") or []
    for reason in reasons:
        if not (
            reason.isascii() and reason.replace("_", "").isalnum() and reason.isupper() and len(reason) < 64
        ):
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER", "reason must be a reason code")
    state = event.get_query_string_value("state") or "open"
    if state not in ("open", "awaiting_approval", "reviewed", "all"):
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER", "state: open, awaiting_approval, reviewed or all"
        )
    limit = _int_param("limit", 50, 1, 200)
    start = _cursor(event.get_query_string_value("cursor"))
    now = _now()
    items: list[dict[str, Any]] = []
    next_key = start
    while len(items) < limit:
        page, next_key = _review_queue_page(next_key)
        for decision in page:
            history, lease = REVIEWS.case(decision["submission_id"])
            if in_queue(decision, history, reasons=reasons, state=state):
                items.append(
                    queue_item(
                        decision, history, lease, policy=API.review_policy, me=caller.reviewer_id, now=now
                    )
                )
                if len(items) == limit:
                    next_key = _key_of(decision)
                    break
        if next_key is None:
            break
    return _json(
        HTTPStatus.OK,
        {
            "items": items,
            "deadline_hours": API.review_policy.deadline.total_seconds() / 3600,
            "next_cursor": _encode_cursor(next_key) if next_key else None,
        },
    )


def _key_of(decision: dict[str, Any]) -> dict[str, Any]:
    return {
        "submission_id": {"S": decision["submission_id"]},
        "decision": {"S": decision["decision"]},
        "decided_at": {"S": decision["decided_at"]},
    }


def _review_queue_page(start: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of REVIEW decisions, oldest first (ReviewQueueIndex: decision, decided_at)."""
    kwargs: dict[str, Any] = {
        "TableName": API.decisions_table,
        "IndexName": "ReviewQueueIndex",
        "KeyConditionExpression": "#d = :review",
        "ExpressionAttributeNames": {"#d": "decision"},
        "ExpressionAttributeValues": {":review": {"S": "REVIEW"}},
        "ScanIndexForward": True,
        "Limit": 100,
    }
    if start:
        kwargs["ExclusiveStartKey"] = start
    page = client("dynamodb").query(**kwargs)
    return [deserialise_item(i) for i in page.get("Items", [])], page.get("LastEvaluatedKey")


def _encode_cursor(key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def _cursor(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        plain = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if set(plain) != {"submission_id", "decision", "decided_at"} or plain["decision"] != "REVIEW":
            raise ValueError("not a queue cursor")
        return {name: {"S": str(value)} for name, value in plain.items()}
    except (ValueError, TypeError) as exc:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER", "cursor is not one this API issued"
        ) from exc


def _decision(review_id: str) -> dict[str, Any]:
    if not (len(review_id) == 64 and all(c in "0123456789abcdef" for c in review_id)):
        raise ApiError(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such case")
    decision = DECISIONS.get(review_id)
    if decision is None:
        raise ApiError(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such case")
    return decision


@app.get("/reviews/<review_id>")
def get_review(review_id: str) -> Response:
    caller = _caller()
    caller.require(Permission.READ)
    decision = _decision(review_id)
    history, lease = REVIEWS.case(review_id)
    artefacts = decision.get("artefacts") or {}
    lineage = _audit_json(artefacts.get("lineage_key") or lineage_key(review_id))
    scores = _audit_json(artefacts.get("scores_key")) if artefacts.get("scores_key") else None
    view = case_view(
        decision,
        lineage=lineage,
        scores_doc=scores,
        history=history,
        lease=lease,
        contact_sheet=_contact_sheet(review_id),
        policy=API.review_policy,
        me=caller.reviewer_id,
        now=_now(),
    )
    logger.info("case read", extra={"submission_id": review_id, "reviewer_id": caller.reviewer_id})
    return _json(HTTPStatus.OK, view)


def _audit_json(key: str | None) -> dict[str, Any] | None:
    if not key:
        return None
    try:
        document = STORE.get_json(API.audit_bucket, key)
    except SourceMissingError:
        return None
    return document if isinstance(document, dict) else None


def _contact_sheet(review_id: str) -> dict[str, str] | None:
    key = contact_sheet_key(review_id)
    try:
        STORE.head(API.review_bucket, key)
    except SourceMissingError:
        return None
    seconds = API.review_link_seconds
    return {
        "url": STORE.presign_get(API.review_bucket, key, seconds),
        "expires_at": iso(datetime.fromtimestamp(time.time() + seconds, UTC)),
    }


@app.post("/reviews/<review_id>/claim")
def claim_review(review_id: str) -> Response:
    caller = _caller()
    caller.require(Permission.CLAIM)
    decision = _decision(review_id)
    require_reviewable(decision)
    now = _now()
    _history, current = REVIEWS.case(review_id)
    lease = plan_lease(review_id, current=current, caller=caller, policy=API.review_policy, now=now)
    try:
        REVIEWS.take_lease(lease, now=now)
    except RecordExists as exc:  # another reviewer's claim landed between our read and our write
        _history, current = REVIEWS.case(review_id)
        raise ReviewError(
            ReviewErrorCode.LEASE_HELD,
            "another reviewer holds this case",
            {"holder": current.holder, "expires_at": current.expires_at} if current else {},
        ) from exc
    count("ReviewClaims")
    logger.info("case claimed", extra={"submission_id": review_id, "reviewer_id": caller.reviewer_id})
    return _json(HTTPStatus.OK, lease.to_public(caller.reviewer_id))


@app.delete("/reviews/<review_id>/claim")
def release_review(review_id: str) -> Response:
    caller = _caller()
    caller.require(Permission.CLAIM)
    _decision(review_id)
    if not REVIEWS.release_lease(review_id, caller.reviewer_id):
        raise ReviewError(ReviewErrorCode.LEASE_REQUIRED, "you do not hold this case")
    return Response(status_code=HTTPStatus.NO_CONTENT, body="", headers=NO_STORE)


@app.post("/reviews/<review_id>/verdicts")
def record_verdict(review_id: str) -> Response:
    caller = _caller()
    caller.require(Permission.RECORD_VERDICT)
    decision = _decision(review_id)
    request = VerdictRequest.parse(_body())
    now = _now()
    history, lease = REVIEWS.case(review_id)
    record = plan_verdict(
        request,
        review_id=review_id,
        decision=decision,
        history=history,
        caller=caller,
        lease=lease,
        policy=API.review_policy,
        now=now,
    )
    evidence, document = _evidence(review_id, "verdict", record.verdict_id, record.to_item())
    try:
        REVIEWS.append_verdict(record, now=now, evidence=evidence)
    except RecordExists as exc:
        raise ReviewError(
            ReviewErrorCode.VERDICT_CONFLICT, f"verdict {record.verdict_id} was just recorded by someone else"
        ) from exc
    _write_evidence(evidence, document)
    history = CaseHistory.of([*history.verdicts, record], history.approvals.values())
    _after_write(decision, history, record.verdict_id, kind="verdict")
    return _json(HTTPStatus.CREATED, _verdict_out(history, record.verdict_id))


@app.post("/reviews/<review_id>/verdicts/<verdict_id>/approve")
def approve_verdict(review_id: str, verdict_id: str) -> Response:
    vid = verdict_id
    caller = _caller()
    caller.require(Permission.APPROVE)
    verdict_sequence(vid)
    decision = _decision(review_id)
    body = _body() or {}
    if not isinstance(body, dict) or set(body) - {"note"}:
        raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_BODY", "the body may carry only a note")
    now = _now()
    history, _lease = REVIEWS.case(review_id)
    approval = plan_approval(vid, history=history, caller=caller, note=body.get("note"), now=now)
    evidence, document = _evidence(review_id, "approval", vid, approval.to_item())
    try:
        REVIEWS.append_approval(approval, now=now, evidence=evidence)
    except RecordExists as exc:
        raise ReviewError(ReviewErrorCode.ALREADY_APPROVED, f"verdict {vid} is already approved") from exc
    _write_evidence(evidence, document)
    history = CaseHistory.of(history.verdicts, [*history.approvals.values(), approval])
    _after_write(decision, history, vid, kind="approval")
    return _json(HTTPStatus.OK, _verdict_out(history, vid))


def _evidence(review_id: str, kind: str, vid: str, item: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """The record's write-once audit document and the key and hash its table item commits to."""
    document = evidence_document(kind, item)
    key = evidence_key(review_id, kind, vid)
    return {"evidence_key": key, "evidence_sha256": hashlib.sha256(document).hexdigest()}, document


def _write_evidence(evidence: dict[str, str], document: bytes) -> None:
    """After the record (the conditional put decided who won): the document in the write-once audit
    bucket, listed by the next evidence digest. A failure leaves the record standing and is alarmed."""
    try:
        if not STORE.put_new(API.audit_bucket, evidence["evidence_key"], document, "application/json"):
            logger.error("review evidence exists already", extra=evidence)
            count("ReviewEvidenceFailed")
    except Exception:
        logger.exception("review evidence not written", extra=evidence)
        count("ReviewEvidenceFailed")


def _verdict_out(history: CaseHistory, vid: str) -> dict[str, Any]:
    return next(v for v in history.to_list() if v["verdict_id"] == vid)


def _after_write(decision: dict[str, Any], history: CaseHistory, vid: str, *, kind: str) -> None:
    """The record is written (it is the truth); now its lineage line, metric and event."""
    sid = decision["submission_id"]
    record = next(v for v in history.verdicts if v.verdict_id == vid)
    approval = history.approvals.get(vid) if kind == "approval" else None
    log_lineage(
        "review",
        sid,
        record_id=f"{kind}#{vid}",
        inputs={"decision": decision.get("decision"), "reasons": list(decision.get("reasons") or [])},
        outputs={
            "record_kind": kind,
            "verdict_id": vid,
            "verdict": record.verdict.value,
            "attack_type": record.attack_type.value if record.attack_type else None,
            "supersedes": record.supersedes,
            "requires_approval": record.requires_approval,
            "by": approval.approver_id if approval else record.reviewer_id,
            "case_state": history.state.value,
        },
    )
    count("ReviewVerdicts" if kind == "verdict" else "ReviewApprovals", outcome=history.state.value)
    detail = reviewed_event_detail(decision, history)
    if detail is not None and history.effective is not None and history.effective.verdict_id == vid:
        _publish_reviewed(detail)


def _publish_reviewed(detail: dict[str, Any]) -> None:
    try:
        response = client("events").put_events(
            Entries=[
                {
                    "Source": "kyc.screening",
                    "DetailType": "Screening Reviewed",
                    "Detail": json.dumps(detail),
                    "EventBusName": API.event_bus,
                }
            ]
        )
        failed = response.get("FailedEntryCount", 0)
    except Exception:  # the verdict is recorded; a lost event is counted and alarmed, never a 500
        logger.exception(
            "screening reviewed event not published", extra={"submission_id": detail["submission_id"]}
        )
        failed = 1
    if failed:
        count("ReviewedEventsFailed")


@app.get("/verdicts/export")
def export_verdicts() -> Response:
    caller = _caller()
    caller.require(Permission.EXPORT)
    fmt = app.current_event.get_query_string_value("format") or "csv"
    if fmt not in ("csv", "json"):
        raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER", "format: csv or json")
    since = app.current_event.get_query_string_value("since")
    if since is not None:
        try:
            since = iso(datetime.fromisoformat(since.replace("Z", "+00:00")))
        except ValueError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER", "since must be ISO 8601") from exc
    rows = []
    for review_id in REVIEWS.reviewed_since(since):
        decision = DECISIONS.get(review_id)
        if decision is None:  # expired: its label goes with it (an erased one: export_row)
            continue
        row = export_row(decision, REVIEWS.case(review_id)[0])
        if row is not None and (since is None or str(row["reviewed_at"]) >= since):
            rows.append(row)
    rows.sort(key=lambda r: (r["reviewed_at"], r["submission_id"]))
    logger.info("verdicts exported", extra={"rows": len(rows), "reviewer_id": caller.reviewer_id})
    if fmt == "json":
        return _json(HTTPStatus.OK, {"columns": list(EXPORT_COLUMNS), "rows": rows})
    return Response(
        status_code=HTTPStatus.OK,
        content_type="text/csv; charset=utf-8",
        body=export_csv(rows),
        headers=NO_STORE | {"Content-Disposition": 'attachment; filename="verdicts.csv"'},
    )


# ------------------------------------------------------------------------------------------- backlog
BACKLOG_SCAN_LIMIT = 2000  # REVIEW decisions read per measurement, oldest first


def measure_backlog(now: datetime | None = None) -> dict[str, Any]:
    """The oldest REVIEW decision still without an effective verdict: its age feeds ReviewBacklogAgeAlarm.

    Runs on a schedule, not when someone opens the queue: a backlog grows exactly when nobody looks.
    """
    now = now or _now()
    oldest_hours, open_cases, overdue, scanned = 0.0, 0, 0, 0
    start: dict[str, Any] | None = None
    while scanned < BACKLOG_SCAN_LIMIT:
        page, start = _review_queue_page(start)
        for decision in page:
            scanned += 1
            if decision.get("erased_at"):  # erased: out of the queue, never overdue
                continue
            history, _lease = REVIEWS.case(decision["submission_id"])
            if history.state.value == "reviewed":
                continue
            age = (now - datetime.fromisoformat(str(decision["decided_at"]))).total_seconds() / 3600
            oldest_hours = max(oldest_hours, age)
            open_cases += 1
            overdue += int(age >= API.review_policy.deadline.total_seconds() / 3600)
        if start is None:
            break
    count("ReviewBacklogOldestAgeHours", oldest_hours, unit="None")
    count("ReviewBacklogOpenCases", open_cases)
    count("ReviewBacklogOverdueCases", overdue)
    summary = {"oldest_age_hours": round(oldest_hours, 3), "open_cases": open_cases, "overdue": overdue}
    logger.info("review backlog measured", extra=summary | {"scanned": scanned})
    return summary


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # results carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return measure_backlog()
    IDEMPOTENCY.register_lambda_context(context)
    return app.resolve(event, context)
