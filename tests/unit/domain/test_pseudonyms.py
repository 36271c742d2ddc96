"""Keyed pseudonyms: stable under one key, different under another, and not recomputable without it."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from kyc.domain.identity import PSEUDONYM_PATTERN, pseudonym_key_segment, pseudonymise_key
from tests.fixtures.macs import TEST_MAC, StdlibHmac

REFERENCE = "ACME-CUST-0042"
KEY = f"uploads/{REFERENCE}/selfie.mp4"


def test_pseudonym_is_the_labelled_hmac_sha256_of_the_value() -> None:
    expected = hmac.new(TEST_MAC.key, REFERENCE.encode(), hashlib.sha256).hexdigest()  # by hand
    assert pseudonymise_key(REFERENCE, TEST_MAC) == f"hmac:testkey1:{expected}"


def test_pseudonym_same_value_same_key_is_stable() -> None:
    again = StdlibHmac(key=TEST_MAC.key, label=TEST_MAC.label)  # another instance, same key
    assert pseudonymise_key(KEY, TEST_MAC) == pseudonymise_key(KEY, again) == pseudonymise_key(KEY, TEST_MAC)


def test_pseudonym_same_value_two_keys_differ() -> None:
    other = StdlibHmac(key=b"a second, independent key", label="testkey2")
    one, two = pseudonymise_key(REFERENCE, TEST_MAC), pseudonymise_key(REFERENCE, other)
    assert one.split(":")[2] != two.split(":")[2]
    assert one.split(":")[1] != two.split(":")[1]  # the label says which key made each


def test_pseudonym_distinct_values_distinct_pseudonyms() -> None:
    values = [f"ACME-{i:05d}" for i in range(2000)]
    assert len({pseudonymise_key(v, TEST_MAC) for v in values}) == len(values)


@pytest.mark.parametrize("value", [REFERENCE, KEY])
def test_pseudonym_cannot_be_recomputed_without_the_key(value: str) -> None:
    """What an attacker with a list of candidate references can compute offline gives nothing."""
    pseudonym = pseudonymise_key(value, TEST_MAC)
    digest = pseudonym.rsplit(":", 1)[1]
    data = value.encode()
    unkeyed = [
        hashlib.sha256(data).hexdigest(),
        hashlib.sha256(data).hexdigest()[:16],  # the old pseudonym: sha256:<16 hex>
        hashlib.sha512(data).hexdigest()[:64],
        hashlib.blake2b(data, digest_size=32).hexdigest(),
    ]
    guessed_keys = [b"", data, b"kycscreen", b"hmac", b"testkey1", b"secret", b"uploads/", b"\x00" * 32]
    keyed = [hmac.new(k, data, hashlib.sha256).hexdigest() for k in guessed_keys]
    for candidate in unkeyed + keyed:
        assert candidate != digest and candidate not in pseudonym
    assert value not in pseudonym and value.lower() not in pseudonym


def test_pseudonym_is_long_enough_not_to_collide() -> None:
    pseudonym = pseudonymise_key(REFERENCE, TEST_MAC)
    assert PSEUDONYM_PATTERN.fullmatch(pseudonym)
    assert len(pseudonym.rsplit(":", 1)[1]) == 64  # the whole 256-bit MAC: KMS VerifyMac can check it


def test_pseudonym_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        pseudonymise_key("", TEST_MAC)


def test_pseudonym_key_segment_is_the_same_pseudonym_without_colons() -> None:
    pseudonym = pseudonymise_key(REFERENCE, TEST_MAC)
    segment = pseudonym_key_segment(pseudonym)
    assert segment == pseudonym.replace(":", "-") and "/" not in segment and ":" not in segment
    with pytest.raises(ValueError):
        pseudonym_key_segment(REFERENCE)  # only a pseudonym may become a key segment
    with pytest.raises(ValueError):
        pseudonym_key_segment("sha256:" + "0" * 16)  # nor an old, unkeyed one
