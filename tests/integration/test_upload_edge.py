"""The upload edge over real HTTP: handler -> presigned POST -> multipart POST with ``requests``.

S3 is moto 5.2.5 in server mode (ThreadedMotoServer on 127.0.0.1, a free port) with a versioned intake
bucket whose default encryption is SSE-KMS with the stack key, as in template.yaml.

**What moto enforces and what it does not** (checked against moto/s3/responses.py
``_bucket_response_post``): moto stores the object under the form's ``key`` field with the form's
``Content-Type`` and ``x-amz-meta-*`` fields and applies the bucket's default encryption. It does **not**
verify the POST policy at all: no signature, no expiry, no ``content-length-range``, no field conditions.
So the refusals are asserted twice, honestly labelled:

1. ``test_moto_gap_*`` pins today's gap: moto *accepts* a tampered form. If a moto upgrade starts
   enforcing policies, that test fails and the refusal tests below should move to plain moto.
2. The refusal tests POST through ``PolicyCheckingGateway``, a small HTTP front written here that applies
   S3's documented POST-policy rules (SigV4 signature over the policy, expiration, every condition,
   every form field covered by a condition) and forwards accepted forms to moto unchanged. It is a
   reference model of S3's behaviour, not S3: the staging test in docs/upload-edge.md is the real proof.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.unit.functions.handler_loader import FakeContext, load_handler

BUCKET = "kyc-intake"
MOTO_DUMMY_SIGNER = (
    "local"  # moto server accepts any credential; the gateway verifies signatures with this one
)
REGION = "us-east-1"
VIDEO = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4  # 1036 bytes; content is not inspected here
MAX_UPLOAD_BYTES = 4096


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------------------
# reference model of S3's POST-policy enforcement, in front of moto
# --------------------------------------------------------------------------------------------------------
class PolicyRefusedError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _signing_key(secret: str, credential: str) -> bytes:
    _access_key, date, region, service, terminal = credential.split("/")
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check_post_policy(form: dict[str, str], file_size: int, secret: str) -> None:
    """S3's documented rules for a browser-based (POST) upload; raises what S3 would answer."""
    fields = {k.lower(): v for k, v in form.items()}
    try:
        policy_b64 = form["policy"]
        policy = json.loads(base64.b64decode(policy_b64))
        signature = fields["x-amz-signature"]
        credential = fields["x-amz-credential"]
    except (KeyError, ValueError) as exc:
        raise PolicyRefusedError(403, "AccessDenied", "missing or malformed policy") from exc
    expected = hmac.new(_signing_key(secret, credential), policy_b64.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise PolicyRefusedError(403, "SignatureDoesNotMatch", "the policy signature does not match")
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if datetime.now(UTC) >= expires:
        raise PolicyRefusedError(403, "AccessDenied", "Invalid according to Policy: Policy expired")
    covered = {"x-amz-signature", "policy", "file"}
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            ((name, value),) = condition.items()
            op, name = "eq", name.lower()
        elif condition[0] == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if not low <= file_size <= high:
                status, code = (400, "EntityTooLarge") if file_size > high else (400, "EntityTooSmall")
                raise PolicyRefusedError(status, code, "Your proposed upload is outside the allowed size")
            continue
        else:
            op, name, value = condition[0], condition[1].lstrip("$").lower(), condition[2]
        covered.add(name)
        actual = fields.get(name, "") if name != "bucket" else BUCKET
        ok = actual == value if op == "eq" else actual.startswith(value)
        if not ok:
            raise PolicyRefusedError(
                403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {name}"
            )
    extra = sorted(n for n in fields if n not in covered and not n.startswith("x-ignore-"))
    if extra:
        raise PolicyRefusedError(
            403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}"
        )


class PolicyCheckingGateway:
    """HTTP front: checks the form like S3 would, then forwards the identical form to moto."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = _free_port()
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PolicyCheckingGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def url_for(self, moto_url: str) -> str:
        return moto_url.replace(self.upstream, f"http://127.0.0.1:{self.port}")

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        form = dict(request.form)
        upload = request.files["file"]
        data = upload.read()
        try:
            check_post_policy(form, len(data), MOTO_DUMMY_SIGNER)
        except PolicyRefusedError as exc:
            body = f"<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message></Error>"
            return Response(body, status=exc.status, content_type="application/xml")(environ, start_response)
        forwarded = requests.post(
            f"{self.upstream}{request.path}",
            data=form,
            files={"file": (upload.filename, data, upload.mimetype)},
            timeout=30,
        )
        return Response(forwarded.content, status=forwarded.status_code)(environ, start_response)


# --------------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def edge() -> Iterator[dict[str, Any]]:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": MOTO_DUMMY_SIGNER,  # dummy credential for the local moto server
            "AWS_DEFAULT_REGION": REGION,
        }
        for name, value in env.items():
            mp.setenv(name, value)
        s3 = boto3.client("s3", region_name=REGION)
        key_arn = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": key_arn,
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        app = load_handler(
            "presign",
            {
                "KYC_INTAKE_BUCKET": BUCKET,
                "KYC_UPLOAD_PREFIX": "uploads/",
                "KYC_KMS_KEY_ID": key_arn,
                "KYC_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
                "KYC_UPLOAD_URL_EXPIRY_S": "300",
            }
            | env,
            mp,
        )
        with PolicyCheckingGateway(endpoint) as gateway:
            yield {"s3": s3, "app": app, "key_arn": key_arn, "endpoint": endpoint, "gateway": gateway}
    server.stop()


def _issue(edge: dict[str, Any], **declaration: Any) -> dict[str, Any]:
    event = {
        "resource": "/uploads",
        "path": "/uploads",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "requestContext": {
            "resourcePath": "/uploads",
            "httpMethod": "POST",
            "stage": "v1",
            "requestId": "req-it",
            "identity": {"userArn": "arn:aws:sts::123456789012:assumed-role/backend/s"},
        },
        "body": json.dumps(declaration),
        "isBase64Encoded": False,
    }
    response = edge["app"].lambda_handler(event, FakeContext())
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def _post(
    url: str, fields: dict[str, str], data: bytes, *, filename: str = "selfie.mp4"
) -> requests.Response:
    return requests.post(url, data=fields, files={"file": (filename, data, "video/mp4")}, timeout=30)


DECLARATION = {"content_type": "video/mp4", "size": len(VIDEO), "client_reference": "ACME-7"}


# --------------------------------------------------------------------------------------------------------
# what moto itself enforces
# --------------------------------------------------------------------------------------------------------
def test_upload_edge_correct_upload_lands_under_generated_key_with_sse_kms(edge):
    issued = _issue(edge, **DECLARATION)
    response = _post(
        issued["upload"]["url"], issued["upload"]["fields"], VIDEO, filename="../../passport.mp4"
    )
    assert response.status_code == 204, response.text
    head = edge["s3"].head_object(Bucket=BUCKET, Key=issued["key"])
    assert head["ContentLength"] == len(VIDEO)
    assert head["ContentType"] == "video/mp4"
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == edge["key_arn"]
    assert head["Metadata"] == {"client-reference": "ACME-7"}
    assert head["VersionId"]
    keys = [o["Key"] for o in edge["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert not [k for k in keys if "passport" in k], "the user's filename must never become a key"


def test_moto_gap_post_policy_is_not_enforced_by_moto(edge):
    """Pins the gap: moto 5.2.5 stores a form whose key, type and size all break the signed policy."""
    issued = _issue(edge, **DECLARATION)
    tampered = dict(issued["upload"]["fields"], key="elsewhere/evil.html")
    tampered["Content-Type"] = "text/html"
    response = _post(issued["upload"]["url"], tampered, VIDEO * 2)
    assert response.status_code == 204, "moto now enforces POST policies: move the refusal tests to moto"
    edge["s3"].delete_object(Bucket=BUCKET, Key="elsewhere/evil.html")


# --------------------------------------------------------------------------------------------------------
# what S3 refuses, through the reference model of its policy rules
# --------------------------------------------------------------------------------------------------------
def test_upload_edge_gateway_accepts_the_form_as_issued(edge):
    issued = _issue(edge, **DECLARATION)
    url = edge["gateway"].url_for(issued["upload"]["url"])
    response = _post(url, issued["upload"]["fields"], VIDEO)
    assert response.status_code == 204, response.text
    assert edge["s3"].head_object(Bucket=BUCKET, Key=issued["key"])["ContentLength"] == len(VIDEO)


@pytest.mark.parametrize(
    ("tamper", "body", "status", "code"),
    [
        ("none", VIDEO + b"x", 400, "EntityTooLarge"),  # one byte more than declared
        ("content_type", VIDEO, 403, "AccessDenied"),
        ("key", VIDEO, 403, "AccessDenied"),
        ("kms_key", VIDEO, 403, "AccessDenied"),
        ("drop_sse", VIDEO, 403, "AccessDenied"),
        ("reference", VIDEO, 403, "AccessDenied"),
        ("extra_metadata", VIDEO, 403, "AccessDenied"),
        ("policy", VIDEO, 403, "SignatureDoesNotMatch"),
        ("none", b"", 400, "EntityTooSmall"),
    ],
)
def test_upload_edge_tampered_form_is_refused_and_nothing_is_stored(edge, tamper, body, status, code):
    issued = _issue(edge, **DECLARATION)
    fields = dict(issued["upload"]["fields"])
    if tamper == "content_type":
        fields["Content-Type"] = "text/html"
    elif tamper == "key":
        fields["key"] = "uploads/ACME-7/chosen-by-attacker.mp4"
    elif tamper == "kms_key":
        fields["x-amz-server-side-encryption-aws-kms-key-id"] = "arn:aws:kms:us-east-1:999999999999:key/other"
    elif tamper == "drop_sse":
        del fields["x-amz-server-side-encryption"]
    elif tamper == "reference":
        fields["x-amz-meta-client-reference"] = "SOMEONE-ELSE"
    elif tamper == "extra_metadata":
        fields["x-amz-meta-decision"] = "PASS"
    elif tamper == "policy":
        policy = json.loads(base64.b64decode(fields["policy"]))
        policy["conditions"] = [c for c in policy["conditions"] if not isinstance(c, list)]
        fields["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
    before = {o["Key"] for o in edge["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    response = _post(edge["gateway"].url_for(issued["upload"]["url"]), fields, body)
    assert response.status_code == status, response.text
    assert f"<Code>{code}</Code>" in response.text
    after = {o["Key"] for o in edge["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert after == before


def test_upload_edge_declared_size_above_max_gets_no_form(edge):
    event_body = {"content_type": "video/mp4", "size": MAX_UPLOAD_BYTES + 1}
    response = edge["app"].lambda_handler(
        {
            "resource": "/uploads",
            "path": "/uploads",
            "httpMethod": "POST",
            "headers": {},
            "requestContext": {
                "resourcePath": "/uploads",
                "httpMethod": "POST",
                "requestId": "r",
                "identity": {},
            },
            "body": json.dumps(event_body),
            "isBase64Encoded": False,
        },
        FakeContext(),
    )
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "TOO_LARGE"
