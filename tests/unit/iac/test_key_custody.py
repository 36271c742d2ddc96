"""Key custody after the SAM transform: who may use the stack key, and the state machine under it.

The key policy is read as deployed (after the transform) and with its conditions evaluated for three
parameter sets: the defaults, every optional feature on (what `make iac` lints), and a break-glass role.
KMS's own wildcard matching is re-done here with fnmatch over the actions that reveal or make data keys.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from graphlib import CycleError, TopologicalSorter
from typing import Any

import pytest

from tests.unit.iac.test_operations import ALL_ON
from tests.unit.iac.test_template import KEY_ARN, _as_list, _identity_statements, _resources
from tests.unit.iac.test_vpc import _conditions

BREAK_GLASS = "arn:aws:iam::111122223333:role/kyc-break-glass"
UPLOADER = "arn:aws:iam::111122223333:role/onboarding-uploader"
KEY_ADMIN = "arn:aws:iam::111122223333:role/kyc-key-admin"
ROOT_PRINCIPAL = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
# Every KMS action that decrypts, re-encrypts or returns/creates data keys, or delegates them (grants).
USE_ACTIONS = {
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:CreateGrant",
}
REVEALING = {"kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"}
STATE_MACHINE_CONTEXT = "kms:EncryptionContext:aws:states:stateMachineArn"
MODES = {
    "defaults": {},
    "all-on": ALL_ON,
    "break-glass": {"BreakGlassRoleArn": BREAK_GLASS},
    "uploader": {"UploaderRoleArn": UPLOADER},
    "key-admin": {"KeyAdminRoleArn": KEY_ADMIN},
}
KEY_ADMIN_PRINCIPAL = {"AWS": {"Ref": "KeyAdminRoleArn"}}
STACK_KEYS = ("ScreeningKey", "PseudonymKey", "DigestSigningKey")
THROUGH_CLOUDFORMATION = {"ForAnyValue:StringEquals": {"aws:CalledVia": "cloudformation.amazonaws.com"}}


def _resolved(node: Any, conditions: dict[str, bool]) -> Any:
    """Fn::If resolved for the given conditions; AWS::NoValue removed from lists and objects."""
    if isinstance(node, list):
        items = [_resolved(item, conditions) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return _resolved(when_true if conditions[name] else when_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        items = {key: _resolved(value, conditions) for key, value in node.items()}
        return {key: value for key, value in items.items() if value is not _NO_VALUE}
    return node


_NO_VALUE = object()


def _key_statements(tpl: dict[str, Any], overrides: dict[str, Any]) -> list[dict[str, Any]]:
    policy = tpl["Resources"]["ScreeningKey"]["Properties"]["KeyPolicy"]
    return _resolved(policy, _conditions(tpl, **overrides))["Statement"]


def _granted(statement: dict[str, Any], actions: set[str]) -> set[str]:
    patterns = _as_list(statement["Action"])
    return {a for a in actions if any(fnmatchcase(a.lower(), p.lower()) for p in patterns)}


def _principals(statement: dict[str, Any]) -> list[Any]:
    principal = statement["Principal"]
    if principal == "*":
        return ["*"]
    return [(kind, p) for kind, value in principal.items() for p in _as_list(value)]


def _role_of(principal: Any) -> str | None:
    """The stack role a principal names by !GetAtt, if it does."""
    if isinstance(principal, dict) and "Fn::GetAtt" in principal and principal["Fn::GetAtt"][1] == "Arn":
        return principal["Fn::GetAtt"][0]
    return None


@pytest.mark.parametrize("mode", MODES)
def test_the_account_administers_the_key_but_iam_alone_cannot_grant_decryption(transformed, mode):
    statements = _key_statements(transformed, MODES[mode])
    assert all(st["Effect"] == "Allow" for st in statements)
    admin = [st for st in statements if st.get("Sid") == "AdministerKeyWithoutUsingIt"]
    expected = KEY_ADMIN_PRINCIPAL if MODES[mode].get("KeyAdminRoleArn") else ROOT_PRINCIPAL
    assert len(admin) == 1 and admin[0]["Principal"] == expected
    for needed in ("kms:PutKeyPolicy", "kms:DescribeKey", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation"):
        assert _granted(admin[0], {needed}), f"the administrators lost {needed}"
    assert not _granted(admin[0], USE_ACTIONS), "administration must not include using the key"
    for st in statements:
        if st["Principal"] != ROOT_PRINCIPAL and "*" not in json.dumps(st["Principal"]):
            continue
        used = _granted(st, USE_ACTIONS)
        assert not used & REVEALING, f"{st.get('Sid')}: the account (any IAM policy) may decrypt"
        if not used:
            continue
        condition = st.get("Condition", {})
        if used == {"kms:CreateGrant"}:
            # only for a resource of an integrated service (DynamoDB, Lambda), never a free-standing grant
            assert condition == {"Bool": {"kms:GrantIsForAWSResource": True}}, st.get("Sid")
            continue
        # write-only, through named services, from this account
        assert used <= {"kms:Encrypt", "kms:GenerateDataKey"}, f"{st.get('Sid')}: {sorted(used)}"
        assert condition["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
        services = [s["Fn::Sub"] for s in condition["StringEquals"]["kms:ViaService"]]
        assert services and all(
            re.fullmatch(r"[a-z0-9]+\.\$\{AWS::Region\}\.amazonaws\.com", s) for s in services
        )


@pytest.mark.parametrize("mode", MODES)
def test_only_stack_roles_conditioned_services_and_break_glass_may_decrypt(transformed, mode):
    roles = set(_resources(transformed, "AWS::IAM::Role"))
    conditions = _conditions(transformed, **MODES[mode])
    present = {r for r in roles if conditions.get(transformed["Resources"][r].get("Condition", ""), True)}
    for st in _key_statements(transformed, MODES[mode]):
        if not _granted(st, REVEALING):
            continue
        for kind, principal in _principals(st):
            assert principal != "*", st.get("Sid")
            if kind == "Service":
                # a service decrypts only for this account's resources (source or encryption context)
                condition = json.dumps(st["Condition"])
                assert "aws:SourceAccount" in condition or "kms:EncryptionContext" in condition, st["Sid"]
            elif principal == {"Ref": "BreakGlassRoleArn"}:
                assert st["Sid"] == "BreakGlassRoleMayUseKey" and MODES[mode].get("BreakGlassRoleArn")
            elif principal == {"Ref": "UploaderRoleArn"}:
                # the onboarding system's role: only through S3 (multipart uploads), nothing else
                assert st["Sid"] == "UploaderRoleMayUseKeyThroughS3" and MODES[mode].get("UploaderRoleArn")
                assert st["Condition"] == {
                    "StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}
                }
            else:
                assert kind == "AWS" and _role_of(principal) in present, f"{st.get('Sid')}: {principal}"
                # roles use the key only through a data service or for the execution history
                condition = st["Condition"]["StringEquals"]
                assert set(condition) & {"kms:ViaService", STATE_MACHINE_CONTEXT}, st["Sid"]


@pytest.mark.parametrize("mode", MODES)
def test_every_kms_permission_a_stack_role_holds_is_honoured_by_the_key_policy(transformed, mode):
    """With the account unable to delegate use, a role's own KMS statement works only if the key policy
    names that role for the same action: every one must, or the pipeline fails closed in production."""
    conditions = _conditions(transformed, **MODES[mode])
    present = {
        lid: res
        for lid, res in transformed["Resources"].items()
        if conditions.get(res.get("Condition", ""), True)
    }
    statements = _key_statements(transformed, MODES[mode])
    named: dict[str, set[str]] = {}
    for st in statements:
        for kind, principal in _principals(st):
            if kind == "AWS" and _role_of(principal):
                named.setdefault(_role_of(principal), set()).update(
                    _granted(st, USE_ACTIONS | {"kms:DescribeKey"})
                )
    checked = 0
    for role, st in _identity_statements(_resolved({**transformed, "Resources": present}, conditions)):
        actions = {a for a in _as_list(st["Action"]) if a.startswith("kms:")}
        if not actions or KEY_ARN not in _as_list(st["Resource"]):
            continue
        checked += 1
        missing = actions - named.get(role, set())
        assert not missing, f"{role} holds {sorted(missing)} on the key but the key policy does not name it"
    assert checked >= 10


def test_break_glass_statement_exists_only_when_the_parameter_is_set(transformed):
    sids = {mode: {st.get("Sid") for st in _key_statements(transformed, o)} for mode, o in MODES.items()}
    assert "BreakGlassRoleMayUseKey" not in sids["defaults"]
    assert "BreakGlassRoleMayUseKey" in sids["break-glass"] & sids["all-on"]  # make iac lints it on
    param = transformed["Parameters"]["BreakGlassRoleArn"]
    assert param["Default"] == ""
    pattern = param["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, BREAK_GLASS)
    for refused in ("*", "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/alice"):
        assert not re.fullmatch(pattern, refused), refused


@pytest.mark.parametrize("lid", ["ScreeningStateMachine", "RescreenStateMachine"])  # issue 21: re-screen
def test_state_machine_history_and_definition_are_encrypted_with_the_stack_key(transformed, lid):
    assert not _resources(transformed, "AWS::Serverless::StateMachine")
    machine = _resources(transformed, "AWS::StepFunctions::StateMachine")[lid]
    props = machine["Properties"]
    encryption = props["EncryptionConfiguration"]
    assert encryption["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert encryption["KmsKeyId"] == KEY_ARN
    assert 60 <= encryption["KmsDataKeyReusePeriodSeconds"] <= 900
    # the encryption context the key policy and the role admit is this machine's ARN, built from its name
    name = props["StateMachineName"]["Fn::Sub"]
    arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + name
    (history,) = [
        st
        for st in _key_statements(transformed, {})
        if STATE_MACHINE_CONTEXT in json.dumps(st.get("Condition")) and arn in json.dumps(st.get("Condition"))
    ]
    assert history["Condition"]["StringEquals"][STATE_MACHINE_CONTEXT] == {"Fn::Sub": arn}
    assert {"Fn::GetAtt": [props["RoleArn"]["Fn::GetAtt"][0], "Arn"]} in history["Principal"]["AWS"]
    role_statements = [
        st for role, st in _identity_statements(transformed) if role == props["RoleArn"]["Fn::GetAtt"][0]
    ]
    assert any(
        st.get("Condition", {}).get("StringEquals", {}).get(STATE_MACHINE_CONTEXT) == {"Fn::Sub": arn}
        and {"kms:Decrypt", "kms:GenerateDataKey"} <= set(_as_list(st["Action"]))
        for st in role_statements
    )
    # it waits for its role's policy: Step Functions checks the role's log delivery and key use at create
    policy = transformed["Resources"][lid]["DependsOn"]
    assert transformed["Resources"][_as_list(policy)[0]]["Type"] == "AWS::IAM::Policy"


def _references(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_references(n) for n in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    for key, value in node.items():
        if key == "Ref" and isinstance(value, str):
            found.add(value)
        elif key == "Fn::GetAtt":
            found.add(value[0] if isinstance(value, list) else value.split(".")[0])
        elif key == "Fn::Sub":
            text = value if isinstance(value, str) else value[0]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
            if isinstance(value, list):
                found |= _references(value[1])
        found |= _references(value)
    return found


def test_naming_the_roles_in_the_key_policy_leaves_no_dependency_cycle(transformed):
    resources = transformed["Resources"]
    graph = {
        lid: {r for r in _references(res) | set(_as_list(res.get("DependsOn", []))) if r in resources}
        for lid, res in resources.items()
    }
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"dependency cycle: {exc.args[1]}")
    # and the key does depend on every role it names (so CloudFormation creates them first)
    named = {_role_of(p) for st in _key_statements(transformed, ALL_ON) for _, p in _principals(st)} - {None}
    assert named == set(_resources(transformed, "AWS::IAM::Role"))
    assert named <= graph["ScreeningKey"]


def test_uploader_statement_exists_only_when_the_parameter_is_set(transformed):
    sids = {mode: {st.get("Sid") for st in _key_statements(transformed, o)} for mode, o in MODES.items()}
    assert "UploaderRoleMayUseKeyThroughS3" not in sids["defaults"] | sids["break-glass"]
    assert "UploaderRoleMayUseKeyThroughS3" in sids["uploader"] & sids["all-on"]  # make iac lints it on
    pattern = transformed["Parameters"]["UploaderRoleArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, UPLOADER)
    for refused in ("*", "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/alice"):
        assert not re.fullmatch(pattern, refused), refused


ADMIN_ACTIONS = {
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:DisableKey",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:EnableKey",
    "kms:DeleteAlias",
}


def _statements_of(tpl: dict[str, Any], key: str, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    policy = tpl["Resources"][key]["Properties"]["KeyPolicy"]
    return _resolved(policy, _conditions(tpl, **overrides))["Statement"]


@pytest.mark.parametrize("key", STACK_KEYS)
@pytest.mark.parametrize("mode", MODES)
def test_a_named_key_admin_role_administers_every_stack_key_and_the_account_only_through_cloudformation(
    transformed, key, mode
):
    """Issue 23 item 4: with KeyAdminRoleArn set, kms:PutKeyPolicy, grants' revocation, disable and deletion
    are the named role's; the account's IAM keeps them only for CloudFormation's own calls (aws:CalledVia),
    so the key cannot become unmanageable and no IAM policy alone rewrites it. Unset: the account, as before.
    """
    named = bool(MODES[mode].get("KeyAdminRoleArn"))
    statements = _statements_of(transformed, key, MODES[mode])
    administering = [st for st in statements if _granted(st, ADMIN_ACTIONS)]
    by_principal = {json.dumps(st["Principal"], sort_keys=True): st for st in administering}
    assert len(by_principal) == len(administering), "one administering statement per principal"
    if not named:
        assert [st["Principal"] for st in administering] == [ROOT_PRINCIPAL]
        assert "Condition" not in administering[0]
        return
    assert sorted(by_principal) == sorted(
        json.dumps(p, sort_keys=True) for p in (KEY_ADMIN_PRINCIPAL, ROOT_PRINCIPAL)
    )
    role = by_principal[json.dumps(KEY_ADMIN_PRINCIPAL, sort_keys=True)]
    account = by_principal[json.dumps(ROOT_PRINCIPAL, sort_keys=True)]
    assert _granted(role, ADMIN_ACTIONS) == ADMIN_ACTIONS and "Condition" not in role
    assert account["Sid"] == "AccountAdministersOnlyThroughCloudFormation"
    assert account["Condition"] == THROUGH_CLOUDFORMATION, "the account's IAM must not administer directly"
    assert _granted(account, ADMIN_ACTIONS) == ADMIN_ACTIONS, "a deployment must still be able to update it"
    # administering is never using: neither principal may decrypt, sign, MAC or grant
    for st in (role, account):
        assert not _granted(st, USE_ACTIONS | {"kms:Sign", "kms:GenerateMac", "kms:VerifyMac"}), st["Sid"]


# KMS's policy lockout safety check, re-done: PutKeyPolicy (and CreateKey with a policy) is refused
# unless the new policy lets the *calling* principal call PutKeyPolicy again. CloudFormation calls KMS
# as the deploying principal (or its service role) through a forward access session, so the request
# carries aws:CalledVia = cloudformation.amazonaws.com, with or without a service role (CloudFormation
# user guide, "Forward access sessions (FAS) requests and permission evaluation").
CALLERS = {
    # who calls PutKeyPolicy, and the request context KMS evaluates the new policy with
    "deployer through CloudFormation": (ROOT_PRINCIPAL, {"aws:CalledVia": ["cloudformation.amazonaws.com"]}),
    "account principal directly": (ROOT_PRINCIPAL, {}),
    "key-admin role directly": (KEY_ADMIN_PRINCIPAL, {}),
}


def _condition_holds(condition: dict[str, Any] | None, context: dict[str, list[str]]) -> bool:
    """The only condition the stack's key-administration statements use; anything else is refused
    (an unknown condition could be false for the caller: not safe to count on)."""
    if not condition:
        return True
    if condition == THROUGH_CLOUDFORMATION:
        return "cloudformation.amazonaws.com" in context.get("aws:CalledVia", [])
    return False


def _may_put_key_policy_again(statements: list[dict[str, Any]], caller: str) -> bool:
    principal, context = CALLERS[caller]
    if any(st["Effect"] == "Deny" and _granted(st, {"kms:PutKeyPolicy"}) for st in statements):
        return False
    return any(
        st["Effect"] == "Allow"
        and st["Principal"] == principal
        and _granted(st, {"kms:PutKeyPolicy"})
        and _condition_holds(st.get("Condition"), context)
        for st in statements
    )


@pytest.mark.parametrize("key", STACK_KEYS)
def test_key_policies_pass_kms_lockout_check_and_keep_a_safe_administrator(transformed, key):
    """Issue 23: KeyAdminRoleArn cannot lock the account out of a key. Empty (the default): the account
    administers it, through CloudFormation and directly. Set: the named role directly, the account only
    through a deployment; so the deploying principal passes KMS's safety check on every create and
    update, and a deleted key-admin role still leaves the key manageable by a stack update."""
    expected = {
        "defaults": {
            "deployer through CloudFormation": True,
            "account principal directly": True,
            "key-admin role directly": False,
        },
        "key-admin": {
            "deployer through CloudFormation": True,
            "account principal directly": False,  # the point of the parameter
            "key-admin role directly": True,
        },
    }
    for mode, answers in expected.items():
        statements = _statements_of(transformed, key, MODES[mode])
        got = {caller: _may_put_key_policy_again(statements, caller) for caller in CALLERS}
        assert got == answers, (key, mode)
    props = transformed["Resources"][key]["Properties"]
    # never switched off: KMS must keep refusing a policy that would lock everyone out
    assert props.get("BypassPolicyLockoutSafetyCheck", False) is False


def test_the_lockout_model_refuses_a_policy_without_an_administrator():
    """The check above can fail: a policy naming only the key-admin role, without the account's
    CloudFormation statement, would be refused to the deploying principal (a failed deployment), and
    a Deny on PutKeyPolicy locks everyone out."""
    role_only = [{"Effect": "Allow", "Principal": KEY_ADMIN_PRINCIPAL, "Action": "kms:Put*", "Resource": "*"}]
    assert not _may_put_key_policy_again(role_only, "deployer through CloudFormation")
    assert _may_put_key_policy_again(role_only, "key-admin role directly")
    denied = [*role_only, {"Effect": "Deny", "Principal": "*", "Action": "kms:PutKeyPolicy", "Resource": "*"}]
    assert not _may_put_key_policy_again(denied, "key-admin role directly")
    other_condition = [
        {
            "Effect": "Allow",
            "Principal": ROOT_PRINCIPAL,
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": "kms"}},
        }
    ]
    assert not _may_put_key_policy_again(other_condition, "deployer through CloudFormation")


def test_key_admin_parameter_accepts_only_a_role_or_nothing(transformed):
    pattern = transformed["Parameters"]["KeyAdminRoleArn"]["AllowedPattern"]
    assert transformed["Parameters"]["KeyAdminRoleArn"]["Default"] == ""
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, KEY_ADMIN)
    for refused in ("*", "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/alice"):
        assert not re.fullmatch(pattern, refused), refused


@pytest.mark.parametrize("enforce", ["false", "true"])
def test_every_function_carries_the_stacks_code_signing_config(transformed, enforce):
    """Issue 23 item 4: no function's code can be replaced unsigned without Lambda noticing; Enforce refuses
    it when EnforceCodeSigning is true, Warn (logged as untrusted) otherwise."""
    functions = _resources(transformed, "AWS::Lambda::Function")
    assert functions
    for lid, res in functions.items():
        assert res["Properties"].get("CodeSigningConfigArn") == {"Ref": "LambdaCodeSigningConfig"}, lid
    config = transformed["Resources"]["LambdaCodeSigningConfig"]["Properties"]
    publishers = config["AllowedPublishers"]["SigningProfileVersionArns"]
    assert publishers == [{"Fn::GetAtt": ["LambdaSigningProfile", "ProfileVersionArn"]}]
    profile = transformed["Resources"]["LambdaSigningProfile"]
    assert profile["Type"] == "AWS::Signer::SigningProfile"
    assert profile["Properties"]["PlatformId"] == "AWSLambda-SHA384-ECDSA"
    policies = _resolved(config["CodeSigningPolicies"], _conditions(transformed, EnforceCodeSigning=enforce))
    assert policies["UntrustedArtifactOnDeployment"] == ("Enforce" if enforce == "true" else "Warn")
    assert transformed["Parameters"]["EnforceCodeSigning"]["Default"] == "false"
