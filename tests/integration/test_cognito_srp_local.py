"""The local stack's Cognito checks the SRP proof (kyclocal.cognito_srp), over HTTP to moto's server.

moto alone accepts any PASSWORD_VERIFIER signature; with the check installed a wrong password is
refused, a right one signs in, and a proof is good once. The client is pycognito's AWSSRP, the
implementation the workbench page's own SRP module is tested against.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer
from pycognito.aws_srp import AWSSRP, N_HEX

from kyclocal.cognito_srp import check_srp_proofs

pytestmark = pytest.mark.integration

PEOPLE = {"alice": "Corr3ct-Horse!battery", "zoë.ñandú": "Pässwörd-ÅÖ-42-中文x"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pool() -> Iterator[dict[str, Any]]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    check_srp_proofs()
    try:
        idp = boto3.client(
            "cognito-idp",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="eu-west-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        pool_id = idp.create_user_pool(PoolName="reviewers")["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="workbench",
            ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        for name, password in PEOPLE.items():
            idp.admin_create_user(UserPoolId=pool_id, Username=name, MessageAction="SUPPRESS")
            idp.admin_set_user_password(UserPoolId=pool_id, Username=name, Password=password, Permanent=True)
        yield {"idp": idp, "pool_id": pool_id, "client_id": client_id}
    finally:
        server.stop()


def _srp(pool: dict[str, Any], name: str, password: str) -> AWSSRP:
    return AWSSRP(name, password, pool["pool_id"], pool["client_id"], client=pool["idp"])


@pytest.mark.parametrize("name", sorted(PEOPLE))
def test_the_right_password_signs_in(pool: dict[str, Any], name: str) -> None:
    tokens = _srp(pool, name, PEOPLE[name]).authenticate_user()["AuthenticationResult"]
    assert tokens["IdToken"].count(".") == 2 and tokens["AccessToken"]


@pytest.mark.parametrize(
    "password", ["wrong", PEOPLE["alice"] + " ", PEOPLE["alice"].upper(), PEOPLE["zoë.ñandú"]]
)
def test_a_wrong_password_is_refused_as_cognito_refuses_it(pool: dict[str, Any], password: str) -> None:
    with pytest.raises(ClientError) as refused:
        _srp(pool, "alice", password).authenticate_user()
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"


def _first_round(pool: dict[str, Any], srp: AWSSRP) -> tuple[dict[str, Any], dict[str, str]]:
    params = srp.get_auth_params()
    challenge = pool["idp"].initiate_auth(
        ClientId=pool["client_id"], AuthFlow="USER_SRP_AUTH", AuthParameters=params
    )
    assert challenge["ChallengeName"] == "PASSWORD_VERIFIER"
    return challenge, params


def test_a_proof_is_good_once(pool: dict[str, Any]) -> None:
    srp = _srp(pool, "alice", PEOPLE["alice"])
    challenge, params = _first_round(pool, srp)
    answer = srp.process_challenge(challenge["ChallengeParameters"], params)
    respond = {
        "ClientId": pool["client_id"],
        "ChallengeName": "PASSWORD_VERIFIER",
        "ChallengeResponses": answer,
        "Session": challenge["Session"],
    }
    assert "AuthenticationResult" in pool["idp"].respond_to_auth_challenge(**respond)
    with pytest.raises(ClientError) as replayed:
        pool["idp"].respond_to_auth_challenge(**respond)
    assert replayed.value.response["Error"]["Code"] in ("NotAuthorizedException", "ResourceNotFoundException")


def test_the_server_sends_a_real_srp_b_and_salt(pool: dict[str, Any]) -> None:
    """moto's own SRP_B is a random 128-bit uuid; the server's B is a group element, and fresh each time."""
    big_n = int(N_HEX, 16)
    seen = set()
    for _ in range(3):
        challenge, _params = _first_round(pool, _srp(pool, "alice", PEOPLE["alice"]))
        big_b = int(challenge["ChallengeParameters"]["SRP_B"], 16)
        assert 0 < big_b < big_n and big_b.bit_length() > 2048
        seen.add((big_b, challenge["ChallengeParameters"]["SALT"]))
    assert len(seen) == 3


def test_a_tampered_signature_or_timestamp_is_refused(pool: dict[str, Any]) -> None:
    for field in ("PASSWORD_CLAIM_SIGNATURE", "TIMESTAMP"):
        srp = _srp(pool, "alice", PEOPLE["alice"])
        challenge, params = _first_round(pool, srp)
        answer = srp.process_challenge(challenge["ChallengeParameters"], params)
        answer[field] = answer[field][:-2] + ("AA" if not answer[field].endswith("AA") else "BB")
        with pytest.raises(ClientError) as refused:
            pool["idp"].respond_to_auth_challenge(
                ClientId=pool["client_id"],
                ChallengeName="PASSWORD_VERIFIER",
                ChallengeResponses=answer,
                Session=challenge["Session"],
            )
        assert refused.value.response["Error"]["Code"] == "NotAuthorizedException", field


def test_an_srp_a_of_zero_mod_n_is_refused(pool: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as refused:
        pool["idp"].initiate_auth(
            ClientId=pool["client_id"],
            AuthFlow="USER_SRP_AUTH",
            AuthParameters={"USERNAME": "alice", "SRP_A": N_HEX},
        )
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
