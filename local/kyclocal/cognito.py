"""The reviewer user pool of template.yaml in moto's Cognito (cognito-idp), and its users.

moto's CloudFormation has no Cognito models, so ``kyclocal.template`` takes the pool, its app client
and its groups out of the stack body; here they are created through moto's cognito-idp API with the
template's own properties (one source). Tokens are moto's: RS256, signed with the key moto publishes
as the pool's JWKS (``/<pool id>/.well-known/jwks.json`` on the moto server), which is what the local
API gateway verifies them against (``kyclocal.api_gateway``), as API Gateway's Cognito authorizer does.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

# CloudFormation property -> CreateUserPool / CreateUserPoolClient parameter, where the API takes it.
_POOL_PROPERTIES = {
    "UserPoolName": "PoolName",
    "Policies": "Policies",
    "AdminCreateUserConfig": "AdminCreateUserConfig",
    "UsernameConfiguration": "UsernameConfiguration",
    "MfaConfiguration": "MfaConfiguration",
    "AccountRecoverySetting": "AccountRecoverySetting",
    "DeletionProtection": "DeletionProtection",
}
_CLIENT_PROPERTIES = (
    "ClientName",
    "GenerateSecret",
    "ExplicitAuthFlows",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "IdTokenValidity",
    "AccessTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
)


class CognitoError(RuntimeError):
    """A user cannot be created or signed in (bad NAME:GROUP, unknown group)."""


@dataclass(frozen=True)
class LocalPool:
    pool_id: str
    client_id: str
    groups: tuple[str, ...]
    endpoint: str  # where a browser or SDK posts InitiateAuth (the moto server)
    region: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json"


def _resolve(value: Any, stack_name: str, ids: dict[str, str]) -> Any:
    """The few intrinsics the pool's properties use: ``Fn::Sub`` of ``${AWS::StackName}``, ``Ref``."""
    if isinstance(value, dict):
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"].replace("${AWS::StackName}", stack_name)
        if "Ref" in value:
            return ids[value["Ref"]]
        return {k: _resolve(v, stack_name, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, stack_name, ids) for v in value]
    return value


def create_pools(
    cognito: Any, resources: dict[str, Any], *, stack_name: str, endpoint: str, region: str
) -> LocalPool | None:
    """Create the template's pool, client and groups; None when the template has none (API disabled)."""
    from kyclocal.cognito_srp import check_srp_proofs

    check_srp_proofs()  # moto's Cognito would accept any SRP proof: check it as Cognito does
    ids: dict[str, str] = {}
    pools = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Cognito::UserPool"}
    if not pools:
        return None
    if len(pools) != 1:
        raise CognitoError(f"expected one user pool in template.yaml, found {sorted(pools)}")
    ((pool_lid, pool),) = pools.items()
    props = _resolve(pool.get("Properties", {}), stack_name, ids)
    params = {api: props[cfn] for cfn, api in _POOL_PROPERTIES.items() if cfn in props}
    ids[pool_lid] = cognito.create_user_pool(**params)["UserPool"]["Id"]
    client_id = ""
    groups = []
    for _lid, resource in resources.items():
        if resource["Type"] not in ("AWS::Cognito::UserPoolClient", "AWS::Cognito::UserPoolGroup"):
            continue
        props = _resolve(resource.get("Properties", {}), stack_name, ids)
        if resource["Type"] == "AWS::Cognito::UserPoolClient":
            client = cognito.create_user_pool_client(
                UserPoolId=props["UserPoolId"], **{k: props[k] for k in _CLIENT_PROPERTIES if k in props}
            )
            client_id = client["UserPoolClient"]["ClientId"]
        elif resource["Type"] == "AWS::Cognito::UserPoolGroup":
            cognito.create_group(
                UserPoolId=props["UserPoolId"],
                GroupName=props["GroupName"],
                Description=props.get("Description", ""),
            )
            groups.append(props["GroupName"])
    return LocalPool(ids[pool_lid], client_id, tuple(groups), endpoint, region)


def parse_user(spec: str) -> tuple[str, str, str | None]:
    """``NAME:GROUP`` or ``NAME:GROUP:PASSWORD`` (``--user``)."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise CognitoError(f"--user {spec!r}: expected NAME:GROUP[:PASSWORD]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 and parts[2] else None


def new_password() -> str:
    """A password the template's policy accepts (14+, upper, lower, digit, symbol)."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(16))
    return f"Kyc-{core}-9a"


def create_user(cognito: Any, pool: LocalPool, name: str, group: str, password: str | None = None) -> str:
    """A confirmed user with a permanent password in ``group``; returns the password."""
    if group not in pool.groups:
        raise CognitoError(f"unknown group {group!r}: one of {', '.join(pool.groups)}")
    password = password or new_password()
    cognito.admin_create_user(UserPoolId=pool.pool_id, Username=name, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool.pool_id, Username=name, Password=password, Permanent=True)
    cognito.admin_add_user_to_group(UserPoolId=pool.pool_id, Username=name, GroupName=group)
    return password


def sign_in(cognito: Any, pool: LocalPool, name: str, password: str) -> dict[str, str]:
    """The tokens a page gets after signing in: USER_SRP_AUTH and PASSWORD_VERIFIER, the app client's one
    password flow (pycognito's AWSSRP, the independent implementation web/js/srp.js is tested against).

    The local stack checks the SRP proof as Cognito does (``kyclocal.cognito_srp``): a wrong password is
    refused with ``NotAuthorizedException``.
    """
    from pycognito.aws_srp import AWSSRP  # a development dependency (requirements-dev.txt)

    result = AWSSRP(name, password, pool.pool_id, pool.client_id, client=cognito).authenticate_user()
    tokens = result["AuthenticationResult"]
    return {"id_token": tokens["IdToken"], "access_token": tokens["AccessToken"]}
