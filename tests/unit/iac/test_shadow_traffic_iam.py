"""Issue 21 live shadow traffic, least privilege: what the score and decide roles gained for it."""

from __future__ import annotations

import json
from typing import Any


def _statements(template: dict[str, Any], policy: str) -> dict[str, dict[str, Any]]:
    out = {}
    for statement in template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]:
        if isinstance(statement, dict) and "Fn::If" in statement:
            statement = statement["Fn::If"][1]
        if isinstance(statement, dict) and "Sid" in statement:
            out[statement["Sid"]] = statement
    return out


def _text(value: Any) -> str:
    return json.dumps(value)


def test_score_reads_only_the_shadow_pointer_and_invokes_only_the_stacks_endpoints(template) -> None:
    statements = _statements(template, "ScoreFramesFunctionPolicy")
    read = statements["ReadShadowPointer"]
    assert read["Action"] == ["ssm:GetParameter"]
    assert _text(read["Resource"]).endswith('parameter/kyc/${AWS::StackName}/shadow-policy"}')
    invoke = statements["InvokeScreeningEndpoint"]
    resources = [_text(r) for r in invoke["Resource"]]
    # the champion and its own candidates (<EndpointName>-v<N>), no other endpoint of the account
    assert [r.rsplit(":endpoint/", 1)[1] for r in resources] == ['${EndpointName}"}', '${EndpointName}-v*"}']
    env = template["Resources"]["ScoreFramesFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KYC_SHADOW_POLICY_PARAMETER"] == {"Fn::Sub": "/kyc/${AWS::StackName}/shadow-policy"}


def test_decide_may_write_only_the_live_shadow_result(template) -> None:
    write = _statements(template, "DecideOutcomeFunctionPolicy")["WriteLiveShadowResult"]
    assert write["Action"] == ["s3:PutObject"]
    assert write["Resource"] == {"Fn::Sub": "${WorkBucket.Arn}/scores/*/shadow.json"}


def test_only_the_shadow_deployment_may_delete_endpoints_and_only_candidates(template) -> None:
    """A refused shadow deployment deletes the endpoint it created: DeleteEndpoint on <EndpointName>-v*
    (a candidate's own endpoint), never on the champion's or any other; no other policy has it."""
    retire = _statements(template, "ShadowDeployFunctionPolicy")["RetireRefusedCandidateEndpoints"]
    assert retire["Action"] == "sagemaker:DeleteEndpoint"
    assert _text(retire["Resource"]).rsplit(":endpoint/", 1)[1] == '${EndpointName}-v*"}'
    holders = [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy")
        and "sagemaker:DeleteEndpoint" in _text(resource["Properties"])
    ]
    assert holders == ["ShadowDeployFunctionPolicy"]
