"""Load a function's app.py the way Lambda does: environment first, then a fresh import."""

from __future__ import annotations

import hashlib
import hmac
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


PSEUDONYM_KEY_VARIABLE = "KYC_PSEUDONYM_KEY_ARN"


def create_pseudonym_key() -> str:
    """A KMS HMAC key in the running moto (mock or server), as template.yaml's PseudonymKey."""
    import os

    import boto3

    kms = boto3.client("kms", region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    return str(kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["Arn"])


def expected_submission_id(
    bucket: str, key: str, version_id: str | None, etag: str | None = None, key_arn: str | None = None
) -> str:
    """The oracle for a keyed submission id (issue 23): HMAC-SHA256 by the standard library, with
    moto's key material, over the framing written out here by hand (never the code under test's)."""
    import hashlib
    import hmac
    import os

    from moto.kms.models import kms_backends

    arn = key_arn or os.environ[PSEUDONYM_KEY_VARIABLE]
    _, _, _, region, account, resource = arn.split(":", 5)
    material = kms_backends[account][region].keys[resource.removeprefix("key/")].key_material
    discriminator = version_id or (f"etag:{etag}" if etag else "")
    message = f"kycscreen-submission/2\x00{bucket}\x00{key}\x00{discriminator}".encode()
    return hmac.new(material, message, hashlib.sha256).hexdigest()


def expected_pseudonym(value: str, key_arn: str | None = None) -> str:
    """The oracle for a pseudonym: HMAC-SHA256 by the standard library over the value, with the key
    material moto holds for the key (read from moto's backend, never through the code under test)."""
    import os

    from moto.kms.models import kms_backends

    arn = key_arn or os.environ[PSEUDONYM_KEY_VARIABLE]
    _, _, _, region, account, resource = arn.split(":", 5)
    key_id = resource.removeprefix("key/")
    material = kms_backends[account][region].keys[key_id].key_material
    digest = hmac.new(material, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"hmac:{key_id[:8]}:{digest}"


def load_handler(folder: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``functions/<folder>/app.py`` after setting ``env``; call inside ``mock_aws``.

    Without ``KYC_PSEUDONYM_KEY_ARN`` in ``env``, a fresh HMAC key is created in moto and named, as
    the template names ``PseudonymKey`` to every function that pseudonymises."""
    from kyc.aws.clients import client

    for key, value in (BASE_ENV | env).items():
        monkeypatch.setenv(key, value)
    if PSEUDONYM_KEY_VARIABLE not in env:
        monkeypatch.setenv(PSEUDONYM_KEY_VARIABLE, create_pseudonym_key())
    client.cache_clear()
    path = REPO / "functions" / folder / "app.py"
    spec = importlib.util.spec_from_file_location(f"unit_function_{folder}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
