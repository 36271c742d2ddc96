#!/usr/bin/env bash
# `make security`: bandit, pip-audit of the locked pins, and a secret scan; exits non-zero on a finding.
# Sets up .venv-audit from requirements-audit.txt (kept apart from .venv and .venv-tools: these tools pin
# packages of their own). Usage: scripts/security_checks.sh [all|bandit|deps|secrets]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
AUDIT=.venv-audit
if [[ ! -f "$AUDIT/.stamp" || requirements-audit.txt -nt "$AUDIT/.stamp" ]]; then
  "$PYTHON" -m venv "$AUDIT"
  "$AUDIT/bin/python" -m pip install --quiet --upgrade pip
  "$AUDIT/bin/python" -m pip install --quiet -r requirements-audit.txt
  touch "$AUDIT/.stamp"
fi
PYTHONPATH=scripts exec "$AUDIT/bin/python" -m kycsecurity "$@"
