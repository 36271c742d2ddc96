"""Static tests of the workbench hosting block in template.yaml (issue 20) and of what it serves (web/).

The bucket is private and readable only by this distribution (origin access control); every
behaviour forces HTTPS and carries the response headers policy; the CSP allows no inline script, no
eval, no framing and no plugins; HSTS, nosniff and no-referrer are set. The page itself (web/) must
keep to what that CSP allows: no inline script or handler, no HTML-string sinks.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
WEB = ROOT / "web"


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]


def _sub(value: Any) -> str:
    return value["Fn::Sub"] if isinstance(value, dict) else value


def csp_directives(text: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in text.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_bucket_is_private_and_only_the_distribution_reads_it(template: dict[str, Any]) -> None:
    bucket = _resource(template, "WorkbenchBucket")["Properties"]
    assert "WebsiteConfiguration" not in bucket  # not an S3 website: CloudFront with OAC only
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    # SSE-S3, not the stack key: no CloudFront grant on the key of the applicants' media (the skip says why)
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "AES256"}
    skips = {s["id"] for s in _resource(template, "WorkbenchBucket")["Metadata"]["checkov"]["skip"]}
    assert skips == {"CKV2_KYC_3"}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any(r.get("NoncurrentVersionExpiration") for r in rules)  # old releases go; the current one stays
    assert not any("ExpirationInDays" in r for r in rules)
    statements = _resource(template, "WorkbenchBucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source = _sub(allow["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert source.endswith(":distribution/${WorkbenchDistribution}")
    deny = next(s for s in statements if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_distribution_uses_origin_access_control_https_and_the_headers_policy(
    template: dict[str, Any],
) -> None:
    config = _resource(template, "WorkbenchDistribution")["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WorkbenchOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""  # no legacy OAI
    oac = _resource(template, "WorkbenchOriginAccessControl")["Properties"]["OriginAccessControlConfig"]
    assert (oac["SigningBehavior"], oac["SigningProtocol"]) == ("always", "sigv4")
    behaviours = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
    for behaviour in behaviours:
        assert behaviour["ViewerProtocolPolicy"] in ("redirect-to-https", "https-only")
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "WorkbenchResponseHeadersPolicy"}
        assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert "WebACLId" in config


def test_csp_allows_no_inline_script_eval_framing_or_plugins(template: dict[str, Any]) -> None:
    policy = _resource(template, "WorkbenchResponseHeadersPolicy")["Properties"][
        "ResponseHeadersPolicyConfig"
    ]
    security = policy["SecurityHeadersConfig"]
    csp = csp_directives(_sub(security["ContentSecurityPolicy"]["ContentSecurityPolicy"]))
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    for directive, sources in csp.items():
        for bad in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "data:", "*", "http:", "https:"):
            assert bad not in sources, (directive, bad)
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["require-trusted-types-for"] == ["'script'"]
    assert "upgrade-insecure-requests" in csp
    assert security["ContentSecurityPolicy"]["Override"] is True
    hsts = security["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] >= 31_536_000 and hsts["IncludeSubdomains"] is True
    assert security["ContentTypeOptions"]["Override"] is True
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_bodies: list[str] = []
        self.handlers: list[str] = []
        self.styles: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"{tag}[{name}]" for name, _ in attrs if name.startswith("on")]
        self.styles += [tag for name, _ in attrs if name == "style"]
        if tag == "style":
            self.styles.append("<style>")
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_bodies.append(data)


def test_page_has_no_inline_script_handler_or_style() -> None:
    parser = _Scripts()
    parser.feed((WEB / "index.html").read_text(encoding="utf-8"))
    assert parser.scripts and all(s.get("src") and s.get("type") == "module" for s in parser.scripts)
    assert parser.inline_bodies == [] and parser.handlers == [] and parser.styles == []


def test_modules_use_no_html_string_sink_or_eval() -> None:
    sinks = re.compile(
        r"\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write"
        r"|\beval\(|new Function\(|setTimeout\(\s*[\"'`]"
    )
    found = {
        str(path.relative_to(WEB)): sinks.findall(path.read_text(encoding="utf-8"))
        for path in WEB.rglob("*.js")
    }
    assert found and not any(found.values()), found
