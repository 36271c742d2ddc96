"""The KMS key properties moto's CloudFormation skips: ``KeySpec`` and ``KeyUsage``.

moto creates every ``AWS::KMS::Key`` of a template as ``SYMMETRIC_DEFAULT`` / ``ENCRYPT_DECRYPT``,
whatever it declares; its KMS API itself supports HMAC keys and ``GenerateMac`` (and asymmetric keys).
So after CreateStack each key is given the spec and usage the template declares, with key material
of that spec made by moto itself. No key is made up here: the HMAC key behind the local pseudonyms
is moto's key ``PseudonymKey`` as template.yaml declares it, and it lives as long as the local stack
(a restarted stack has a new key, so its pseudonyms differ from the last session's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_SPEC = "SYMMETRIC_DEFAULT"
DEFAULT_USAGE = "ENCRYPT_DECRYPT"


def apply_key_specs(
    resources: Mapping[str, Any], physical_ids: Mapping[str, str], account: str, region: str
) -> dict[str, str]:
    """Set KeySpec/KeyUsage on moto's keys as the template declares them; returns logical id -> spec
    of the keys changed. In-process: the local stack runs moto's server in this process."""
    from moto.kms.models import kms_backends
    from moto.kms.utils import generate_private_key

    backend = kms_backends[account][region]
    changed: dict[str, str] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::KMS::Key" or logical_id not in physical_ids:
            continue
        props = resource.get("Properties", {})
        spec, usage = props.get("KeySpec", DEFAULT_SPEC), props.get("KeyUsage", DEFAULT_USAGE)
        key = backend.keys[backend.get_key_id(physical_ids[logical_id])]
        if (key.key_spec, key.key_usage) == (spec, usage):
            continue
        key.key_spec, key.key_usage = spec, usage
        key.private_key = generate_private_key(spec)
        changed[logical_id] = spec
    return changed
