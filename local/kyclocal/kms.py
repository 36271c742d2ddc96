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
    """What moto's KMS Sign/Verify skip, as KMS does them: ``MessageType=DIGEST`` (moto hashes the
    given SHA-256 again; KMS signs or verifies it as is) and the 4096-byte limit of a ``RAW`` message
    (moto takes any size; KMS refuses a longer one with a ValidationException, which is why the
    digest is signed as a DIGEST). Patched in-process, once, for ECDSA_SHA_256 (the digest key's)."""
    from moto.kms.exceptions import ValidationException
    from moto.kms.responses import KmsResponse

    if getattr(KmsResponse, "_kyclocal_digest", False):
        return
    raw_sign, raw_verify = KmsResponse.sign, KmsResponse.verify

    def _blob(value: Any) -> bytes:
        """moto's parser hands a blob over decoded (bytes) or, without it, as the wire's base64."""
        import base64

        return value if isinstance(value, bytes) else base64.b64decode(value)

    def _key(response: Any) -> Any:
        return response.kms_backend.describe_key(response._get_param("KeyId"))

    def _checked(response: Any) -> bytes | None:
        """The digest of a DIGEST request (None for RAW), after KMS's length rules."""
        message = _blob(response._get_param("Message"))
        if response._get_param("MessageType") != "DIGEST":
            if len(message) > RAW_MESSAGE_LIMIT:
                raise ValidationException(
                    "1 validation error detected: Value at 'message' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {RAW_MESSAGE_LIMIT}"
                )
            return None
        if response._get_param("SigningAlgorithm") != "ECDSA_SHA_256" or len(message) != 32:
            raise ValidationException("Digest is invalid length for algorithm ECDSA_SHA_256.")
        return message

    def _prehashed() -> Any:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        return ec.ECDSA(utils.Prehashed(hashes.SHA256()))

    def sign(self: Any) -> str:
        digest = _checked(self)
        if digest is None:
            return raw_sign(self)
        import base64
        import json

        key = _key(self)
        signature = key.private_key.private_key.sign(digest, _prehashed())
        return json.dumps(
            {
                "KeyId": key.arn,
                "Signature": base64.b64encode(signature).decode(),
                "SigningAlgorithm": self._get_param("SigningAlgorithm"),
            }
        )

    def verify(self: Any) -> str:
        digest = _checked(self)
        if digest is None:
            return raw_verify(self)
        import json

        from cryptography.exceptions import InvalidSignature

        key = _key(self)
        try:
            key.private_key.private_key.public_key().verify(
                _blob(self._get_param("Signature")), digest, _prehashed()
            )
            valid = True
        except InvalidSignature:
            valid = False
        return json.dumps(
            {
                "KeyId": key.arn,
                "SignatureValid": valid,
                "SigningAlgorithm": self._get_param("SigningAlgorithm"),
            }
        )

    KmsResponse.sign, KmsResponse.verify = sign, verify
    KmsResponse._kyclocal_digest = True


RAW_MESSAGE_LIMIT = 4096  # bytes: KMS Sign/Verify with MessageType=RAW (the API reference)
