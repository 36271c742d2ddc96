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


def honour_digest_message_type() -> None:
    """moto's KMS Verify ignores ``MessageType=DIGEST`` (it hashes the given digest again); KMS
    verifies against the given SHA-256 as is. Patched in-process, once, for ECDSA_SHA_256 only (what
    the stack's digest key uses), so the verifier's KMS Verify behaves as it does in AWS."""
    from moto.kms.responses import KmsResponse

    if getattr(KmsResponse, "_kyclocal_digest", False):
        return
    raw_verify = KmsResponse.verify

    def _blob(value: Any) -> bytes:
        """moto's parser hands a blob over decoded (bytes) or, without it, as the wire's base64."""
        import base64

        return value if isinstance(value, bytes) else base64.b64decode(value)

    def _prehashed_key(response: Any) -> Any:
        key = response.kms_backend.describe_key(response._get_param("KeyId"))
        return key.private_key.private_key  # the cryptography EC private key behind moto's key

    def verify(self: Any) -> str:
        if self._get_param("MessageType") != "DIGEST":
            return raw_verify(self)
        import json

        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        digest = _blob(self._get_param("Message"))
        signature = _blob(self._get_param("Signature"))
        try:
            _prehashed_key(self).public_key().verify(
                signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))
            )
            valid = True
        except InvalidSignature:
            valid = False
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        return json.dumps(
            {
                "KeyId": key.arn,
                "SignatureValid": valid,
                "SigningAlgorithm": self._get_param("SigningAlgorithm"),
            }
        )

    KmsResponse.verify = verify
    KmsResponse._kyclocal_digest = True
