"""The reviewer workbench (``web/``) served on loopback, with the headers CloudFront adds in AWS.

In AWS the page is in the workbench bucket behind CloudFront, whose response headers policy
(``WorkbenchResponseHeadersPolicy`` in template.yaml) sets the Content-Security-Policy and the other
security headers. Locally this server sends the same headers, read from the template (one source):
only the origins in the CSP become the local ones (the API, moto's Cognito and S3), and
``upgrade-insecure-requests`` and HSTS are left out because the local server speaks plain HTTP.

``/config.json`` tells the page where the API and the user pool are (written at publish time in
AWS: ``scripts/publish_workbench.py``). Nothing in it grants a right: the API decides from the token.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kyclocal.template import REPO, TEMPLATE, read_template

WEB_ROOT = REPO / "web"
POLICY_RESOURCE = "WorkbenchResponseHeadersPolicy"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}


@functools.cache
def _template(mtime_ns: int) -> dict[str, Any]:
    return read_template(TEMPLATE)


def template_headers_policy(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ResponseHeadersPolicyConfig of the workbench's CloudFront response headers policy."""
    template = template or _template(TEMPLATE.stat().st_mtime_ns)
    resource = template["Resources"][POLICY_RESOURCE]
    return resource["Properties"]["ResponseHeadersPolicyConfig"]


def _sub_text(value: Any) -> str:
    """The string of a ``Fn::Sub`` (or a plain string), with its ``${...}`` placeholders kept."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return str(value)


def template_csp(template: dict[str, Any] | None = None) -> str:
    policy = template_headers_policy(template)
    return _sub_text(policy["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"])


def local_csp(origins: dict[str, str], template: dict[str, Any] | None = None) -> str:
    """The template's CSP with each source that names a deployed resource (``${...}``) replaced.

    ``origins`` maps a word found in such a source (``cognito-idp``, ``execute-api``, ``s3``) to the
    local origin that stands in for it; a templated source matching no word is dropped, never kept
    half-substituted. ``upgrade-insecure-requests`` is dropped (plain HTTP on loopback).
    """
    directives = []
    for directive in template_csp(template).split(";"):
        parts = directive.split()
        if not parts or parts[0] == "upgrade-insecure-requests":
            continue
        sources = []
        for source in parts[1:]:
            if "${" not in source:
                sources.append(source)
                continue
            host = re.sub(r"\$\{[^}]*\}", "", urlsplit(source).netloc)
            for word, origin in origins.items():
                if word in host.split(".") and origin not in sources:
                    sources.append(origin)
                    break
        directives.append(" ".join([parts[0], *dict.fromkeys(sources)]))
    return "; ".join(directives)


def local_headers(origins: dict[str, str], template: dict[str, Any] | None = None) -> dict[str, str]:
    """The security headers the template's policy sets, as the local server sends them."""
    policy = template_headers_policy(template)["SecurityHeadersConfig"]
    referrer = policy["ReferrerPolicy"]["ReferrerPolicy"]
    headers = {
        "Content-Security-Policy": local_csp(origins, template),
        "Referrer-Policy": referrer,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": policy["FrameOptions"]["FrameOption"],
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    for custom in template_headers_policy(template).get("CustomHeadersConfig", {}).get("Items", []):
        headers[custom["Header"]] = _sub_text(custom["Value"])
    return headers


def workbench_config(
    *,
    api_url: str,
    cognito_endpoint: str,
    client_id: str,
    user_pool_id: str,
    region: str,
    image_origins: list[str],
) -> dict[str, Any]:
    """The page's config.json: where to sign in and which API to call (public values, no secret)."""
    return {
        "apiUrl": api_url.rstrip("/"),
        "cognitoEndpoint": cognito_endpoint,
        "userPoolId": user_pool_id,
        "userPoolClientId": client_id,
        "region": region,
        "imageOrigins": sorted(set(image_origins)),
    }


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def web_files(root: Path = WEB_ROOT) -> dict[str, Path]:
    """Every file the workbench serves, by its URL path ("/js/app.js"); nothing else under web/."""
    root = root.resolve()
    return {
        "/" + path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in CONTENT_TYPES
    }


def publish(s3: Any, bucket: str, config: dict[str, Any], root: Path = WEB_ROOT) -> list[str]:
    """Upload the workbench and its config.json to the workbench bucket (what CloudFront serves).

    The entry points (index.html, config.json) are ``no-cache`` so a new release is seen at once; the
    modules and the stylesheet are revalidated after five minutes (no fingerprinted names, no build step).
    """
    keys = []
    for path, file in web_files(root).items():
        key = path.lstrip("/")
        cache = "no-cache" if key == "index.html" else "public, max-age=300"
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=file.read_bytes(),
            ContentType=CONTENT_TYPES[file.suffix],
            CacheControl=cache,
        )
        keys.append(key)
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(config, indent=2).encode(),
        ContentType="application/json",
        CacheControl="no-store",
    )
    keys.append("config.json")
    return keys


class WorkbenchServer:
    """``web/`` and ``/config.json`` on 127.0.0.1.

    The port is bound at construction, so its origin can be handed to the API's CORS setting before
    the stack starts; :meth:`serve` then sets what the page needs and starts answering.
    ``with WorkbenchServer().serve(config, origins) as server:``
    """

    def __init__(self, *, port: int = 0, root: Path = WEB_ROOT) -> None:
        self.config_body = b"{}"
        self.headers: dict[str, str] = {}
        self.root = root.resolve()
        self._files = web_files(self.root)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.url = self.origin + "/"
        self._thread: threading.Thread | None = None

    def serve(self, config: dict[str, Any], origins: dict[str, str]) -> WorkbenchServer:
        """Serve with this config.json and the template's headers for these local origins."""
        self.config_body = json.dumps(config, indent=2).encode()
        self.headers = local_headers(origins)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="workbench", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> WorkbenchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "kycscreen-workbench"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no access log on the terminal of `kycscreen up`

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                path = urlsplit(self.path).path
                if path in ("/", ""):
                    path = "/index.html"
                if path == "/config.json":
                    data, kind, cache = server.config_body, "application/json", "no-store"
                elif path in server._files:  # only files that exist under web/: no traversal, no listing
                    file = server._files[path]
                    data = file.read_bytes()
                    kind = (
                        CONTENT_TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "text/plain"
                    )
                    cache = "no-cache"
                else:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", cache)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if body:
                    self.wfile.write(data)

        return Handler


def serve_for_stack(server: WorkbenchServer, stack: Any) -> WorkbenchServer:
    """Serve the workbench for a started local stack: its API, its reviewer pool, its S3 (contact sheets).

    The stack's API must answer CORS for ``server.origin`` (``KYC_CORS_ORIGIN``, as ``WorkbenchOrigin``
    does in AWS): see :func:`cors_env`.
    """
    if stack.api is None or stack.pool is None:
        raise RuntimeError(
            "the local stack serves no API (LocalStackSettings.api_port) or has no reviewer pool"
        )
    config = workbench_config(
        api_url=stack.api.url,
        cognito_endpoint=stack.pool.endpoint,
        client_id=stack.pool.client_id,
        user_pool_id=stack.pool.pool_id,
        region=stack.region,
        image_origins=[stack.endpoint_url],  # presigned contact sheets come from moto's S3
    )
    origins = {
        "cognito-idp": stack.endpoint_url,
        "execute-api": origin_of(stack.api.url),
        "s3": stack.endpoint_url,
    }
    return server.serve(config, origins)


def cors_env(server: WorkbenchServer) -> dict[str, str]:
    """The API function's environment that lets this page call it (the local WorkbenchOrigin)."""
    return {"KYC_CORS_ORIGIN": server.origin}
