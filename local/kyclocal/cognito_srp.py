"""The SRP proof checked locally, as Cognito checks it: moto's Cognito accepts any signature.

moto answers ``InitiateAuth USER_SRP_AUTH`` with a random ``SRP_B`` and salt and then accepts any
``PASSWORD_VERIFIER`` response, so on the local stack any password signed a known user in. This
module plays Cognito's server side of SRP-6a (the 3072-bit group of RFC 5054, ``k = H(N | g)``, the
HKDF "Caldera Derived Key" and the HMAC over pool name, user id, secret block and timestamp, as the
AWS clients compute them) from the password moto holds for the user, and refuses a response whose
signature does not prove that password (``NotAuthorizedException``, as Cognito does). Each
challenge is single-use.

The arithmetic primitives (the group, padding, HKDF, ``u``) are pycognito's, the client library
the tests sign in with; the server's own step (``B = k v + g^b``, ``S = (A v^u)^b``) is here, so a
mistake on either side shows as a refused sign-in. Patched in-process, once, on moto's backend.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from typing import Any

_CHALLENGE_LIMIT = 1024  # open challenges kept (oldest dropped first): a local stack, not a service


@dataclass(frozen=True)
class SrpChallenge:
    """One USER_SRP_AUTH challenge as the server holds it until the PASSWORD_VERIFIER response."""

    pool_name: str  # the part of the pool id after "_", as the client hashes it
    user_id: str  # USER_ID_FOR_SRP
    verifier: int  # v = g^x mod N
    small_b: int
    big_a: int
    big_b: int
    salt_hex: str

    def expected_signature(self, secret_block: str, timestamp: str) -> str:
        from pycognito.aws_srp import N_HEX, calculate_u, compute_hkdf, hex_to_long, long_to_hex, pad_hex

        big_n = hex_to_long(N_HEX)
        u = calculate_u(self.big_a, self.big_b)
        s = pow(self.big_a * pow(self.verifier, u, big_n), self.small_b, big_n)
        key = compute_hkdf(bytearray.fromhex(pad_hex(s)), bytearray.fromhex(pad_hex(long_to_hex(u))))
        message = (
            self.pool_name.encode("utf-8")
            + self.user_id.encode("utf-8")
            + base64.standard_b64decode(secret_block)
            + timestamp.encode("utf-8")
        )
        return base64.standard_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")

    def proves(self, secret_block: str, timestamp: str, signature: str) -> bool:
        expected = self.expected_signature(secret_block, timestamp)
        return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))


def start_challenge(pool_id: str, user_id: str, password: str, srp_a_hex: str) -> SrpChallenge:
    """The server's half of the first round; ValueError for an ``A`` the protocol must refuse."""
    from pycognito.aws_srp import (
        G_HEX,
        N_HEX,
        calculate_u,
        get_random,
        hash_sha256,
        hex_hash,
        hex_to_long,
        pad_hex,
    )

    big_n, g = hex_to_long(N_HEX), hex_to_long(G_HEX)
    big_a = hex_to_long(srp_a_hex)
    if big_a % big_n == 0:
        raise ValueError("SRP_A is 0 mod N")
    pool_name = pool_id.split("_", 1)[1]
    salt_hex = pad_hex(get_random(16))  # Cognito's own form: never "00" before a byte below 0x80
    secret = hash_sha256(f"{pool_name}{user_id}:{password}".encode())
    x = hex_to_long(hex_hash(pad_hex(salt_hex) + secret))
    verifier = pow(g, x, big_n)
    k = hex_to_long(hex_hash("00" + N_HEX + "0" + G_HEX))
    while True:
        small_b = get_random(128) % big_n
        big_b = (k * verifier + pow(g, small_b, big_n)) % big_n
        if big_b and calculate_u(big_a, big_b):
            break
    return SrpChallenge(pool_name, user_id, verifier, small_b, big_a, big_b, salt_hex)


_lock = threading.Lock()
_open: dict[str, SrpChallenge] = {}


def check_srp_proofs() -> None:
    """Patch moto's Cognito (in this process) to run and check real SRP challenges."""
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.models import CognitoIdpBackend
    from pycognito.aws_srp import long_to_hex

    if getattr(CognitoIdpBackend, "_kyclocal_srp", False):
        return
    raw_initiate, raw_respond = CognitoIdpBackend.initiate_auth, CognitoIdpBackend.respond_to_auth_challenge

    def initiate_auth(self: Any, client_id: str, auth_flow: str, auth_parameters: dict[str, str]) -> Any:
        result = raw_initiate(self, client_id, auth_flow, auth_parameters)
        if result.get("ChallengeName") != "PASSWORD_VERIFIER":
            return result
        session = result["Session"]
        username, pool = self.sessions[session]
        user = self.admin_get_user(pool.id, username)
        params = result["ChallengeParameters"]
        try:
            challenge = start_challenge(
                pool.id, params["USER_ID_FOR_SRP"], user.password or "", auth_parameters["SRP_A"]
            )
        except ValueError as exc:
            raise NotAuthorizedError(f"Incorrect username or password. ({exc})") from None
        # moto finds the session of a PASSWORD_VERIFIER response by its secret block: a real,
        # random, base64 block (moto's own is the session id, not base64) names the same session
        secret_block = base64.standard_b64encode(os.urandom(64)).decode("ascii")
        self.sessions[secret_block] = self.sessions[session]
        with _lock:
            while len(_open) >= _CHALLENGE_LIMIT:
                _open.pop(next(iter(_open)))
            _open[secret_block] = challenge
        params.update(
            {"SALT": challenge.salt_hex, "SRP_B": long_to_hex(challenge.big_b), "SECRET_BLOCK": secret_block}
        )
        return result

    def respond_to_auth_challenge(
        self: Any, session: str, client_id: str, challenge_name: str, challenge_responses: dict[str, str]
    ) -> Any:
        if challenge_name == "PASSWORD_VERIFIER":
            block = challenge_responses.get("PASSWORD_CLAIM_SECRET_BLOCK") or ""
            with _lock:
                challenge = _open.pop(block, None)  # single use: a replayed response finds nothing
            timestamp = challenge_responses.get("TIMESTAMP") or ""
            signature = challenge_responses.get("PASSWORD_CLAIM_SIGNATURE") or ""
            if challenge is None or not challenge.proves(block, timestamp, signature):
                raise NotAuthorizedError("Incorrect username or password.")
        return raw_respond(self, session, client_id, challenge_name, challenge_responses)

    CognitoIdpBackend.initiate_auth = initiate_auth  # type: ignore[method-assign]
    CognitoIdpBackend.respond_to_auth_challenge = respond_to_auth_challenge  # type: ignore[method-assign]
    CognitoIdpBackend._kyclocal_srp = True  # type: ignore[attr-defined]
