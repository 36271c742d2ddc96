"""pip-audit against exactly the locked pins, with an honest fallback when no advisory service answers.

``pip-audit -r FILE --no-deps --disable-pip --strict`` audits the pins as written (no resolver, no
install), and ``--strict`` turns "could not audit this package" into a failure instead of a skip.
Where neither PyPI's per-release JSON API nor OSV is reachable (an offline CI runner, a proxied
sandbox), the fallback reads each project's PyPI JSON: it can vouch only for pins that ARE the latest
release (PyPI lists the latest release's advisories); every other pin is reported UNVERIFIED and the
result is marked degraded, which fails under ``KYC_SECURITY_STRICT=1``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kycsecurity import CheckResult, Finding

# The Lambda layers ship to production; dev and tool pins run on developer and CI machines.
REQUIREMENTS = (
    "layers/core/requirements.txt",
    "layers/media/requirements.txt",
    "layers/provenance/requirements.txt",
    "functions/faces/requirements.txt",  # OpenCV and numpy in the face stage's own package
    "requirements-face-models.txt",  # the wheel the face models are copied from (issue 25)
    "requirements-dev.txt",
    "requirements-tools.txt",
    "requirements-checkov.txt",
    "requirements-audit.txt",
    "requirements-awscli.txt",
    "requirements-sagemaker.txt",  # the pipeline definition builder (issue 21)
)
OPTIONAL_REQUIREMENTS = ("serving/requirements.txt",)
PYPI_RELEASE_PROBE = "https://pypi.org/pypi/pip-audit/2.10.1/json"
OSV_PROBE = "https://api.osv.dev/v1/query"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[A-Za-z0-9.+!-]+)$")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    source: str


def read_pins(path: Path, label: str) -> tuple[list[Pin], list[Finding]]:
    """Every non-comment line must be ``name==version``: an unpinned line cannot be audited as locked."""
    pins: list[Pin] = []
    problems: list[Finding] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        line = line.split(" --hash=", 1)[0].strip()  # a hash-pinned line is still name==version
        if not line:
            continue
        match = PIN.match(line.split(";", 1)[0].strip())
        if match is None:
            detail = f"'{line}' is not name==version"
            problems.append(Finding("pip-audit", f"{label}:{number}", "UNPINNED", detail))
            continue
        pins.append(Pin(match["name"].lower(), match["version"], label))
    return pins, problems


def _open_https(url: str, data: bytes | None = None, timeout: float = 15):
    """urlopen restricted to https, so no file:// or custom scheme can ever be opened through here."""
    if not url.startswith("https://"):
        raise ValueError(f"refusing non-https URL {url!r}")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310  # nosec B310 - https enforced above


def _reachable(url: str, data: bytes | None = None) -> bool:
    try:
        with _open_https(url, data, timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, TimeoutError, OSError):
        return False


def pick_service() -> str | None:
    """The first advisory service that answers from here: PyPI (pip-audit's default), then OSV."""
    if _reachable(PYPI_RELEASE_PROBE):
        return "pypi"
    osv_query = json.dumps({"package": {"name": "pip-audit", "ecosystem": "PyPI"}, "version": "2.10.1"})
    if _reachable(OSV_PROBE, osv_query.encode()):
        return "osv"
    return None


def _pip_audit(path: Path, label: str, service: str) -> list[Finding]:
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            *(sys.executable, "-m", "pip_audit", "-r", str(path), "--no-deps", "--disable-pip", "--strict"),
            *("--vulnerability-service", service, "--progress-spinner", "off", "-f", "json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return [Finding("pip-audit", label, "NOT_AUDITED", proc.stderr.strip()[-500:] or "no report")]
    findings = []
    for dep in report.get("dependencies", []):
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
            detail = f"{dep['name']}=={dep['version']} fixed in {fixes}"
            findings.append(Finding("pip-audit", label, vuln["id"], detail))
        if "skip_reason" in dep:
            reason = f"{dep['name']}: {dep['skip_reason']}"
            findings.append(Finding("pip-audit", label, "NOT_AUDITED", reason))
    if proc.returncode != 0 and not findings:
        findings.append(Finding("pip-audit", label, "NOT_AUDITED", proc.stderr.strip()[-500:]))
    return findings


def classify_against_latest(pin: Pin, project: dict) -> tuple[str, list[str]]:
    """Fallback verdict from PyPI's project JSON, whose ``vulnerabilities`` cover the latest release only."""
    latest = project["info"]["version"]
    if pin.version not in project.get("releases", {}):
        return "UNKNOWN_RELEASE", []
    if pin.version != latest:
        return f"UNVERIFIED (latest is {latest})", []
    ids = [v.get("id", "?") for v in project.get("vulnerabilities", [])]
    return ("VULNERABLE" if ids else "CLEAN"), ids


def _fallback(pins: list[Pin]) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    notes: list[str] = []
    for pin in pins:
        url = f"https://pypi.org/pypi/{pin.name}/json"
        try:
            with _open_https(url) as response:
                project = json.load(response)
        except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as error:
            notes.append(f"{pin.source}: {pin.name}=={pin.version} UNVERIFIED ({error})")
            continue
        verdict, ids = classify_against_latest(pin, project)
        if verdict == "VULNERABLE":
            findings.append(Finding("pip-audit", pin.source, ",".join(ids), f"{pin.name}=={pin.version}"))
        elif verdict == "UNKNOWN_RELEASE":
            detail = f"{pin.name}=={pin.version} not on PyPI"
            findings.append(Finding("pip-audit", pin.source, verdict, detail))
        else:
            notes.append(f"{pin.source}: {pin.name}=={pin.version} {verdict}")
    return findings, notes


def run_dependency_audit(root: Path) -> CheckResult:
    """Audit every locked requirements file; never report "clean" for a pin nothing could check."""
    files = [f for f in REQUIREMENTS if (root / f).is_file()]
    files += [f for f in OPTIONAL_REQUIREMENTS if (root / f).is_file()]
    missing = [f for f in REQUIREMENTS if f not in files]
    findings: list[Finding] = [Finding("pip-audit", f, "MISSING", "file not found") for f in missing]
    pins: list[Pin] = []
    for label in files:
        file_pins, problems = read_pins(root / label, label)
        pins += file_pins
        findings += problems
    service = pick_service()
    if service is not None:
        for label in files:
            findings += _pip_audit(root / label, label, service)
        return CheckResult("pip-audit", tuple(findings), (f"{len(pins)} pins audited via {service}",))
    fallback_findings, notes = _fallback(pins)
    header = "no advisory service reachable (PyPI per-release JSON, OSV): PyPI latest-release fallback"
    return CheckResult("pip-audit", tuple(findings + fallback_findings), (header, *notes), degraded=True)
