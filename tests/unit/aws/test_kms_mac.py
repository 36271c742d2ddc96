"""KMS GenerateMac as the pseudonym MAC, against moto's KMS: the value, the label, the cache, the refusals."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.kms.models import kms_backends

from kyc.aws.kms_mac import KmsMac, PseudonymKeyError, key_label
from kyc.domain.identity import pseudonymise_key

REGION = "eu-west-1"
REFERENCE = "ACME-CUST-0042"


class CountingKms:
    """The real (moto) client, counting GenerateMac requests as they leave the process."""

    def __init__(self, kms: Any) -> None:
        self._kms = kms
        self.generate_mac_calls = 0

    def generate_mac(self, **kwargs: Any) -> Any:
        self.generate_mac_calls += 1
        return self._kms.generate_mac(**kwargs)


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name=REGION)


def _hmac_key(kms: Any) -> dict[str, str]:
    return kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]


def _material(meta: dict[str, str]) -> bytes:
    return kms_backends["123456789012"][REGION].keys[meta["KeyId"]].key_material


def test_kms_mac_is_hmac_sha256_under_the_kms_key_material(kms: Any) -> None:
    meta = _hmac_key(kms)
    mac = KmsMac(meta["Arn"], kms_client=kms)
    oracle = hmac.new(_material(meta), REFERENCE.encode(), hashlib.sha256).hexdigest()  # standard library
    assert pseudonymise_key(REFERENCE, mac) == f"hmac:{meta['KeyId'][:8]}:{oracle}"


def test_kms_mac_two_kms_keys_give_different_pseudonyms(kms: Any) -> None:
    one, two = (KmsMac(_hmac_key(kms)["Arn"], kms_client=kms) for _ in range(2))
    assert pseudonymise_key(REFERENCE, one).split(":")[2] != pseudonymise_key(REFERENCE, two).split(":")[2]


def test_kms_mac_same_value_one_kms_request_per_process(kms: Any) -> None:
    counting = CountingKms(kms)
    mac = KmsMac(_hmac_key(kms)["Arn"], kms_client=counting)
    first = [pseudonymise_key(REFERENCE, mac) for _ in range(5)]
    other = pseudonymise_key("ACME-CUST-0043", mac)
    assert len(set(first)) == 1 and other != first[0]
    assert counting.generate_mac_calls == 2


def test_kms_mac_cache_is_bounded(kms: Any) -> None:
    counting = CountingKms(kms)
    mac = KmsMac(_hmac_key(kms)["Arn"], kms_client=counting, cache_size=2)
    for value in ("a", "b", "c", "a"):
        pseudonymise_key(value, mac)
    assert counting.generate_mac_calls == 4  # "a" was evicted by "c": no unbounded growth


def test_kms_mac_encryption_key_is_refused_fail_closed(kms: Any) -> None:
    """A wrong key (the stack's symmetric key) fails the call: no pseudonym rather than a weak one."""
    symmetric = kms.create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError) as info:
        pseudonymise_key(REFERENCE, KmsMac(symmetric, kms_client=kms))
    assert info.value.response["Error"]["Code"] == "InvalidKeyUsageException"


@pytest.mark.parametrize(
    ("key_id", "label"),
    [
        ("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "1234abcd"),
        ("1234ABCD-12ab-34cd-56ef-1234567890ab", "1234abcd"),
        ("arn:aws:kms:eu-west-1:111122223333:key/mrk-0a1b2c3d4e5f4a5b8c9d0e1f2a3b4c5d", "0a1b2c3d"),
    ],
)
def test_key_label_is_the_key_ids_first_characters(key_id: str, label: str) -> None:
    assert key_label(key_id) == label


@pytest.mark.parametrize(
    "key_id",
    ["", "alias/kyc-pseudonyms", "arn:aws:kms:eu-west-1:111122223333:alias/x", "short", "key/!!!!!!!!!"],
)
def test_kms_mac_without_a_usable_key_id_is_refused(key_id: str) -> None:
    with pytest.raises(PseudonymKeyError):
        KmsMac(key_id)
