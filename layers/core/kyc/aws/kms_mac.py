"""KMS ``GenerateMac`` as the domain's ``MacFunction``: keyed pseudonyms with no secret to store.

The HMAC key (``PseudonymKey`` in template.yaml, ``HMAC_256``, ``GENERATE_VERIFY_MAC``) never leaves
KMS, and its key policy lets only the roles that pseudonymise call ``kms:GenerateMac``. A MAC is
deterministic, so each process keeps the ones it computed (a bounded LRU): a retry, the erasure that
pseudonymises the same key three times, or a warm container seeing the same value again costs no
second KMS request. The cache holds pseudonyms of values the process already held in clear.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from kyc.aws.clients import client

MAC_ALGORITHM = "HMAC_SHA_256"
LABEL_LENGTH = 8
CACHE_SIZE = 4096


class PseudonymKeyError(Exception):
    """The configured pseudonym key is not a KMS key id or key ARN: a deployment fault."""


def key_label(key_id: str) -> str:
    """The short name of a KMS key that every pseudonym carries: the first 8 characters of its key id.

    ``arn:aws:kms:eu-west-1:111122223333:key/1234abcd-...`` and ``1234abcd-...`` both give ``1234abcd``
    (``mrk-`` of a multi-Region key is dropped). An alias names no fixed key, so it is refused: the
    label must say which key made a pseudonym for as long as the pseudonym is kept.
    """
    bare = key_id.rsplit(":", 1)[-1]
    if bare.startswith("alias/") or not bare:
        raise PseudonymKeyError("the pseudonym key must be a key id or key ARN, not an alias")
    bare = bare.removeprefix("key/").removeprefix("mrk-")
    label = bare[:LABEL_LENGTH].lower()
    if len(label) < LABEL_LENGTH or not label.isalnum():
        raise PseudonymKeyError(f"not a KMS key id: {key_id!r}")
    return label


class KmsMac:
    """HMAC-SHA256 under one KMS HMAC key; callable as ``mac(message) -> bytes``."""

    def __init__(self, key_id: str, kms_client: Any = None, cache_size: int = CACHE_SIZE) -> None:
        if not key_id:
            raise PseudonymKeyError("no pseudonym key configured (KYC_PSEUDONYM_KEY_ARN)")
        self._key_id = key_id
        self._label = key_label(key_id)
        self._kms = kms_client
        self.requests = 0  # KMS calls made: the cache's effect, read by tests and benchmarks
        self._cached = lru_cache(maxsize=cache_size)(self._generate)

    @property
    def label(self) -> str:
        return self._label

    def __call__(self, message: bytes) -> bytes:
        return self._cached(bytes(message))

    def _generate(self, message: bytes) -> bytes:
        kms = self._kms or client("kms")
        self.requests += 1
        response = kms.generate_mac(KeyId=self._key_id, Message=message, MacAlgorithm=MAC_ALGORITHM)
        return bytes(response["Mac"])
