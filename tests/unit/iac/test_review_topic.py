"""The review topic's policy (issue 23 item 4): who may subscribe to, and publish on, the review topic.

Its messages name submissions that need a person (and, without a workbench, carry a short presigned
link to a face), so a subscriber is a reader of personal data. The policy is evaluated here for
concrete requests with IAM's own semantics for the operators it uses (a Deny applies when every
condition operator matches; ``ForAllValues`` over an absent key matches), so a wrong operator or a
missing principal fails a named case.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.iac.test_key_custody import _resolved
from tests.unit.iac.test_template import _as_list, _identity_statements
from tests.unit.iac.test_vpc import _conditions

ACCOUNT_ROOT = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
SUBSCRIBER = "arn:aws:iam::111122223333:role/kyc-review-subscriber"
NOTIFY = {"Fn::GetAtt": ["NotifyReviewFunctionRole", "Arn"]}
ADMIN = "arn:aws:iam::111122223333:role/Admin"
CFN = "cloudformation.amazonaws.com"


def _policy(tpl: dict[str, Any], **overrides: Any) -> list[dict[str, Any]]:
    [policy] = [
        r
        for r in tpl["Resources"].values()
        if r["Type"] == "AWS::SNS::TopicPolicy" and r["Properties"]["Topics"] == [{"Ref": "ReviewTopic"}]
    ]
    assert "Condition" not in policy, "the review topic's policy must exist in every deployment"
    document = _resolved(policy["Properties"]["PolicyDocument"], _conditions(tpl, **overrides))
    return _parameters_filled(document, overrides)["Statement"]


def _parameters_filled(node: Any, values: dict[str, Any]) -> Any:
    """``Ref`` to a parameter given in ``values`` replaced by its value (what CloudFormation deploys)."""
    if isinstance(node, list):
        return [_parameters_filled(item, values) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in values:
            return values[node["Ref"]]
        return {key: _parameters_filled(value, values) for key, value in node.items()}
    return node


def _matches(operator: str, key_values: dict[str, Any], request: dict[str, Any]) -> bool:
    """One condition operator of IAM, for the operators the policy may use."""
    results = []
    for key, expected in key_values.items():
        wanted = _as_list(expected)
        actual = request.get(key)
        if operator == "ArnNotEquals":
            results.append(actual is None or actual not in wanted)
        elif operator == "ArnEquals":
            results.append(actual is not None and actual in wanted)
        elif operator == "ForAllValues:StringNotEquals":
            results.append(all(v not in wanted for v in (actual or [])))
        elif operator == "Bool":
            results.append(str(actual).lower() in [str(w).lower() for w in wanted])
        else:  # pragma: no cover - a new operator needs its semantics here first
            raise AssertionError(f"operator {operator} not evaluated by this test")
    return all(results)


def _denied(statements: list[dict[str, Any]], action: str, principal: Any, called_via: list[str]) -> bool:
    request = {"aws:PrincipalArn": principal, "aws:CalledVia": called_via, "aws:SecureTransport": True}
    for st in statements:
        if st["Effect"] != "Deny" or action not in _as_list(st["Action"]):
            continue
        assert st["Principal"] == "*", st.get("Sid")
        if all(_matches(op, kv, request) for op, kv in st.get("Condition", {}).items()):
            return True
    return False


@pytest.mark.parametrize(
    ("overrides", "principal", "called_via", "denied"),
    [
        ({}, ADMIN, [], True),  # an account administrator subscribing by hand
        ({}, SUBSCRIBER, [], True),  # a role not named in this deployment
        ({}, ADMIN, [CFN], False),  # a subscription declared in a CloudFormation stack
        ({}, ADMIN, ["athena.amazonaws.com"], True),
        ({"ReviewSubscriberRoleArn": SUBSCRIBER}, SUBSCRIBER, [], False),  # the named role
        ({"ReviewSubscriberRoleArn": SUBSCRIBER}, ADMIN, [], True),
    ],
)
def test_only_declared_or_named_principals_may_subscribe(
    transformed, overrides, principal, called_via, denied
):
    statements = _policy(transformed, **overrides)
    assert _denied(statements, "sns:Subscribe", principal, called_via) is denied


def test_only_the_notify_function_publishes_and_no_statement_allows_another_account(transformed):
    for overrides in ({}, {"ReviewSubscriberRoleArn": SUBSCRIBER}):
        statements = _policy(transformed, **overrides)
        assert not _denied(statements, "sns:Publish", NOTIFY, [])
        assert _denied(statements, "sns:Publish", ADMIN, [])
        assert _denied(statements, "sns:Publish", ADMIN, [CFN])
        for st in statements:
            if st["Effect"] == "Allow":
                assert st["Principal"] == ACCOUNT_ROOT, st.get("Sid")
    # and the notify role is the one stack role whose identity policy publishes to the topic
    publishers = {
        role
        for role, st in _identity_statements(transformed)
        if st.get("Effect") == "Allow"
        and "sns:Publish" in _as_list(st.get("Action"))
        and {"Ref": "ReviewTopic"} in _as_list(st.get("Resource"))
    }
    assert publishers == {"NotifyReviewFunctionRole"}


def test_workbench_url_parameter_reaches_the_notify_function_and_accepts_only_https(transformed):
    import re

    env = transformed["Resources"]["NotifyReviewFunction"]["Properties"]["Environment"]["Variables"]
    hosted = {"Fn::Sub": "https://${WorkbenchDistribution.DomainName}"}
    assert env["KYC_REVIEW_WORKBENCH_URL"] == {
        "Fn::If": [
            "HasReviewWorkbenchUrl",
            {"Ref": "ReviewWorkbenchUrl"},
            {"Fn::If": ["IsWorkbenchEnabled", hosted, ""]},
        ]
    }
    pattern = transformed["Parameters"]["ReviewWorkbenchUrl"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "https://review.example.com/kyc")
    for refused in ("http://review.example.com", "https://x.example.com/?next=evil", "javascript:alert(1)"):
        assert not re.fullmatch(pattern, refused), refused
