"""Canaries for `make security` (scripts/kycsecurity): each gate must catch what it exists to catch.

The secret scan must report a realistic fake AWS secret key and a private key planted in a temp copy of a
repository file, while the audited dummy moto credentials ("local", "testing") stay allow-listed; bandit
must flag a planted ``shell=True``; the dependency audit must refuse an unpinned requirement. The scanner
tests run the real tools from ``.venv-audit`` (created by scripts/security_checks.sh) and skip without it.
Planted secrets are generated at run time so this file itself never trips the repository scan.
"""

from __future__ import annotations

import json
import secrets
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
AUDIT_PYTHON = ROOT / ".venv-audit" / "bin" / "python"
AUDIT_READY = (ROOT / ".venv-audit" / ".stamp").is_file() and AUDIT_PYTHON.is_file()
BASELINE = ROOT / ".secrets.baseline"
DUMMY_CREDENTIAL_FILES = (
    "local/kyclocal/stack.py",  # AWS_SECRET_ACCESS_KEY "local" for the moto server
    "tests/unit/functions/handler_loader.py",  # "testing" for moto's in-process mock
    "tests/unit/aws/test_sagemaker_frame_scorer.py",  # "test" for a stubbed client
)
needs_audit_venv = pytest.mark.skipif(
    not AUDIT_READY,
    reason=".venv-audit absent: run `make security` (scripts/security_checks.sh) to create it",
)

sys.path.insert(0, str(ROOT / "scripts"))
from kycsecurity import CheckResult  # noqa: E402
from kycsecurity import __main__ as cli  # noqa: E402
from kycsecurity.dependency_audit import REQUIREMENTS, Pin, classify_against_latest, read_pins  # noqa: E402


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AUDIT_PYTHON), "-m", "kycsecurity", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "scripts"), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )


def _copy(tmp_path: Path, *relatives: str) -> Path:
    for relative in relatives:
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, target)
    return tmp_path


def _fake_aws_secret() -> str:
    alphabet = string.ascii_letters + string.digits + "/+"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def _reported_lines(output: str, relative: str) -> set[int]:
    return {
        int(line.split(f"{relative}:", 1)[1].split(":", 1)[0])
        for line in output.splitlines()
        if f"{relative}:" in line
    }


@needs_audit_venv
def test_secret_scan_planted_aws_secret_and_private_key_are_reported(tmp_path: Path) -> None:
    root = _copy(tmp_path, "local/kyclocal/stack.py")
    target = root / "local/kyclocal/stack.py"
    original_lines = len(target.read_text(encoding="utf-8").splitlines())
    header = "-----BEGIN " + "RSA PRIVATE KEY-----"
    body = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(64))
    with target.open("a", encoding="utf-8") as f:
        f.write(f'\naws_secret_access_key = "{_fake_aws_secret()}"\n')
        f.write(f'DEPLOY_KEY = """{header}\nMIIEpAIBAAKCAQEA{body}\n"""\n')

    result = _run("secrets", "--root", str(root), "--baseline", str(BASELINE))

    assert result.returncode == 1, result.stdout
    assert "AWS Access Key" in result.stdout
    assert "Private Key" in result.stdout
    reported = _reported_lines(result.stdout, "local/kyclocal/stack.py")
    assert reported, result.stdout
    assert min(reported) > original_lines, "only the planted lines may be reported, not the dummy credentials"


@needs_audit_venv
def test_secret_scan_dummy_moto_credentials_are_allow_listed_by_baseline(tmp_path: Path) -> None:
    root = _copy(tmp_path, *DUMMY_CREDENTIAL_FILES)

    result = _run("secrets", "--root", str(root), "--baseline", str(BASELINE))

    assert result.returncode == 0, result.stdout


@needs_audit_venv
def test_secret_scan_dummy_credentials_without_baseline_are_flagged(tmp_path: Path) -> None:
    root = _copy(tmp_path, *DUMMY_CREDENTIAL_FILES)
    empty = json.loads(BASELINE.read_text(encoding="utf-8")) | {"results": {}}
    empty_baseline = tmp_path / "empty.baseline"
    empty_baseline.write_text(json.dumps(empty), encoding="utf-8")

    result = _run("secrets", "--root", str(root), "--baseline", str(empty_baseline))

    assert result.returncode == 1
    assert all(f"{relative}:" in result.stdout for relative in DUMMY_CREDENTIAL_FILES), result.stdout


def test_secret_baseline_entries_are_all_audited_false_positives() -> None:
    recorded = json.loads(BASELINE.read_text(encoding="utf-8"))

    verdicts = [entry.get("is_secret") for entries in recorded["results"].values() for entry in entries]

    assert verdicts and all(verdict is False for verdict in verdicts)


@needs_audit_venv
def test_bandit_planted_shell_true_fails(tmp_path: Path) -> None:
    root = _copy(tmp_path, "functions/score/app.py")
    with (root / "functions/score/app.py").open("a", encoding="utf-8") as f:
        f.write("\n\ndef _planted(cmd: str) -> None:\n    import subprocess\n\n")
        f.write("    subprocess.run(cmd, shell=True)\n")

    result = _run("bandit", "--root", str(root))

    assert result.returncode == 1, result.stdout
    assert "functions/score/app.py" in result.stdout
    assert "B602" in result.stdout


@needs_audit_venv
def test_bandit_yaml_load_without_nosec_justification_fails(tmp_path: Path) -> None:
    target = tmp_path / "local" / "reader.py"
    target.parent.mkdir(parents=True)
    target.write_text(
        "import yaml\n\n\nclass _Loader(yaml.SafeLoader):\n    pass\n\n\n"
        "def read(text: str) -> object:\n"
        "    return yaml.load(text, Loader=_Loader)  # nosec B506 - a SafeLoader subclass\n",
        encoding="utf-8",
    )
    justified = _run("bandit", "--root", str(tmp_path))
    target.write_text(target.read_text(encoding="utf-8").replace("# nosec B506", "#"), encoding="utf-8")

    unjustified = _run("bandit", "--root", str(tmp_path))

    assert justified.returncode == 0, justified.stdout
    assert unjustified.returncode == 1
    assert "B506" in unjustified.stdout


def test_read_pins_unpinned_line_is_a_finding(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# comment\naws-lambda-powertools[tracer,parser]==3.37.0\nboto3>=1.40\n", encoding="utf-8"
    )

    pins, problems = read_pins(requirements, "requirements.txt")

    assert pins == [Pin("aws-lambda-powertools", "3.37.0", "requirements.txt")]
    assert [(p.where, p.rule) for p in problems] == [("requirements.txt:3", "UNPINNED")]


@pytest.mark.parametrize("relative", REQUIREMENTS)
def test_read_pins_locked_requirement_files_are_fully_pinned(relative: str) -> None:
    pins, problems = read_pins(ROOT / relative, relative)

    assert pins and not problems, problems


@pytest.mark.parametrize(
    ("version", "vulnerabilities", "expected"),
    [
        ("2.0", [], "CLEAN"),
        ("2.0", [{"id": "PYSEC-0000-1"}], "VULNERABLE"),
        ("1.0", [], "UNVERIFIED (latest is 2.0)"),
        ("0.9", [], "UNKNOWN_RELEASE"),
    ],
)
def test_classify_against_latest_only_vouches_for_latest_release(
    version: str, vulnerabilities: list[dict[str, str]], expected: str
) -> None:
    project = {
        "info": {"version": "2.0"},
        "releases": {"1.0": [], "2.0": []},
        "vulnerabilities": vulnerabilities,
    }

    verdict, _ = classify_against_latest(Pin("pkg", version, "r.txt"), project)

    assert verdict == expected


@pytest.mark.parametrize(("strict", "expected_exit"), [("1", 1), ("", 0)])
def test_cli_degraded_audit_fails_only_when_strict(
    monkeypatch: pytest.MonkeyPatch, strict: str, expected_exit: int
) -> None:
    import kycsecurity.dependency_audit as dependency_audit

    monkeypatch.setattr(
        dependency_audit, "run_dependency_audit", lambda root: CheckResult("deps", (), degraded=True)
    )
    monkeypatch.setenv("KYC_SECURITY_STRICT", strict)

    assert cli.main(["deps"]) == expected_exit
