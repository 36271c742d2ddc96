"""The workbench's SRP sign-in maths (web/js/srp.js) against an independent implementation.

The page proves the password to Cognito with USER_SRP_AUTH / PASSWORD_VERIFIER. moto's Cognito does
not check that proof (its PASSWORD_VERIFIER accepts any signature: moto/cognitoidp/models.py), so the
local journeys show the flow, not the maths. The maths are proven here: the page's own module, loaded
by headless Chromium under the page's CSP, is fed the same private value a, salt, SRP_B, secret block
and timestamp as pycognito's AWSSRP (a separate Python implementation of AWS's client) and must produce
the same SRP_A and the same PASSWORD_CLAIM_SIGNATURE, for many random challenges, odd user names and
passwords included.
"""

from __future__ import annotations

import base64
import datetime
import random
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from pycognito.aws_srp import AWSSRP, N_HEX, pad_hex

from kyclocal.workbench import WorkbenchServer
from tests.fixtures.browser import SCREENSHOTS, browser_or_skip, run_journey

N = int(N_HEX, 16)
POOL_ID = "eu-west-1_Ab1CdEfGh"
USERS = [
    ("0f4b2d6e-5a1c-4c55-9f0e-3f2a1b7c8d9e", "Kyc-Str0ng-Passw0rd!"),
    ("alice", "Kyc-a"),
    ("ünïcødé-user", "pässwörd-🙂-Kyc1!"),
    ("a:b", ":colon:in:password:"),
]


class _FrozenClock:
    """Stands in for pycognito's ``datetime`` module so that its TIMESTAMP is the one we hand the page."""

    def __init__(self, moment: datetime.datetime) -> None:
        self.moment = moment
        self.datetime = self

    def utcnow(self) -> datetime.datetime:
        return self.moment


def _oracle(
    vector: dict[str, Any], moment: datetime.datetime, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """pycognito's SRP_A and PASSWORD_VERIFIER answer for this private value and challenge."""
    srp = AWSSRP(vector["userId"], vector["password"], POOL_ID, "client-id", client=object())
    srp.small_a_value = int(vector["a"], 16)
    srp.large_a_value = srp.calculate_a()
    monkeypatch.setattr("pycognito.aws_srp.datetime", _FrozenClock(moment))
    answer = srp.process_challenge(
        {
            "USERNAME": vector["userId"],
            "USER_ID_FOR_SRP": vector["userId"],
            "SALT": vector["salt"],
            "SRP_B": vector["B"],
            "SECRET_BLOCK": vector["secretBlock"],
        },
        {"USERNAME": vector["userId"]},
    )
    return {"A": srp.get_auth_params()["SRP_A"], "signature": answer["PASSWORD_CLAIM_SIGNATURE"], **answer}


def _vectors(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    vectors = []
    for i in range(count):
        user, password = USERS[i % len(USERS)]
        a = rng.getrandbits(1024) % N
        if i % 5 == 1:
            a = rng.getrandbits(64)  # a short private value: A's hex has no leading 00
        b = rng.getrandbits(3072) % N if i % 3 else rng.getrandbits(128)  # moto's SRP_B is a 128-bit hex
        # salts as a server makes them (pad_hex of a random integer: a leading 00 only before a high byte)
        salt = pad_hex(rng.getrandbits(128) | (1 << 127) if i % 2 else rng.getrandbits(120))
        block = (
            base64.b64encode(rng.randbytes(rng.randint(16, 1200))).decode()
            if i % 4
            else "f8c0a6f2-3a8e-4a62-9b1d-8f8f2f0a9c11"  # moto's SECRET_BLOCK is a session uuid, not base64
        )
        vectors.append(
            {
                "poolId": POOL_ID,
                "userId": user,
                "password": password,
                "a": f"{a:x}",
                "salt": salt,
                "B": f"{b:x}",
                "secretBlock": block,
            }
        )
    return vectors


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    browser_or_skip()
    config = {
        "apiUrl": "http://127.0.0.1:9/v1",
        "cognitoEndpoint": "http://127.0.0.1:9/",
        "userPoolId": POOL_ID,
        "userPoolClientId": "client-id",
        "region": "eu-west-1",
        "imageOrigins": [],
    }
    with WorkbenchServer() as server:
        server.serve(config, origins={})
        yield server.url


def test_page_srp_matches_pycognito_on_random_challenges(
    page_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    moments = [
        datetime.datetime(2026, 12, 6, 9, 1, 9, tzinfo=datetime.UTC),
        datetime.datetime(2027, 2, 28, 23, 59, 59, tzinfo=datetime.UTC),
        datetime.datetime(2026, 1, 31, 0, 0, 0, tzinfo=datetime.UTC),
    ]
    vectors = _vectors(24, seed=secrets.randbits(32))
    expected = []
    for i, vector in enumerate(vectors):
        moment = moments[i % len(moments)]
        oracle = _oracle(vector, moment.replace(tzinfo=None), monkeypatch)
        vector["timestamp"] = oracle["TIMESTAMP"]
        expected.append(oracle)
    dates = [int(m.timestamp() * 1000) for m in moments]
    outcome = run_journey(
        {
            "journey": "srp_vectors",
            "url": page_url,
            "vectors": vectors,
            "dates": dates,
            "screenshot": str(SCREENSHOTS / "srp_vectors.png"),
        }
    )
    assert outcome["violations"] == []  # the module loads under the page's CSP
    result = outcome["result"]
    # the page formats the time as pycognito does (day not padded, UTC)
    assert result["dates"] == [AWSSRP.get_cognito_formatted_timestamp(m) for m in moments]
    assert result["dates"][0] == "Sun Dec 6 09:01:09 UTC 2026"  # and as Cognito documents it, by hand
    for vector, oracle, got in zip(vectors, expected, result["vectors"], strict=True):
        assert "error" not in got, (vector, got)
        assert got["A"] == oracle["A"], vector
        assert got["signature"] == oracle["signature"], vector
    full = sorted(g["ms"] for v, g in zip(vectors, result["vectors"], strict=True) if len(v["a"]) > 200)
    # the figure docs/workbench.md quotes: what a sign-in costs the page (A and the proof, 1024-bit a)
    median, worst = full[len(full) // 2], full[-1]
    print(f"SRP in Chromium: A + PASSWORD_CLAIM_SIGNATURE median {median:.0f} ms, max {worst:.0f} ms")


def test_a_wrong_password_or_tampered_challenge_changes_the_signature(
    page_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (base,) = _vectors(1, seed=7)
    base["timestamp"] = "Sun Dec 6 09:01:09 UTC 2026"
    variants = [
        base,
        {**base, "password": base["password"] + "x"},
        {**base, "salt": pad_hex(int(base["salt"], 16) + 1)},
        {**base, "timestamp": "Sun Dec 6 09:01:10 UTC 2026"},
        {**base, "B": f"{N:x}"},  # B = N (B mod N = 0): a client must refuse it (RFC 5054 2.5.4)
        {**base, "B": "not-hex"},
    ]
    outcome = run_journey({"journey": "srp_vectors", "url": page_url, "vectors": variants, "dates": []})
    got = outcome["result"]["vectors"]
    signatures = [g.get("signature") for g in got[:4]]
    assert None not in signatures and len(set(signatures)) == 4
    assert "SrpError" in got[4]["error"] and "SrpError" in got[5]["error"]
    moment = datetime.datetime(2026, 12, 6, 9, 1, 9)
    assert signatures[0] == _oracle(base, moment, monkeypatch)["signature"]


def test_fresh_private_values_are_random_and_in_the_group(page_url: str) -> None:
    outcome = run_journey({"journey": "srp_vectors", "url": page_url, "vectors": [], "dates": []})
    fresh = outcome["result"]["fresh"]
    a1, a2 = (int(e["a"], 16) for e in fresh)
    assert a1 != a2 and 0 < a1 < N and a1.bit_length() > 1000  # 1024 random bits mod N
    for entry in fresh:
        assert int(entry["A"], 16) == pow(2, int(entry["a"], 16), N)  # A = g^a mod N, by Python's pow
