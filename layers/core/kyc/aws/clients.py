"""boto3 clients, one per service per process, with botocore's standard retry mode.

Endpoints come from boto3's own resolution (``AWS_ENDPOINT_URL`` and the per-service variants),
which is how the local stack points the same code at moto and at the local model server.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_DEFAULT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_DEFAULT_CONFIG)
