"""Fixtures shared by the template tests: the template as written, and after the SAM transform."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = ROOT / "template.yaml"
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"

# Runs in .venv-tools (aws-sam-translator lives there, not in the app venv); managed policies are
# resolved to nothing so that any the template asked for would show up as unexpanded names.
_TRANSFORM_SCRIPT = r"""
import json, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

with open(sys.argv[1], encoding="utf-8") as f:
    tpl = yaml_parse(f.read())
for res in tpl["Resources"].values():
    props = res.get("Properties", {})
    for key in ("CodeUri", "ContentUri", "DefinitionUri"):
        if isinstance(props.get(key), str):
            props[key] = "s3://bucket/" + props[key]
out = transform(tpl, {}, NoManagedPolicies())
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    tpl, matches = decode(str(TEMPLATE_PATH))
    assert not matches, f"template does not parse: {matches}"
    return tpl


@pytest.fixture(scope="session")
def transformed() -> dict[str, Any]:
    """The template after the SAM transform, computed once per session for every module."""
    if not TOOLS_PYTHON.exists():
        pytest.skip(".venv-tools is absent: cannot run the SAM transform (aws-sam-translator lives there)")
    # A region is needed for pseudo parameters only; no AWS call is made (no credentials involved).
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "eu-west-1", "SAM_CLI_TELEMETRY": "0"}
    proc = subprocess.run(
        [str(TOOLS_PYTHON), "-c", _TRANSFORM_SCRIPT, str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)
