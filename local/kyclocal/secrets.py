"""The template's Secrets Manager secrets in moto's Secrets Manager (the webhook's signing key, issue 20).

moto's CloudFormation has no model for ``AWS::SecretsManager::Secret``, so ``kyclocal.template`` takes
each one out of the stack body and points every ``Ref`` to it at a partial ARN naming
``local-out-of-band-<logical id>`` (Secrets Manager, and moto, find a secret by its partial ARN); here
that secret is created with the template's own properties: its generated value (``GenerateSecretString``
through ``GetRandomPassword``, as CloudFormation does), its description and the stack key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SECRET_TYPE = "AWS::SecretsManager::Secret"  # noqa: S105 - a CloudFormation type name
# GenerateSecretString property -> GetRandomPassword parameter
_PASSWORD_PROPERTIES = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeLowercase",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def local_secret_name(logical_id: str) -> str:
    return f"local-out-of-band-{logical_id}"


def local_secret_arn(logical_id: str, region: str, account: str) -> str:
    """The partial ARN a ``Ref`` to the secret becomes in the local stack body."""
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{local_secret_name(logical_id)}"


def create_secrets(
    secretsmanager: Any, resources: dict[str, Any], *, key_arn: Callable[[str], str]
) -> dict[str, str]:
    """Create the taken-out secrets; logical id -> ARN. ``key_arn``: a stack KMS key's ARN by logical id."""
    created = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != SECRET_TYPE:
            continue
        props = resource.get("Properties", {})
        params: dict[str, Any] = {"Name": local_secret_name(logical_id)}
        if isinstance(props.get("Description"), str):
            params["Description"] = props["Description"]
        key = props.get("KmsKeyId")
        if isinstance(key, dict) and "Fn::GetAtt" in key:
            params["KmsKeyId"] = key_arn(key["Fn::GetAtt"][0])
        if "SecretString" in props:
            params["SecretString"] = props["SecretString"]
        else:
            generate = props.get("GenerateSecretString", {})
            options = {k: generate[k] for k in _PASSWORD_PROPERTIES if k in generate}
            params["SecretString"] = secretsmanager.get_random_password(**options)["RandomPassword"]
        created[logical_id] = secretsmanager.create_secret(**params)["ARN"]
    return created
