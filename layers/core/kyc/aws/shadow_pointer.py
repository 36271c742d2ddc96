"""The shadow pointer (``/kyc/<stack>/shadow-policy``): which candidate live traffic is also scored by.

Cleared, never deleted: a clear is a new version without a deployment, so SSM keeps the history that
re-screen runs and live shadow blocks name by version. Cleared only while it still names the package
the caller acts on: a newer candidate approved meanwhile stays shadowed.
"""

from __future__ import annotations

import json
from typing import Any

from kyc.aws.clients import client
from kyc.domain.promotion import split_pointer


def clear_shadow_pointer(
    name: str, kms_key_id: str, *, arn: str, cleared_by: str, ssm_client: Any = None
) -> int | None:
    """Write a version without a deployment if the pointer names ``arn``; its version, else None.

    ``cleared_by`` (``promote``, ``reject``) and the package are recorded in the new version."""
    ssm = ssm_client or client("ssm")
    try:
        now = json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None
    _, deployment = split_pointer(now)
    if deployment is None or deployment.get("model_package_arn") != arn:
        return None
    verb = {"promote": "promoted", "reject": "rejected"}.get(cleared_by, cleared_by)
    version = ssm.put_parameter(
        Name=name,
        Type="SecureString",
        KeyId=kms_key_id,
        Value=json.dumps({"cleared_by": cleared_by, f"{verb}_model_package_arn": arn}, sort_keys=True),
        Overwrite=True,
    )["Version"]
    return int(version)
