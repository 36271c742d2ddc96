"""The local workbench server (kyclocal.workbench): web/, config.json and the template's headers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from kyclocal.workbench import WEB_ROOT, WorkbenchServer, local_csp, template_csp, web_files
from tests.unit.iac.test_workbench_hosting import csp_directives

ORIGINS = {
    "cognito-idp": "http://127.0.0.1:4599",
    "execute-api": "http://127.0.0.1:4600",
    "s3": "http://127.0.0.1:4599",
}


def test_local_csp_is_the_templates_with_local_origins() -> None:
    deployed = csp_directives(template_csp().replace("\n", " "))
    local = csp_directives(local_csp(ORIGINS))
    assert set(deployed) - set(local) == {"upgrade-insecure-requests"}  # plain HTTP on loopback
    for directive, sources in local.items():
        kept = [s for s in deployed[directive] if "${" not in s]
        assert [s for s in sources if not s.startswith("http://127.0.0.1")] == kept, directive
    assert local["connect-src"] == ["'self'", "http://127.0.0.1:4599", "http://127.0.0.1:4600"]
    assert local["img-src"] == ["'self'", "blob:", "http://127.0.0.1:4599"]
    assert local["script-src"] == ["'self'"]


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def server() -> WorkbenchServer:
    with WorkbenchServer().serve({"apiUrl": "http://127.0.0.1:4600/v1"}, ORIGINS) as running:
        yield running


def test_serves_the_page_with_the_security_headers(server: WorkbenchServer) -> None:
    status, headers, body = _get(server.url)
    assert status == 200 and body == (WEB_ROOT / "index.html").read_bytes()
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert csp_directives(headers["Content-Security-Policy"])["script-src"] == ["'self'"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    status, headers, body = _get(server.url + "js/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")


def test_config_json_is_served_uncached(server: WorkbenchServer) -> None:
    status, headers, body = _get(server.url + "config.json")
    assert status == 200 and json.loads(body) == {"apiUrl": "http://127.0.0.1:4600/v1"}
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "path", ["../template.yaml", "%2e%2e/template.yaml", "js/", "js/../../Makefile", "nope.html", "js"]
)
def test_nothing_outside_the_served_files(server: WorkbenchServer, path: str) -> None:
    status, _, body = _get(server.url + path)
    assert status == 404
    assert b"Resources" not in body and b"SHELL" not in body


def test_web_files_are_the_page_its_modules_and_stylesheet() -> None:
    files = web_files()
    assert "/index.html" in files and "/js/app.js" in files and "/css/workbench.css" in files
    assert all(path.startswith("/") and ".." not in path for path in files)


def test_publish_uploads_every_served_file_and_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against moto's S3 over HTTP: what CloudFront would serve is byte for byte what web/ holds."""
    import boto3
    from moto.server import ThreadedMotoServer

    from kyclocal.workbench import CONTENT_TYPES, publish

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1")
        s3.create_bucket(Bucket="workbench")
        keys = publish(s3, "workbench", {"apiUrl": "https://api.example/v1"})
        files = web_files()
        assert sorted(keys) == sorted([path.lstrip("/") for path in files] + ["config.json"])
        for path, file in files.items():
            got = s3.get_object(Bucket="workbench", Key=path.lstrip("/"))
            assert got["Body"].read() == file.read_bytes(), path
            assert got["ContentType"] == CONTENT_TYPES[file.suffix], path
        config = s3.get_object(Bucket="workbench", Key="config.json")
        assert json.loads(config["Body"].read()) == {"apiUrl": "https://api.example/v1"}
        assert config["CacheControl"] == "no-store"
    finally:
        server.stop()
