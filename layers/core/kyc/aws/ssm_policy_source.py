"""The decision-policy override from SSM Parameter Store, decrypted, with the version it came from.

Powertools' ``SSMProvider`` returns only the value, and ``get_parameter`` does not decrypt unless
asked, so a SecureString override (documented, encrypted with the stack key) used to reach the
policy parser as ciphertext and fail every decision. This provider keeps Powertools' caching and
returns what a decision record needs to name its override: the document, the parameter's name,
version and type.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import BaseProvider

from kyc.aws.clients import client


class PolicyOverrideProvider(BaseProvider):
    def __init__(self, ssm_client: Any = None) -> None:
        self.client = ssm_client or client("ssm")
        super().__init__(client=self.client)

    def _get(self, name: str, **sdk_options: Any) -> dict[str, Any]:
        # WithDecryption is harmless for a String parameter and required for a SecureString.
        parameter = self.client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        return {
            "document": parameter["Value"],
            "parameter": name,
            "parameter_version": parameter.get("Version"),
            "parameter_type": parameter.get("Type"),
        }

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError("the policy override is one parameter")
