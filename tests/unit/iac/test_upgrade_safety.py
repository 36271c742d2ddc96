"""Issue 24 (upgrade safety): a stack whose calibrated policy cannot be bound refuses to deploy.

A calibrated policy (PolicyParameterName) binds the model by the SHA-256 S3 holds for its model data in
ModelDataBucket (the deployment witness). An upgrade that sets the first and not the second would make
every scored upload REVIEW MODEL_NOT_CALIBRATED; CloudFormation's Rules refuse it at parameter
validation, before any resource changes. The rule is evaluated here by a small interpreter of the
intrinsics Rules allow, over hand-written parameter sets and hand-written expected outcomes."""

from __future__ import annotations

from typing import Any

import pytest

RULE = "CalibratedPolicyNeedsModelDataBucket"


def _eval(expr: Any, params: dict[str, str]) -> Any:
    """Fn::Not, Fn::Equals, Fn::And, Fn::Or and Ref over parameter values (what this rule uses)."""
    if isinstance(expr, dict):
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            return params[arg]
        if fn == "Fn::Not":
            return not _eval(arg[0], params)
        if fn == "Fn::Equals":
            return _eval(arg[0], params) == _eval(arg[1], params)
        if fn == "Fn::And":
            return all(_eval(a, params) for a in arg)
        if fn == "Fn::Or":
            return any(_eval(a, params) for a in arg)
        raise AssertionError(f"{fn} is not an intrinsic this test interprets")
    return expr


def _refused(template: dict[str, Any], **given: str) -> list[str]:
    """The AssertDescriptions CloudFormation would stop the deployment with, for these parameters."""
    params = {n: str(p.get("Default", "")) for n, p in template["Parameters"].items()} | given
    refusals = []
    for rule in template["Rules"].values():
        try:
            if "RuleCondition" in rule and not _eval(rule["RuleCondition"], params):
                continue
        except AssertionError:
            continue  # another rule's intrinsic (Fn::EachMemberEquals): not this test's subject
        for assertion in rule["Assertions"]:
            try:
                holds = _eval(assertion["Assert"], params)
            except AssertionError:
                continue  # another rule's intrinsic (Fn::EachMemberEquals): not this test's subject
            if not holds:
                refusals.append(assertion["AssertDescription"])
    return refusals


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({}, False),  # the defaults: no calibrated policy, nothing to bind (every decision REVIEWs anyway)
        ({"PolicyParameterName": "/kyc/prod/policy"}, True),  # the upgrade that would hold every upload
        ({"PolicyParameterName": "/kyc/prod/policy", "ModelDataBucket": "acme-models"}, False),
        ({"ModelDataBucket": "acme-models"}, False),  # a witness without a policy: harmless
    ],
)
def test_a_calibrated_policy_without_model_data_bucket_is_refused_at_parameter_validation(
    template: dict[str, Any], given: dict[str, str], refused: bool
) -> None:
    refusals = _refused(template, **given)
    assert bool(refusals) is refused, refusals
    if refused:
        (why,) = refusals
        assert "ModelDataBucket must be set when PolicyParameterName is" in why
        assert "MODEL_NOT_CALIBRATED" in why


def test_the_rule_reads_only_parameters(template: dict[str, Any]) -> None:
    """Rules may reference parameters only; anything else fails the deployment outright."""
    rule = template["Rules"][RULE]
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend([node["Ref"]] if "Ref" in node else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(rule)
    assert sorted(set(refs)) == ["ModelDataBucket", "PolicyParameterName"]
    assert set(refs) <= set(template["Parameters"])
