"""IssueUploadUrl: POST /uploads under moto in-process; and the template wiring of the upload edge."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode
from moto import mock_aws

from tests.unit.functions.handler_loader import FakeContext, expected_pseudonym, load_handler
from tests.unit.iac.test_template import _role_policy_documents

BUCKET = "intake"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000001"
CALLER = "arn:aws:sts::123456789012:assumed-role/onboarding-backend/session"
TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield load_handler(
            "presign",
            {
                "KYC_INTAKE_BUCKET": BUCKET,
                "KYC_UPLOAD_PREFIX": "uploads/",
                "KYC_KMS_KEY_ID": KEY_ARN,
                "KYC_MAX_UPLOAD_BYTES": "1000",
                "KYC_UPLOAD_URL_EXPIRY_S": "300",
            },
            monkeypatch,
        )


def _event(body: str | None, path: str = "/uploads", method: str = "POST") -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": "req-1",
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"userArn": CALLER, "caller": "AROAEXAMPLE:session", "sourceIp": "203.0.113.9"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _call(app: Any, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    raw = body if isinstance(body, str) or body is None else json.dumps(body)
    response = app.lambda_handler(_event(raw, **kwargs), FakeContext())
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    return response["statusCode"], json.loads(response["body"]), headers | (response.get("headers") or {})


def _policy(fields: dict[str, str]) -> dict[str, Any]:
    return json.loads(base64.b64decode(fields["policy"]))


def test_presign_valid_declaration_returns_200_with_signed_form(app):
    status, body, headers = _call(
        app, {"content_type": "video/mp4", "size": 800, "client_reference": "ACME-42"}
    )
    assert status == 200
    assert set(body) == {"upload", "key", "expires_in"} and set(body["upload"]) == {"url", "fields"}
    assert body["expires_in"] == 300
    assert headers.get("Cache-Control") == "no-store"
    key = body["key"]
    # The folder is the keyed pseudonym of the reference (HMAC under the KMS key), never the reference.
    folder = expected_pseudonym("ACME-42").replace(":", "-")
    assert key.startswith(f"uploads/{folder}/") and key.endswith(".mp4")
    assert "ACME-42" not in key and "acme-42" not in key.lower()
    fields = body["upload"]["fields"]
    assert fields["key"] == key
    assert fields["Content-Type"] == "video/mp4"
    assert fields["x-amz-server-side-encryption"] == "aws:kms"
    assert fields["x-amz-server-side-encryption-aws-kms-key-id"] == KEY_ARN
    assert fields["x-amz-meta-client-reference"] == "ACME-42"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and fields["x-amz-signature"]
    assert BUCKET in body["upload"]["url"]


def test_presign_signed_policy_pins_bucket_key_size_type_encryption_and_reference(app):
    _, body, _ = _call(app, {"content_type": "video/webm", "size": 42, "client_reference": "r1"})
    policy = _policy(body["upload"]["fields"])
    conditions = policy["conditions"]
    for expected in (
        {"bucket": BUCKET},
        {"key": body["key"]},
        ["content-length-range", 1, 42],
        {"Content-Type": "video/webm"},
        {"x-amz-server-side-encryption": "aws:kms"},
        {"x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN},
        {"x-amz-meta-client-reference": "r1"},
    ):
        assert expected in conditions, expected
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 250 <= (expires - datetime.now(UTC)).total_seconds() <= 301


def test_presign_two_calls_get_two_distinct_keys(app):
    keys = {_call(app, {"content_type": "video/mp4", "size": 1})[1]["key"] for _ in range(3)}
    assert len(keys) == 3 and all(k.startswith("uploads/anonymous/") for k in keys)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"content_type": "video/x-msvideo", "size": 10}, "UNSUPPORTED_CONTENT_TYPE"),
        ({"content_type": "video/mp4", "size": 1001}, "TOO_LARGE"),
        ({"content_type": "video/mp4", "size": 0}, "INVALID_SIZE"),
        ({"content_type": "video/mp4", "size": 10, "client_reference": "../x"}, "INVALID_CLIENT_REFERENCE"),
        ({"content_type": "video/mp4", "size": 10, "filename": "me.mp4"}, "INVALID_BODY"),
        ("{not json", "INVALID_BODY"),
        ("[]", "INVALID_BODY"),
        (None, "INVALID_BODY"),
        ('{"content_type": "video/mp4", "size": 1, "pad": "' + "x" * 5000 + '"}', "INVALID_BODY"),
    ],
)
def test_presign_bad_declaration_returns_400_with_code_and_no_trace(app, body, code):
    status, answer, _ = _call(app, body)
    assert status == 400
    assert answer["error"]["code"] == code
    assert answer["error"]["message"] and "Traceback" not in json.dumps(answer)
    assert set(answer) == {"error"}


def test_presign_unknown_route_returns_404(app):
    status, _, _ = _call(app, {"content_type": "video/mp4", "size": 1}, path="/other")
    assert status == 404


def test_presign_log_names_neither_key_nor_reference(app, caplog):
    caplog.set_level("INFO")
    _, body, _ = _call(app, {"content_type": "video/mp4", "size": 5, "client_reference": "SECRET-REF-9"})
    (issued,) = [r for r in caplog.records if r.getMessage() == "upload url issued"]
    assert issued.caller == CALLER and issued.declared_size == 5
    logs = " ".join(str(r.__dict__) for r in caplog.records)
    assert "SECRET-REF-9" not in logs and body["key"] not in logs


def test_presign_unusable_pseudonym_key_issues_no_form(monkeypatch):
    """KMS refuses the MAC (here: an encryption key where the HMAC key belongs): the handler fails, so
    API Gateway answers 502 and no form is issued with a weaker key. Without a reference, no MAC is
    needed and the form is issued."""
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        wrong = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        env = {
            "KYC_INTAKE_BUCKET": BUCKET,
            "KYC_KMS_KEY_ID": KEY_ARN,
            "KYC_MAX_UPLOAD_BYTES": "1000",
            "KYC_PSEUDONYM_KEY_ARN": wrong,
        }
        app = load_handler("presign", env, monkeypatch)
        with pytest.raises(Exception, match="InvalidKeyUsage"):
            _call(app, {"content_type": "video/mp4", "size": 5, "client_reference": "ACME-42"})
        status, body, _ = _call(app, {"content_type": "video/mp4", "size": 5})
        assert status == 200 and body["key"].startswith("uploads/anonymous/")


# --------------------------------------------------------------------------------------------------------
# template wiring (the lead may move these into tests/unit/iac/test_template.py)
# --------------------------------------------------------------------------------------------------------
EDGE = {
    "IssueUploadUrlFunctionRole",
    "IssueUploadUrlFunction",
    "IssueUploadUrlLogGroup",
    "UploadApi",
    "UploadApiAccessLogGroup",
    "UploadApiExecutionLogGroup",
    "UploadApiWebAcl",
    "UploadApiWebAclAssociation",
    "UploadApiWafLogGroup",
    "UploadApiWafLogging",
    "IssueUploadUrlErrorsAlarm",
    "IssueUploadUrlThrottlesAlarm",
    "UploadApi5XXErrorAlarm",
    "UploadApiWafBlockedAlarm",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    tpl, matches = decode(str(TEMPLATE))
    assert not matches
    return tpl


def test_template_upload_edge_is_off_by_default_and_every_resource_is_conditional(template):
    assert template["Parameters"]["EnableUploadApi"]["Default"] == "false"
    assert template["Conditions"]["IsUploadApiEnabled"] == {
        "Fn::Equals": [{"Ref": "EnableUploadApi"}, "true"]
    }
    resources = template["Resources"]
    assert EDGE - set(resources) == set()
    for lid in EDGE:
        assert resources[lid].get("Condition") == "IsUploadApiEnabled", lid
    for lid in ("UploadApiUrl", "UploadApiWebAclArn"):
        assert template["Outputs"][lid]["Condition"] == "IsUploadApiEnabled"


def test_template_upload_api_is_iam_authorised_throttled_traced_and_logged(template):
    props = template["Resources"]["UploadApi"]["Properties"]
    assert props["Auth"] == {"DefaultAuthorizer": "AWS_IAM", "InvokeRole": "NONE"}
    assert props["TracingEnabled"] is True
    assert props["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["UploadApiAccessLogGroup", "Arn"]}
    (setting,) = props["MethodSettings"]
    assert setting["DataTraceEnabled"] is False
    assert setting["ThrottlingRateLimit"] == {"Ref": "UploadApiRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "UploadApiBurstLimit"}
    event = template["Resources"]["IssueUploadUrlFunction"]["Properties"]["Events"]["PostUploads"][
        "Properties"
    ]
    assert (event["Path"], event["Method"]) == ("/uploads", "POST")
    assert event["RequestModel"]["ValidateBody"] is True and event["RequestModel"]["Required"] is True


def test_template_waf_has_rate_rule_and_managed_groups_and_guards_the_stage(template):
    acl = template["Resources"]["UploadApiWebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL"
    rules = {r["Name"]: r for r in acl["Rules"]}
    assert rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]["Limit"] == {
        "Ref": "UploadApiWafRateLimit"
    }
    for group in (
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ):
        assert rules[group]["Statement"]["ManagedRuleGroupStatement"] == {"VendorName": "AWS", "Name": group}
    assoc = template["Resources"]["UploadApiWebAclAssociation"]["Properties"]
    assert "/restapis/${UploadApi}/stages/${UploadApi.Stage}" in assoc["ResourceArn"]["Fn::Sub"]
    log_name = template["Resources"]["UploadApiWafLogGroup"]["Properties"]["LogGroupName"]["Fn::Sub"]
    assert log_name.startswith("aws-waf-logs-")
    redacted = template["Resources"]["UploadApiWafLogging"]["Properties"]["RedactedFields"]
    assert {"SingleHeader": {"Name": "x-amz-security-token"}} in redacted


def test_template_presign_role_may_only_put_under_the_upload_prefix_with_the_stack_key(template):
    (document,) = _role_policy_documents(template, "IssueUploadUrlFunctionRole")
    # Statements under the VPC condition are {"Fn::If": [...]}; the plain ones carry a Sid.
    statements = {st["Sid"]: st for st in document["Statement"] if "Sid" in st}
    put = statements["SignUploadsUnderThePrefix"]
    assert put["Action"] == ["s3:PutObject"]
    assert put["Resource"] == {"Fn::Sub": "${IntakeBucket.Arn}/${UploadPrefix}*"}
    assert put["Condition"]["StringEquals"]["s3:x-amz-server-side-encryption-aws-kms-key-id"] == {
        "Fn::GetAtt": ["ScreeningKey", "Arn"]
    }
    assert statements["EncryptUploadsWithStackKey"]["Action"] == ["kms:GenerateDataKey"]
    assert statements["MakeKeyedPseudonyms"]["Resource"] == {"Fn::GetAtt": ["PseudonymKey", "Arn"]}
    actions = {a for st in statements.values() for a in st["Action"]}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "s3:PutObject",
        "kms:GenerateDataKey",
        "kms:GenerateMac",
    }
