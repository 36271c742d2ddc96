"""The production pointer: one SSM parameter, the decision policy plus where its model is served.

A promotion is ONE PutParameter of a new version; score and decide read the same parameter, so traffic
and policy switch together. A rollback writes the previous version's value back, read from SSM's own
parameter history (a record the promoting caller does not write), so "one step back" is exact and is
itself a new, audited version. SecureString under the stack key, as the policy override always was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kyc.aws.clients import client


class PointerError(RuntimeError):
    """No pointer, or no earlier version to go back to."""


@dataclass(frozen=True)
class PointerVersion:
    version: int
    document: dict[str, Any]


class ProductionPointer:
    def __init__(self, name: str, kms_key_id: str, ssm_client: Any = None) -> None:
        self.name = name
        self.kms_key_id = kms_key_id
        self._ssm = ssm_client or client("ssm")

    def current(self) -> PointerVersion | None:
        try:
            p = self._ssm.get_parameter(Name=self.name, WithDecryption=True)["Parameter"]
        except self._ssm.exceptions.ParameterNotFound:
            return None
        return PointerVersion(int(p["Version"]), json.loads(p["Value"]))

    def put(self, document: dict[str, Any], *, expected_version: int | None) -> PointerVersion:
        """Write ``document`` as the next version, refused if someone moved the pointer meanwhile
        (``expected_version``: the version this change was planned against; None: none existed)."""
        now = self.current()
        if (now.version if now else None) != expected_version:
            raise PointerError(
                f"{self.name} moved to version {now.version if now else None} "
                f"since this change was planned against {expected_version}"
            )
        version = self._ssm.put_parameter(
            Name=self.name,
            Type="SecureString",
            KeyId=self.kms_key_id,
            Value=json.dumps(document, sort_keys=True),
            Overwrite=True,
        )["Version"]
        return PointerVersion(int(version), document)

    def history(self) -> list[PointerVersion]:
        """Every version SSM keeps (the last 100), oldest first."""
        out: list[PointerVersion] = []
        kwargs: dict[str, Any] = {"Name": self.name, "WithDecryption": True, "MaxResults": 50}
        while True:
            page = self._ssm.get_parameter_history(**kwargs)
            out.extend(PointerVersion(int(p["Version"]), json.loads(p["Value"])) for p in page["Parameters"])
            if not page.get("NextToken"):
                return sorted(out, key=lambda v: v.version)
            kwargs["NextToken"] = page["NextToken"]

    def previous(self) -> PointerVersion:
        """The version before the current one, from SSM's history."""
        versions = self.history()
        if len(versions) < 2:
            raise PointerError(f"{self.name} has no earlier version to go back to")
        return versions[-2]
