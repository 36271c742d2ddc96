"""The API over HTTP on the local stack (issue 20): contract, idempotency, long-poll, ownership, reviews.

Real parts: template.yaml in moto's server, the reviewer pool in moto's Cognito, the template's routes
served by ``kyclocal.api_gateway`` in front of the real handler, a real upload through the presigned
form, the real pipeline deciding it. Every response is checked against docs/openapi.yaml (the contract
the workbench is built on); expected values come from the rules and from independent sources (the
file's own SHA-256, moto's signing key for an expired token, a key of our own for a forged one).
"""

from __future__ import annotations

import copy
import csv
import gzip
import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kyclocal import cognito
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip

pytestmark = pytest.mark.integration

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
# Every reason a REVIEW can carry is high-risk here, so that every verdict needs an approver: the
# four-eyes path over HTTP. (The default list, and verdicts that take effect at once, are unit-tested.)
ALL_REVIEW_REASONS = (
    "NO_FACE,MULTIPLE_FACES,INSUFFICIENT_FRAMES,PARTIAL_SCORING,MODEL_UNCERTAIN,NO_FACE_EVIDENCE,"
    "MODEL_NOT_CALIBRATED,MEDIA_REUSED,FACE_TOO_SMALL,FACE_POSE,FACE_TOO_DARK,FACE_BLURRED,UNUSABLE_SCORES,"
    "PROVENANCE_INVALID,EDITING_SOFTWARE,TIMESTAMP_ANOMALY,DEVICE_MISMATCH,HIGH_FAKE_SCORE,LOW_FAKE_SCORE"
)


# ------------------------------------------------------------------------------------------- contract
def _spec() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def _inline(node: Any, spec: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _inline(copy.deepcopy(target), spec)
        return {k: _inline(v, spec) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, spec) for v in node]
    return node


def check_contract(response: requests.Response, path: str, method: str) -> None:
    """The response's status is documented for the operation and its JSON body matches the schema."""
    from openapi_schema_validator import OAS30Validator

    spec = _spec()
    operation = _inline(spec["paths"][path][method.lower()], spec)
    documented = operation["responses"]
    assert str(response.status_code) in documented, f"{method} {path}: {response.status_code} not documented"
    content = documented[str(response.status_code)].get("content") or {}
    if not content:
        return
    kind = response.headers.get("Content-Type", "").split(";")[0]
    assert kind in content, f"{method} {path} {response.status_code}: {kind} not documented"
    if kind == "application/json":
        OAS30Validator(content[kind]["schema"]).validate(response.json())
    assert response.headers.get("Cache-Control") == "no-store" or response.status_code in (401, 403)


def test_openapi_document_is_valid_openapi_3():
    from openapi_spec_validator import validate

    validate(_spec())


def test_every_documented_route_is_served_and_every_served_route_documented(api):
    served = {(r.method.lower(), r.path) for r in api["stack"].api.routes if r.method != "OPTIONS"}
    documented = {
        (m, p) for p, ops in _spec()["paths"].items() for m in ops if m in ("get", "post", "delete")
    }
    assert served == documented


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    settings = LocalStackSettings(
        frame_count=8, api_port=0, extra_env={"KYC_REVIEW_HIGH_RISK_REASONS": ALL_REVIEW_REASONS}
    )
    with LocalStack(settings) as stack:
        idp = stack.client("cognito-idp")
        people = {}
        for name, group in (
            ("alice", "reviewer"),
            ("rita", "reviewer"),
            ("bob", "approver"),
            ("ann", "approver"),
            ("audrey", "auditor"),
        ):
            password = cognito.create_user(idp, stack.pool, name, group)
            people[name] = cognito.sign_in(idp, stack.pool, name, password)["id_token"]
        clip = make_clip(
            tmp_path_factory.mktemp("api") / "selfie.mp4", width=320, height=240, fps=15, seconds=2
        )
        yield {"stack": stack, "url": stack.api.url, "tokens": people, "clip": clip}


def person(api: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api['tokens'][name]}"}


def signed(method: str, url: str, *, key: str, body: str | None = None, headers: dict | None = None):
    """A SigV4-signed request as client backend ``key`` (its access key id is its principal locally)."""
    request = AWSRequest(
        method, url, data=body, headers=dict(headers or {}) | {"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(key, "secret-" + key), "execute-api", "us-east-1").add_auth(request)
    return requests.request(method, url, data=body, headers=dict(request.headers), timeout=40)


def declare(api, *, key="CLIENTA", idem: str | None = None, **body: Any) -> requests.Response:
    document = json.dumps(body or {"content_type": "video/mp4", "size": api["clip"].stat().st_size})
    headers = {"Idempotency-Key": idem} if idem else {}
    return signed("POST", api["url"] + "/screenings", key=key, body=document, headers=headers)


def upload(created: dict[str, Any], clip: Path) -> None:
    form = created["upload"]
    with clip.open("rb") as f:
        response = requests.post(
            form["url"], data=form["fields"], files={"file": ("selfie.mp4", f, "video/mp4")}, timeout=30
        )
    assert response.status_code in (200, 204), response.text


@pytest.fixture(scope="module")
def decided(api):
    """One screening through the whole journey: declared, uploaded by the device, decided by the pipeline."""
    created = declare(api, idem="journey-0001")
    assert created.status_code == 201, created.text
    upload(created.json(), api["clip"])
    sid = created.json()["screening_id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        got = signed("GET", f"{api['url']}/screenings/{sid}?wait=20", key="CLIENTA")
        if got.json()["status"] != "pending":
            break
    body = got.json()
    assert body["status"] == "decided", body
    return {"screening": created.json(), "view": body}


# ------------------------------------------------------------------------------------------- screenings
def test_declare_returns_201_with_form_and_matches_contract(api):
    response = declare(api)
    check_contract(response, "/screenings", "post")
    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == f"/v1/screenings/{body['screening_id']}"
    assert (
        body["key"].endswith(f"/{body['screening_id']}.mp4")
        and body["upload"]["fields"]["key"] == body["key"]
    )


def test_idempotent_retry_returns_the_same_screening_and_form(api):
    first = declare(api, idem="retry-key-0001")
    again = declare(api, idem="retry-key-0001")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same id and the same signed form
    other = declare(api, idem="retry-key-0002")
    assert other.json()["screening_id"] != first.json()["screening_id"]
    # another client using the same key gets its own screening: keys are scoped to the principal
    theirs = declare(api, key="CLIENTB", idem="retry-key-0001")
    assert theirs.status_code == 201 and theirs.json()["screening_id"] != first.json()["screening_id"]


def test_same_idempotency_key_with_another_body_is_refused(api):
    declare(api, idem="reused-key-0001")
    response = declare(api, idem="reused-key-0001", content_type="video/webm", size=10)
    check_contract(response, "/screenings", "post")
    assert response.status_code == 409 and response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"content_type": "image/png", "size": 10}, "UNSUPPORTED_CONTENT_TYPE"),
        ({"content_type": "video/mp4", "size": 0}, "INVALID_SIZE"),
        ({"content_type": "video/mp4", "size": 10, "filename": "x.mp4"}, "INVALID_BODY"),
        (
            {"content_type": "video/mp4", "size": 10, "client_reference": "<script>"},
            "INVALID_CLIENT_REFERENCE",
        ),
    ],
)
def test_bad_declarations_get_400_with_stable_codes(api, body, code):
    response = declare(api, **body)
    check_contract(response, "/screenings", "post")
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_bad_idempotency_key_is_refused(api):
    response = declare(api, idem="short")
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_IDEMPOTENCY_KEY"


def test_screening_routes_need_sigv4_and_people_routes_refuse_it(api):
    unsigned = requests.post(
        api["url"] + "/screenings", json={"content_type": "video/mp4", "size": 1}, timeout=10
    )
    check_contract(unsigned, "/screenings", "post")
    assert unsigned.status_code == 403 and unsigned.json()["error"]["code"] == "FORBIDDEN"
    # a person's token is not a backend's credential, and a backend's signature is not a person
    with_token = requests.get(
        api["url"] + "/screenings/" + "0" * 32, headers=person(api, "audrey"), timeout=10
    )
    assert with_token.status_code == 403
    as_backend = signed("GET", api["url"] + "/reviews", key="CLIENTA")
    assert as_backend.status_code == 401 and as_backend.json()["error"]["code"] == "UNAUTHORIZED"


def test_long_poll_of_a_pending_screening_returns_within_its_bound(api):
    created = declare(api).json()
    url = f"{api['url']}/screenings/{created['screening_id']}"
    started = time.monotonic()
    response = signed("GET", url + "?wait=3", key="CLIENTA")
    elapsed = time.monotonic() - started
    check_contract(response, "/screenings/{screening_id}", "get")
    assert response.json()["status"] == "pending" and response.json()["upload_received"] is False
    assert 3.0 <= elapsed < 4.5, elapsed  # held for the wait, answered within wait + 1.5 s
    started = time.monotonic()
    assert signed("GET", url, key="CLIENTA").status_code == 200
    assert time.monotonic() - started < 1.5  # no wait: at once
    too_long = signed("GET", url + "?wait=21", key="CLIENTA")
    check_contract(too_long, "/screenings/{screening_id}", "get")
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "INVALID_PARAMETER"


def test_one_client_cannot_read_another_clients_screening(api, decided):
    url = f"{api['url']}/screenings/{decided['screening']['screening_id']}"
    theirs = signed("GET", url, key="CLIENTB")
    unknown = signed("GET", f"{api['url']}/screenings/{'f' * 32}", key="CLIENTB")
    check_contract(theirs, "/screenings/{screening_id}", "get")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()  # indistinguishable from an id that does not exist


def test_decided_screening_carries_decision_and_reasons_but_never_scores(api, decided):
    view = decided["view"]
    assert view["upload_received"] is True and re.fullmatch(r"[0-9a-f]{64}", view["submission_id"])
    item = api["stack"].decision(view["submission_id"])
    assert view["decision"]["decision"] == item["decision"] and view["decision"]["reasons"] == item["reasons"]
    text = json.dumps(view)
    assert "score" not in text and "p_fake" not in text


# ------------------------------------------------------------------------------------------- reviews
def test_review_journey_lease_four_eyes_auditor_event_and_export(api, decided):
    url, sid = api["url"], decided["view"]["submission_id"]
    assert decided["view"]["decision"]["decision"] == "REVIEW"  # the reference model decides nothing
    queue = requests.get(url + "/reviews", headers=person(api, "alice"), timeout=10)
    check_contract(queue, "/reviews", "get")
    assert sid in [i["review_id"] for i in queue.json()["items"]]
    decided_at = [i["decided_at"] for i in queue.json()["items"]]
    assert decided_at == sorted(decided_at)  # oldest first

    case = requests.get(f"{url}/reviews/{sid}", headers=person(api, "audrey"), timeout=10)
    check_contract(case, "/reviews/{review_id}", "get")
    assert case.json()["state"] == "open" and case.json()["requires_approval_for"]
    assert "p_fake" not in json.dumps(case.json())

    claim = requests.post(f"{url}/reviews/{sid}/claim", headers=person(api, "alice"), timeout=10)
    check_contract(claim, "/reviews/{review_id}/claim", "post")
    assert claim.status_code == 200 and claim.json()["held_by_me"] is True
    second = requests.post(f"{url}/reviews/{sid}/claim", headers=person(api, "rita"), timeout=10)
    check_contract(second, "/reviews/{review_id}/claim", "post")
    assert second.status_code == 409 and second.json()["error"]["code"] == "LEASE_HELD"
    assert second.json()["error"]["details"]["holder"] == claim.json()["holder"]

    verdict = {"verdict": "attack", "attack_type": "face_swap", "reason": "blending seam along the jaw"}
    for name in ("audrey", "rita"):  # the auditor writes nothing; a reviewer without the lease neither
        refused = requests.post(
            f"{url}/reviews/{sid}/verdicts", json=verdict, headers=person(api, name), timeout=10
        )
        check_contract(refused, "/reviews/{review_id}/verdicts", "post")
        assert refused.json()["error"]["code"] == {"audrey": "FORBIDDEN", "rita": "LEASE_REQUIRED"}[name]
    recorded = requests.post(
        f"{url}/reviews/{sid}/verdicts", json=verdict, headers=person(api, "alice"), timeout=10
    )
    check_contract(recorded, "/reviews/{review_id}/verdicts", "post")
    assert recorded.status_code == 201
    v1 = recorded.json()
    assert (v1["verdict_id"], v1["status"], v1["requires_approval"]) == ("v000001", "awaiting_approval", True)

    approve = f"{url}/reviews/{sid}/verdicts/v000001/approve"
    for name, code in (("alice", "FORBIDDEN"), ("audrey", "FORBIDDEN")):
        refused = requests.post(approve, headers=person(api, name), timeout=10)
        check_contract(refused, "/reviews/{review_id}/verdicts/{verdict_id}/approve", "post")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == code
    pending = signed("GET", f"{url}/screenings/{decided['screening']['screening_id']}", key="CLIENTA")
    assert pending.json()["status"] == "decided" and pending.json()["review"] is None  # not before approval

    ok = requests.post(approve, json={"note": "agree"}, headers=person(api, "bob"), timeout=10)
    check_contract(ok, "/reviews/{review_id}/verdicts/{verdict_id}/approve", "post")
    assert ok.status_code == 200 and ok.json()["status"] == "effective"
    again = requests.post(approve, headers=person(api, "ann"), timeout=10)
    assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_APPROVED"

    reviewed = signed("GET", f"{url}/screenings/{decided['screening']['screening_id']}", key="CLIENTA")
    check_contract(reviewed, "/screenings/{screening_id}", "get")
    assert reviewed.json()["status"] == "reviewed"
    assert (
        reviewed.json()["review"]["verdict"] == "attack"
        and reviewed.json()["review"]["attack_type"] == "face_swap"
    )
    assert api["stack"].decision(sid)["decision"] == "REVIEW"  # the automated record is unchanged

    events = _reviewed_events(api["stack"], sid)
    assert [e["detail"]["verdict"] for e in events] == ["attack"]
    assert "reason" not in events[0]["detail"]

    export = requests.get(url + "/verdicts/export", headers=person(api, "audrey"), timeout=10)
    check_contract(export, "/verdicts/export", "get")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    mine = [r for r in rows if r["submission_id"] == sid]
    assert mine == [
        mine[0]
        | {
            "sha256": hashlib.sha256(api["clip"].read_bytes()).hexdigest(),  # the bytes, hashed here
            "label": "attack",
            "attack_type": "face_swap",
            "reviewer_count": "2",
            "verdict_id": "v000001",
        }
    ]
    as_reviewer = requests.get(url + "/verdicts/export", headers=person(api, "alice"), timeout=10)
    assert as_reviewer.status_code == 403


def test_an_approver_cannot_confirm_their_own_verdict(api, tmp_path):
    clip = make_clip(tmp_path / "second.mp4", width=320, height=240, fps=15, seconds=2, codec="h264")
    created = declare(api).json()
    upload(created, clip)
    sid = None
    for _ in range(12):
        view = signed(
            "GET", f"{api['url']}/screenings/{created['screening_id']}?wait=20", key="CLIENTA"
        ).json()
        if view["status"] != "pending":
            sid = view["submission_id"]
            break
    assert sid, "not decided"
    url = api["url"]
    assert (
        requests.post(f"{url}/reviews/{sid}/claim", headers=person(api, "ann"), timeout=10).status_code == 200
    )
    body = {"verdict": "genuine", "reason": "live person, natural motion"}
    assert requests.post(
        f"{url}/reviews/{sid}/verdicts", json=body, headers=person(api, "ann"), timeout=10
    ).ok
    own = requests.post(
        f"{url}/reviews/{sid}/verdicts/v000001/approve", headers=person(api, "ann"), timeout=10
    )
    check_contract(own, "/reviews/{review_id}/verdicts/{verdict_id}/approve", "post")
    assert own.status_code == 403 and own.json()["error"]["code"] == "SELF_APPROVAL"


# ------------------------------------------------------------------------------------------- tokens
def _moto_signing_key() -> Any:
    """The private key moto signs its Cognito tokens with (what the pool's JWKS publishes)."""
    from joserfc.jwk import RSAKey
    from moto.cognitoidp import models

    raw = (Path(models.__file__).parent / "resources" / "jwks-private.json.gz").read_bytes()
    return RSAKey.import_key(json.loads(gzip.decompress(raw)))


def _token(api: dict[str, Any], key: Any, **overrides: Any) -> str:
    from joserfc import jwt

    pool = api["stack"].pool
    now = int(time.time())
    claims = {
        "iss": pool.issuer,
        "aud": pool.client_id,
        "sub": "00000000-0000-0000-0000-000000000001",
        "token_use": "id",
        "cognito:groups": ["approver"],
        "iat": now - 60,
        "exp": now + 600,
    } | overrides
    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, key)


def test_a_token_signed_with_the_pools_key_is_accepted_as_the_oracle_for_the_cases_below(api):
    good = requests.get(
        api["url"] + "/me", headers={"Authorization": _token(api, _moto_signing_key())}, timeout=10
    )
    check_contract(good, "/me", "get")
    assert good.status_code == 200 and good.json()["groups"] == ["approver"]


@pytest.mark.parametrize(
    "case", ["expired", "forged", "other-client", "access-token", "missing", "garbage", "no-exp"]
)
def test_expired_forged_or_wrong_tokens_get_401(api, case):
    from joserfc.jwk import RSAKey

    moto_key = _moto_signing_key()
    now = int(time.time())
    header = {
        "expired": lambda: _token(api, moto_key, exp=now - 1, iat=now - 3600),
        "forged": lambda: _token(api, RSAKey.generate_key(2048)),
        "other-client": lambda: _token(api, moto_key, aud="someoneelsesclient"),
        "access-token": lambda: _token(api, moto_key, token_use="access"),
        "missing": lambda: None,
        "garbage": lambda: "Bearer not.a.token",
        "no-exp": lambda: _token(api, moto_key, exp="never"),
    }[case]()
    headers = {"Authorization": header} if header else {}
    for path in ("/me", "/reviews", "/verdicts/export"):
        response = requests.get(api["url"] + path, headers=headers, timeout=10)
        check_contract(response, path, "get")
        assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHORIZED", (
            case,
            path,
        )


def _reviewed_events(stack: LocalStack, sid: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=stack.region, endpoint_url=stack.endpoint_url)
    found = []
    for _ in range(10):
        messages = sqs.receive_message(
            QueueUrl=stack.decision_events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            if event.get("detail-type") == "Screening Reviewed" and event["detail"]["submission_id"] == sid:
                found.append(event)
        if found:
            return found
    return found


def test_verdicts_are_write_once_evidence_listed_by_the_signed_digest(api, decided):
    """After the journey above: each verdict and approval left a document in the audit bucket under
    decisions/, and the digest function lists every version of it with the hash of the bytes it read."""
    stack, sid = api["stack"], decided["view"]["submission_id"]
    s3 = stack.client("s3")
    bucket = stack.resources.audit_bucket
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"decisions/{sid}/reviews/").get("Contents", [])
    keys = sorted(o["Key"] for o in listed)
    assert keys == [
        f"decisions/{sid}/reviews/approval-v000001.json",
        f"decisions/{sid}/reviews/verdict-v000001.json",
    ]
    stored = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}
    assert json.loads(stored[keys[1]])["verdict"] == "attack"
    payload, errored = stack.router.invoke("DigestEvidenceFunction", json.dumps({"settle_seconds": 0}))
    assert not errored, payload
    section: dict[str, str] = {}
    for digest in s3.list_objects_v2(Bucket=bucket, Prefix="digests/")["Contents"]:
        body = json.loads(s3.get_object(Bucket=bucket, Key=digest["Key"])["Body"].read())["digest"]
        section |= {e["key"]: e["sha256"] for e in body["entries"] if "/reviews/" in e["key"]}
    assert {k: section.get(k) for k in keys} == {k: hashlib.sha256(v).hexdigest() for k, v in stored.items()}


def test_verify_digests_reports_a_rewritten_review_document(api, decided):
    """After the digest above: an insider who writes a second version of a verdict document (the bucket
    keeps the locked original) is reported by `kycscreen verify-digests`."""
    from kyclocal.commands.verify_digests import digest_report

    stack, sid = api["stack"], decided["view"]["submission_id"]
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    key = f"decisions/{sid}/reviews/verdict-v000001.json"
    before = set(digest_report(stack).problems)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=original.replace(b'"attack"', b'"genuine"'),
        ChecksumAlgorithm="SHA256",
    )
    after = set(digest_report(stack).problems)
    assert any(p.startswith(f"overwritten: {key}") for p in after - before), after - before


def test_backlog_measurement_reports_the_oldest_unreviewed_case_as_a_metric(api, decided):
    """The schedule's run (ReviewBacklogAgeAlarm's metric), against the queue as the API lists it."""
    stack = api["stack"]
    queue = requests.get(api["url"] + "/reviews?state=all", headers=person(api, "audrey"), timeout=10).json()
    unreviewed = [i for i in queue["items"] if i["state"] != "reviewed"]
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    payload, errored = stack.router.invoke("ScreeningApiFunction", json.dumps(scheduled))
    assert not errored, payload
    summary = json.loads(payload)
    assert summary["open_cases"] == len(unreviewed)
    oldest = max((i["age_seconds"] for i in unreviewed), default=0) / 3600
    assert abs(summary["oldest_age_hours"] - oldest) < 0.02
    metrics = [
        line
        for line in stack.log_lines(stack.function_names["ScreeningApiFunction"])
        if "ReviewBacklogOldestAgeHours" in line
    ]
    assert metrics, "no ReviewBacklogOldestAgeHours metric"
    emitted = metrics[-1]
    value = emitted["ReviewBacklogOldestAgeHours"]
    assert (value[0] if isinstance(value, list) else value) == pytest.approx(
        summary["oldest_age_hours"], abs=0.01
    )
    # the dimensions ReviewBacklogAgeAlarm watches (template.yaml): service only
    assert emitted["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert emitted["service"] == "kyc-screening"


# ------------------------------------------------------------------------------------------- erasure
def test_erasing_a_reviewed_case_pseudonymises_its_review_records_and_drops_its_screening_and_export_row(
    api, decided
):
    """Last in the module (it erases the journey's case): GDPR Art. 17 reaches the review API's tables.
    The oracle is the tables and the bucket read directly, and the export as the API serves it."""
    stack, url = api["stack"], api["url"]
    sid, screening_id = decided["view"]["submission_id"], decided["screening"]["screening_id"]
    reason_text = "blending seam along the jaw"  # what alice typed in the journey above
    ddb = stack.client("dynamodb")
    reviews_table = stack.physical_ids["ReviewsTable"]
    screenings_table = stack.physical_ids["ScreeningsTable"]

    def review_items() -> dict[str, dict[str, Any]]:
        page = ddb.query(
            TableName=reviews_table,
            KeyConditionExpression="review_id = :r",
            ExpressionAttributeValues={":r": {"S": sid}},
            ConsistentRead=True,
        )
        return {i["record"]["S"]: i for i in page["Items"]}

    def exported() -> list[dict[str, str]]:
        export = requests.get(url + "/verdicts/export", headers=person(api, "audrey"), timeout=10)
        check_contract(export, "/verdicts/export", "get")
        return [r for r in csv.DictReader(io.StringIO(export.text)) if r["submission_id"] == sid]

    before = review_items()
    assert {"verdict#v000001", "approval#v000001"} <= set(before)
    assert before["verdict#v000001"]["reason"]["S"] == reason_text
    assert before["approval#v000001"]["note"]["S"] == "agree"
    assert exported(), "the reviewed case is exported before erasure"
    screening_item = ddb.get_item(TableName=screenings_table, Key={"screening_id": {"S": screening_id}})[
        "Item"
    ]
    idempotency_table = stack.physical_ids["ApiIdempotencyTable"]
    idempotency_key = {"id": screening_item["idempotency_record"]}  # the record that answers a retry
    assert ddb.get_item(TableName=idempotency_table, Key=idempotency_key).get("Item")
    assert "lease" in review_items()  # alice's, from the journey: a reviewer working on the case
    audit = stack.client("s3")
    documents = audit.list_objects_v2(Bucket=stack.resources.audit_bucket, Prefix=f"decisions/{sid}/reviews/")

    payload, errored = stack.router.invoke(
        "EraseSubmissionFunction", json.dumps({"submission_id": sid, "request_reference": "DSR-20"})
    )

    assert not errored, payload
    answer = json.loads(payload)
    assert answer["outcomes"] == {"ERASED": 1}, answer
    after = review_items()
    text = json.dumps(after)
    assert reason_text not in text and "agree" not in text
    assert set(after) == {"verdict#v000001", "approval#v000001"}  # the lease is gone
    assert answer["submissions"][0]["review_records_pseudonymised"] == 2
    assert answer["submissions"][0]["screening_records_deleted"] == 1
    for record in after.values():
        assert record["erased_at"]["S"]
    # the verdict itself, who gave it and its evidence stay (the human decision is part of the record)
    for name in ("verdict", "attack_type", "reviewer_id", "evidence_sha256", "record_kind", "recorded_at"):
        assert after["verdict#v000001"][name] == before["verdict#v000001"][name]
    assert after["approval#v000001"]["approver_id"] == before["approval#v000001"]["approver_id"]
    assert not ddb.get_item(TableName=screenings_table, Key={"screening_id": {"S": screening_id}}).get("Item")
    assert not ddb.get_item(TableName=idempotency_table, Key=idempotency_key).get("Item")  # its form went too
    gone = signed("GET", f"{url}/screenings/{screening_id}", key="CLIENTA")
    check_contract(gone, "/screenings/{screening_id}", "get")
    assert gone.status_code == 404
    assert exported() == []
    queue = requests.get(url + "/reviews?state=all", headers=person(api, "audrey"), timeout=10).json()
    assert sid not in [i["review_id"] for i in queue["items"]]
    claim = requests.post(f"{url}/reviews/{sid}/claim", headers=person(api, "alice"), timeout=10)
    assert claim.status_code == 409 and claim.json()["error"]["code"] == "NOT_REVIEWABLE"
    # the write-once documents stay as written (docs/erasure.md): same keys, same bytes' ETags
    kept = audit.list_objects_v2(Bucket=stack.resources.audit_bucket, Prefix=f"decisions/{sid}/reviews/")
    assert [(o["Key"], o["ETag"]) for o in kept["Contents"]] == [
        (o["Key"], o["ETag"]) for o in documents["Contents"]
    ]
    evidence = json.loads(
        audit.get_object(Bucket=stack.resources.audit_bucket, Key=f"decisions/{sid}/erasure.json")[
            "Body"
        ].read()
    )
    assert evidence["review_records_pseudonymised"] == 2 and evidence["screening_records_deleted"] == 1
    assert evidence["review_leases_deleted"] == 1
    again, errored = stack.router.invoke("EraseSubmissionFunction", json.dumps({"submission_id": sid}))
    assert not errored and json.loads(again)["outcomes"] == {"ALREADY_ERASED": 1}


def test_erasing_by_reference_removes_screenings_declared_but_never_uploaded(api):
    """GDPR Art. 17 by client reference reaches a declaration with no upload (no decision record exists
    to find it by): its screening item (key, reference, owner) and the Idempotency record that holds its
    form are deleted; another reference's declaration stays. The oracle is the tables read directly."""
    stack, url = api["stack"], api["url"]
    ddb = stack.client("dynamodb")
    screenings_table = stack.physical_ids["ScreeningsTable"]
    idempotency_table = stack.physical_ids["ApiIdempotencyTable"]
    body = {"content_type": "video/mp4", "size": 4096, "client_reference": "DSR-DECLARED-7"}
    first = declare(api, idem="declared-only-0001", **body)
    assert first.status_code == 201, first.text
    screening_id = first.json()["screening_id"]
    retry = declare(api, idem="declared-only-0001", **body)
    assert retry.json()["screening_id"] == screening_id  # the Idempotency record answers the retry
    second = declare(api, idem="declared-only-0002", **body)  # a second declaration, same reference
    other = declare(api, idem="declared-only-0003", **(body | {"client_reference": "OTHER-CLIENT-1"}))
    assert second.status_code == other.status_code == 201

    def idempotency_ids() -> set[str]:
        return {i["id"]["S"] for i in ddb.scan(TableName=idempotency_table, ConsistentRead=True)["Items"]}

    def screening(sid: str) -> dict[str, Any] | None:
        return ddb.get_item(
            TableName=screenings_table, Key={"screening_id": {"S": sid}}, ConsistentRead=True
        ).get("Item")

    records_before = idempotency_ids()
    mine = {screening(s)["idempotency_record"]["S"] for s in (screening_id, second.json()["screening_id"])}
    assert mine <= records_before and len(mine) == 2

    payload, errored = stack.router.invoke(
        "EraseSubmissionFunction",
        json.dumps({"client_reference": "DSR-DECLARED-7", "request_reference": "DSR-21"}),
    )

    assert not errored, payload
    answer = json.loads(payload)
    assert answer["outcomes"] == {"DECLARATION_ERASED": 2}, answer
    assert {r["screening_id"] for r in answer["submissions"]} == {screening_id, second.json()["screening_id"]}
    for result in answer["submissions"]:
        assert result["screening_records_deleted"] == 1 and result["idempotency_records_deleted"] == 1
        assert result["upload_form_valid_until"]  # the form is still live: the answer says so
    assert screening(screening_id) is None and screening(second.json()["screening_id"]) is None
    assert idempotency_ids() == records_before - mine
    assert screening(other.json()["screening_id"]) is not None  # another reference is untouched
    gone = signed("GET", f"{url}/screenings/{screening_id}", key="CLIENTA")
    assert gone.status_code == 404
    # a retry with the erased key is a new declaration now, not the erased answer
    again = declare(api, idem="declared-only-0001", **body)
    assert again.status_code == 201 and again.json()["screening_id"] != screening_id
    # and a second erasure finds exactly that new declaration, nothing of the erased ones
    payload, _ = stack.router.invoke(
        "EraseSubmissionFunction", json.dumps({"client_reference": "DSR-DECLARED-7"})
    )
    assert [r["screening_id"] for r in json.loads(payload)["submissions"]] == [again.json()["screening_id"]]
