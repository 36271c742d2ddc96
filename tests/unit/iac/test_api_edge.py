"""The edges of the issue-20 API in template.yaml: how people sign in, what API Gateway itself answers.

The workbench's app client allows SRP and refresh only (the page proves the password, it never sends
it: web/js/srp.js); API Gateway's own 4XX answers (no token, a bad token, a denied call) carry the
workbench's CORS headers, so the page can read them and say why, and the API's JSON error shape with a
stable code (docs/openapi.yaml ``Error``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _resources(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == rtype}


def test_workbench_client_allows_srp_and_refresh_only(template: dict[str, Any]) -> None:
    (client,) = _resources(template, "AWS::Cognito::UserPoolClient").values()
    props = client["Properties"]
    assert sorted(props["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]
    assert props["GenerateSecret"] is False  # a page keeps no secret
    assert props["PreventUserExistenceErrors"] == "ENABLED"


# What API Gateway can answer by itself on the review and screening API: the authorizer's refusals
# (UNAUTHORIZED, ACCESS_DENIED), IAM's (MISSING_AUTHENTICATION_TOKEN, INVALID_SIGNATURE, EXPIRED_TOKEN),
# the firewall, throttling, the request validator, and any other 4XX or 5XX (DEFAULT_*).
ALWAYS_ANSWERED = {
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "UNAUTHORIZED",
    "ACCESS_DENIED",
    "MISSING_AUTHENTICATION_TOKEN",
    "INVALID_SIGNATURE",
    "EXPIRED_TOKEN",
    "WAF_FILTERED",
    "THROTTLED",
    "BAD_REQUEST_BODY",
}
STATUS = {"UNAUTHORIZED": 401, "ACCESS_DENIED": 403, "MISSING_AUTHENTICATION_TOKEN": 403, "THROTTLED": 429}


def _error_schema() -> dict[str, Any]:
    """docs/openapi.yaml's Error schema with its ErrorCode enum (what clients and the page parse)."""
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    schemas = spec["components"]["schemas"]
    error = json.loads(json.dumps(schemas["Error"]))
    error["properties"]["error"]["properties"]["code"] = schemas["ErrorCode"]
    return error


def _handler_cors_origin(template: dict[str, Any]) -> Any:
    env = template["Resources"]["ScreeningApiFunction"]["Properties"]["Environment"]["Variables"]
    return env["KYC_CORS_ORIGIN"]


def _quoted(expression: Any) -> Any:
    """The handler's origin expression as a gateway-response header value: each string in single quotes."""
    if isinstance(expression, str):
        return f"'{expression}'"
    if isinstance(expression, dict) and "Fn::If" in expression:
        condition, yes, no = expression["Fn::If"]
        return {"Fn::If": [condition, _quoted(yes), _quoted(no)]}
    if isinstance(expression, dict) and "Fn::Sub" in expression:
        return {"Fn::Sub": f"'{expression['Fn::Sub']}'"}
    if isinstance(expression, dict) and "Ref" in expression:
        return {"Fn::Sub": "'${" + expression["Ref"] + "}'"}
    raise AssertionError(f"unexpected origin expression {expression!r}")


def test_every_gateway_answer_carries_the_workbench_origin_and_the_error_shape(
    template: dict[str, Any],
) -> None:
    responses = template["Resources"]["ScreeningApi"]["Properties"]["GatewayResponses"]
    assert set(responses) >= ALWAYS_ANSWERED
    origin = _quoted(_handler_cors_origin(template))
    schema = _error_schema()
    for name, response in responses.items():
        headers = response["ResponseParameters"]["Headers"]
        # the same origin the handler answers CORS for, never a wildcard: a 401 the page can read
        assert headers["Access-Control-Allow-Origin"] == origin, name
        assert headers["Vary"] == "'Origin'", name
        body = json.loads(response["ResponseTemplates"]["application/json"])
        jsonschema.validate(body, schema)  # the API's own error shape and a documented, stable code
        assert "$" not in json.dumps(body), name  # static: nothing from the request is echoed
        if name in STATUS:
            assert int(response["StatusCode"]) == STATUS[name], name
        if name.startswith("DEFAULT_"):
            assert "StatusCode" not in response, name  # keeps the real status (404, 413, 504...)
    assert json.loads(responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"])["error"][
        "code"
    ] == ("UNAUTHORIZED")


def test_transformed_api_definition_carries_the_gateway_answers(transformed: dict[str, Any]) -> None:
    """After the SAM transform, the REST API's definition holds them with API Gateway's own prefixes."""
    api = transformed["Resources"]["ScreeningApi"]
    assert api["Type"] == "AWS::ApiGateway::RestApi"
    answers = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    assert set(answers) >= ALWAYS_ANSWERED
    for name, answer in answers.items():
        params = answer["responseParameters"]
        assert "gatewayresponse.header.Access-Control-Allow-Origin" in params, name
        assert params["gatewayresponse.header.Vary"] == "'Origin'", name


def test_local_gateway_answers_refusals_with_the_workbench_origin() -> None:
    """The local API gateway reads the same GatewayResponses (kyclocal.api_gateway): its own 401 and 403
    carry the origin the handler answers CORS for, and the documented error shape."""
    from kyclocal.api_gateway import LocalApiGateway
    from kyclocal.cognito import LocalPool
    from kyclocal.template import read_template

    pool = LocalPool("eu-west-1_Local", "client", ("reviewer",), "http://127.0.0.1:9", "eu-west-1")
    origin = "http://127.0.0.1:4700"
    schema = _error_schema()
    with LocalApiGateway(lambda *a: (b"", True), read_template(), pool, cors_origin=origin) as gateway:
        for target, status, code in (
            ("/v1/reviews", 401, "UNAUTHORIZED"),  # no token: the authorizer refuses
            ("/v1/no-such-route", 403, "FORBIDDEN"),
        ):
            got_status, headers, body = gateway.handle("GET", target, {}, b"")
            assert got_status == status, target
            assert headers["Access-Control-Allow-Origin"] == origin and headers["Vary"] == "Origin"
            answer = json.loads(body)
            jsonschema.validate(answer, schema)
            assert answer["error"]["code"] == code
    # no workbench origin set: no CORS header at all (never a wildcard)
    with LocalApiGateway(lambda *a: (b"", True), read_template(), pool) as bare:
        assert "Access-Control-Allow-Origin" not in bare.handle("GET", "/v1/reviews", {}, b"")[1]
