"""The API of template.yaml over local HTTP: API Gateway's part, and only that.

Routes, methods and each route's authoriser come from the ``Api`` events of the template's functions
(the same table ``sam deploy`` turns into the REST API). A request is authenticated as API Gateway
would (``AWS_IAM``: a SigV4 ``Authorization`` header, whose access key id names the principal, the
signature unchecked since moto's credentials are dummies; the Cognito authorizer: an ID token verified
against the pool's JWKS, expiry, issuer, audience and ``token_use``), translated into the REST proxy
event, and handed to the real handler through the stack's Lambda router. Gateway-made refusals carry
the template's ``GatewayResponses`` bodies. Everything else (authorisation by groups, ownership, the
rules) is the handler's, exactly as deployed.

Optionally it also serves a static folder (the workbench) at ``/``, so the page and the API share one
origin locally, as they do behind one CloudFront distribution.
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from kyclocal.cognito import LocalPool

STAGE = "v1"
ACCOUNT = "123456789012"
_SIGV4 = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([A-Za-z0-9]{1,128})/")
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # the template's resource path, e.g. /reviews/{review_id}
    function: str  # logical id
    auth: str  # AWS_IAM | NONE | the Cognito authorizer's name
    pattern: re.Pattern[str]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.pattern.fullmatch(path)
        return {k: unquote(v) for k, v in found.groupdict().items()} if found else None


def _pattern(path: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex)


def routes_from_template(source: dict[str, Any], api_logical_id: str) -> list[Route]:
    """Every ``Api`` event on ``api_logical_id`` with its authoriser (the event's, or the API's default)."""
    api = source["Resources"][api_logical_id]["Properties"]
    default = (api.get("Auth") or {}).get("DefaultAuthorizer", "NONE")
    routes = []
    for logical_id, resource in source["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            props = event.get("Properties") or {}
            if event.get("Type") != "Api" or props.get("RestApiId") != {"Ref": api_logical_id}:
                continue
            auth = (props.get("Auth") or {}).get("Authorizer", default)
            path = props["Path"]
            routes.append(Route(props["Method"].upper(), path, logical_id, auth, _pattern(path)))
    # literal paths before parameterised ones, greedy ones last (API Gateway prefers the most specific)
    return sorted(routes, key=lambda r: (r.path.count("+}"), r.path.count("{"), -len(r.path)))


def gateway_responses(source: dict[str, Any], api_logical_id: str) -> dict[str, tuple[int, str]]:
    api = source["Resources"][api_logical_id]["Properties"]
    out = {}
    for kind, spec in (api.get("GatewayResponses") or {}).items():
        body = (spec.get("ResponseTemplates") or {}).get("application/json", "")
        out[kind] = (int(spec.get("StatusCode", 500)), body)
    return out


def gateway_response_headers(
    source: dict[str, Any], api_logical_id: str, cors_origin: str = ""
) -> dict[str, dict[str, str]]:
    """The static headers of each gateway response (``ResponseParameters.Headers``; API Gateway's
    values are quoted literals, ``"'Origin'"``), e.g. the CORS header that lets a page read a 401.

    A value the template computes (the workbench origin: ``Fn::If`` of the distribution's domain or
    ``WorkbenchOrigin``) names a deployed resource; locally it is ``cors_origin``, the origin the API
    handler answers CORS for (``KYC_CORS_ORIGIN``), and the header is left out when there is none.
    """
    api = source["Resources"][api_logical_id]["Properties"]
    out = {}
    for kind, spec in (api.get("GatewayResponses") or {}).items():
        headers = ((spec.get("ResponseParameters") or {}).get("Headers")) or {}
        resolved = {}
        for name, value in headers.items():
            literal = value.strip("'") if isinstance(value, str) else cors_origin
            if literal:
                resolved[name] = literal
        out[kind] = resolved
    return out


class TokenVerifier:
    """An ID token checked as API Gateway's Cognito authorizer checks it, against the pool's JWKS."""

    def __init__(self, pool: LocalPool) -> None:
        self.pool = pool
        self._keys: Any = None

    def _keyset(self) -> Any:
        if self._keys is None:
            import requests
            from joserfc.jwk import KeySet

            self._keys = KeySet.import_key_set(requests.get(self.pool.jwks_url, timeout=10).json())
        return self._keys

    def claims(self, header: str | None) -> dict[str, Any] | None:
        from joserfc import jwt
        from joserfc.errors import JoseError

        if not header:
            return None
        raw = header[7:] if header.lower().startswith("bearer ") else header
        try:
            token = jwt.decode(raw.strip(), self._keyset(), algorithms=["RS256"])
        except (JoseError, ValueError):
            return None
        claims = dict(token.claims)
        if (
            claims.get("iss") != self.pool.issuer
            or claims.get("token_use") != "id"
            or claims.get("aud") != self.pool.client_id
            or not isinstance(claims.get("exp"), int)
            or claims["exp"] <= time.time()
            or not claims.get("sub")
        ):
            return None
        return claims


def _claims_as_api_gateway_passes_them(claims: dict[str, Any]) -> dict[str, str]:
    """REST API's Cognito authorizer hands the handler every claim as a string; a list as ``"a,b"``."""
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in claims.items()}


class LocalApiGateway:
    """``with LocalApiGateway(stack, port=...) as gw:`` serves ``gw.url`` (the stage root, ``.../v1``)."""

    def __init__(
        self,
        invoke: Any,
        source: dict[str, Any],
        pool: LocalPool,
        *,
        api_logical_id: str = "ScreeningApi",
        port: int = 0,
        static_root: Path | None = None,
        cors_origin: str = "",
    ) -> None:
        self.routes = routes_from_template(source, api_logical_id)
        self.responses = gateway_responses(source, api_logical_id)
        self.response_headers = gateway_response_headers(source, api_logical_id, cors_origin)
        self.verifier = TokenVerifier(pool)
        self.invoke = invoke  # (logical id, event JSON) -> (payload bytes, errored), the Lambda router's
        self.static_root = static_root
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/{STAGE}"
        self._thread: threading.Thread | None = None

    def start(self) -> LocalApiGateway:
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self) -> LocalApiGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ one request
    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        prefix = f"/{STAGE}"
        if not (split.path == prefix or split.path.startswith(prefix + "/")):
            return self._static(split.path)
        path = split.path[len(prefix) :] or "/"
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                break
        else:
            return self._gateway("MISSING_AUTHENTICATION_TOKEN", 403)
        lower = {k.lower(): v for k, v in headers.items()}
        identity: dict[str, Any] = {
            "sourceIp": "127.0.0.1",
            "userArn": None,
            "caller": None,
            "accessKey": None,
        }
        authorizer = None
        if route.auth == "AWS_IAM":
            found = _SIGV4.match(lower.get("authorization", ""))
            if not found:
                return self._gateway("MISSING_AUTHENTICATION_TOKEN", 403)
            key_id = found.group(1)
            identity |= {
                "userArn": f"arn:aws:iam::{ACCOUNT}:user/{key_id}",
                "caller": key_id,
                "accessKey": key_id,
            }
        elif route.auth != "NONE":
            claims = self.verifier.claims(lower.get("authorization"))
            if claims is None:
                return self._gateway("UNAUTHORIZED", 401)
            authorizer = {"claims": _claims_as_api_gateway_passes_them(claims)}
        query = parse_qs(split.query, keep_blank_values=True)
        event = {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": split.path,
                "stage": STAGE,
                "requestId": str(uuid.uuid4()),
                "accountId": ACCOUNT,
                "apiId": "local",
                "identity": identity,
                "authorizer": authorizer,
                "requestTimeEpoch": int(time.time() * 1000),
            },
            "body": body.decode("utf-8", errors="replace") if body else None,
            "isBase64Encoded": False,
        }
        payload, errored = self.invoke(route.function, json.dumps(event))
        if errored:
            return self._gateway("DEFAULT_5XX", 502)
        result = json.loads(payload)
        out_headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(values)
        data = result.get("body") or ""
        raw = (
            data.encode("utf-8")
            if not result.get("isBase64Encoded")
            else __import__("base64").b64decode(data)
        )
        return int(result.get("statusCode", 200)), out_headers, raw

    def _gateway(self, kind: str, default_status: int) -> tuple[int, dict[str, str], bytes]:
        status, body = self.responses.get(kind, (default_status, '{"message": "error"}'))
        if kind == "DEFAULT_5XX":
            status = default_status
        return (
            status,
            {"Content-Type": "application/json"} | self.response_headers.get(kind, {}),
            body.encode(),
        )

    def _static(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if self.static_root is None:
            return (
                404,
                {"Content-Type": "application/json"},
                b'{"error": {"code": "NOT_FOUND", "message": "no such path"}}',
            )
        root = self.static_root.resolve()
        wanted = (root / unquote(path).lstrip("/")).resolve()
        if wanted.is_dir():
            wanted = wanted / "index.html"
        if (root not in wanted.parents and wanted != root) or not wanted.is_file():
            return 404, {"Content-Type": "text/plain"}, b"not found"
        kind = mimetypes.guess_type(wanted.name)[0] or "application/octet-stream"
        return 200, {"Content-Type": kind}, wanted.read_bytes()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    status, headers, body = (
                        413,
                        {"Content-Type": "application/json"},
                        b'{"error": {"code": "INVALID_BODY", "message": "too large"}}',
                    )
                else:
                    body_in = self.rfile.read(length) if length else b""
                    try:
                        status, headers, body = gateway.handle(
                            self.command, self.path, dict(self.headers.items()), body_in
                        )
                    except Exception:
                        status, headers, body = gateway._gateway("DEFAULT_5XX", 500)
                self.send_response(
                    status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
                )
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
