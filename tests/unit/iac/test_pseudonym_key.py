"""The HMAC key behind keyed pseudonyms, after the SAM transform: its spec, and who may use it.

Read as the key-custody tests read ScreeningKey: conditions evaluated for the defaults, every option
on, a break-glass role and an uploader role. The roles that may compute a pseudonym are checked three
ways against each other: the key policy, the roles' own IAM policies, and the functions whose code
builds a ``KmsMac`` (read from ``functions/*/app.py``, not from the template).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.iac.test_key_custody import (
    MODES,
    ROOT_PRINCIPAL,
    USE_ACTIONS,
    _granted,
    _principals,
    _resolved,
    _role_of,
)
from tests.unit.iac.test_template import _as_list, _identity_statements
from tests.unit.iac.test_vpc import _conditions

REPO = Path(__file__).resolve().parents[3]
PSEUDONYM_KEY_ARN = {"Fn::GetAtt": ["PseudonymKey", "Arn"]}
MAC_ACTIONS = {"kms:GenerateMac", "kms:VerifyMac"}
EVERY_USE = USE_ACTIONS | MAC_ACTIONS  # what an HMAC key can do, and what a grant would delegate


def _key_statements(tpl: dict[str, Any], overrides: dict[str, Any]) -> list[dict[str, Any]]:
    policy = tpl["Resources"]["PseudonymKey"]["Properties"]["KeyPolicy"]
    return _resolved(policy, _conditions(tpl, **overrides))["Statement"]


def _present(tpl: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    conditions = _conditions(tpl, **overrides)
    return {lid: r for lid, r in tpl["Resources"].items() if conditions.get(r.get("Condition", ""), True)}


def test_pseudonym_key_is_an_hmac_256_key_kept_on_stack_deletion(transformed):
    key = transformed["Resources"]["PseudonymKey"]
    props = key["Properties"]
    assert (props["KeySpec"], props["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert "EnableKeyRotation" not in props  # KMS refuses rotation of HMAC keys
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"  # old pseudonyms stay checkable
    assert props["PendingWindowInDays"] == 30


@pytest.mark.parametrize("mode", MODES)
def test_pseudonym_key_root_administers_but_never_uses_it(transformed, mode):
    statements = _key_statements(transformed, MODES[mode])
    assert all(st["Effect"] == "Allow" for st in statements)
    admin = [st for st in statements if st["Principal"] == ROOT_PRINCIPAL]
    assert [st["Sid"] for st in admin] == ["AdministerKeyWithoutUsingIt"]  # root appears nowhere else
    for needed in ("kms:PutKeyPolicy", "kms:DescribeKey", "kms:ScheduleKeyDeletion", "kms:TagResource"):
        assert _granted(admin[0], {needed}), f"the administrators lost {needed}"
    assert not _granted(admin[0], EVERY_USE), "administration must not include computing or checking MACs"
    for st in statements:
        assert "*" not in json.dumps(st["Principal"]), f"{st['Sid']}: a wildcard principal"
        assert all(kind == "AWS" for kind, _ in _principals(st)), f"{st['Sid']}: no service uses this key"


@pytest.mark.parametrize("mode", MODES)
def test_pseudonym_key_only_the_pseudonymising_roles_may_generate_macs(transformed, mode):
    overrides = MODES[mode]
    present = _present(transformed, overrides)
    named: dict[str, set[str]] = {}
    for st in _key_statements(transformed, overrides):
        used = _granted(st, EVERY_USE)
        if not used:
            continue
        for _, principal in _principals(st):
            if principal == {"Ref": "BreakGlassRoleArn"}:
                assert used == {"kms:VerifyMac"}, "break-glass may check a pseudonym, not mint one"
                assert overrides.get("BreakGlassRoleArn")
                continue
            role = _role_of(principal)
            assert role in present, f"{st['Sid']}: {principal}"
            assert used == {"kms:GenerateMac"}, f"{role} may do {sorted(used)}"
            assert st["Condition"] == {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"}}
            named.setdefault(role, set()).update(used)
    # the functions told the key (KYC_PSEUDONYM_KEY_ARN) are the ones whose roles the key policy names
    told = {
        res["Properties"]["Role"]["Fn::GetAtt"][0]
        for res in present.values()
        if res["Type"] == "AWS::Lambda::Function"
        and "KYC_PSEUDONYM_KEY_ARN" in res["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert set(named) == told
    expected = {
        "StartScreeningFunctionRole",
        "ValidateUploadFunctionRole",
        "DecideOutcomeFunctionRole",
        "EraseSubmissionFunctionRole",
    }
    if overrides.get("EnableUploadApi") == "true":
        expected.add("IssueUploadUrlFunctionRole")
    if overrides.get("EnableScreeningApi") == "true":  # issue 20: upload keys and reviewer ids
        expected.add("ScreeningApiFunctionRole")
    assert set(named) == expected


def test_pseudonym_key_every_function_that_makes_pseudonyms_is_told_the_key_and_allowed(transformed):
    """The code is the oracle: each handler that builds a KmsMac must get the variable and the grant."""
    present = _present(transformed, MODES["all-on"])
    conditions = _conditions(transformed, **MODES["all-on"])
    functions = {lid: res for lid, res in present.items() if res["Type"] == "AWS::Lambda::Function"}
    folders = {lid: _folder(transformed, lid) for lid in functions}
    macs = {
        lid
        for lid, folder in folders.items()
        if folder and re.search(r"\bKmsMac\(", (REPO / "functions" / folder / "app.py").read_text())
    }
    told = {
        lid
        for lid, res in functions.items()
        if "KYC_PSEUDONYM_KEY_ARN" in res["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert macs == told and len(macs) == 6
    allowed = {
        role
        for role, st in _identity_statements(_resolved({**transformed, "Resources": present}, conditions))
        if PSEUDONYM_KEY_ARN in _as_list(st["Resource"])
    }
    assert allowed == {functions[lid]["Properties"]["Role"]["Fn::GetAtt"][0] for lid in macs}


def _folder(tpl: dict[str, Any], lid: str) -> str | None:
    from kyclocal.template import function_folders

    return function_folders().get(lid)


@pytest.mark.parametrize("mode", MODES)
def test_pseudonym_key_role_policies_grant_only_generate_mac_with_the_algorithm(transformed, mode):
    present = _present(transformed, MODES[mode])
    conditions = _conditions(transformed, **MODES[mode])
    found = 0
    for role, st in _identity_statements(_resolved({**transformed, "Resources": present}, conditions)):
        if PSEUDONYM_KEY_ARN not in _as_list(st["Resource"]):
            continue
        found += 1
        assert st["Sid"] == "MakeKeyedPseudonyms" and _as_list(st["Action"]) == ["kms:GenerateMac"], role
        assert st["Condition"] == {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"}}
    assert found >= 4


def test_pseudonym_key_break_glass_statement_exists_only_when_the_parameter_is_set(transformed):
    sids = {mode: {st.get("Sid") for st in _key_statements(transformed, o)} for mode, o in MODES.items()}
    assert "BreakGlassRoleMayVerifyPseudonyms" not in sids["defaults"] | sids["uploader"]
    assert "BreakGlassRoleMayVerifyPseudonyms" in sids["break-glass"] & sids["all-on"]


def test_pseudonym_key_arn_is_an_output(transformed):
    assert transformed["Outputs"]["PseudonymKeyArn"]["Value"] == PSEUDONYM_KEY_ARN
