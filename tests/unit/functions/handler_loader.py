"""Load a function's app.py the way Lambda does: environment first, then a fresh import."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[3]
BASE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's in-process mock: no real credential exists
    "POWERTOOLS_SERVICE_NAME": "kyc-screening",
    "POWERTOOLS_METRICS_NAMESPACE": "KycScreening",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@dataclass
class FakeContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def load_handler(folder: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``functions/<folder>/app.py`` after setting ``env``; call inside ``mock_aws``."""
    from kyc.aws.clients import client

    for key, value in (BASE_ENV | env).items():
        monkeypatch.setenv(key, value)
    client.cache_clear()
    path = REPO / "functions" / folder / "app.py"
    spec = importlib.util.spec_from_file_location(f"unit_function_{folder}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
