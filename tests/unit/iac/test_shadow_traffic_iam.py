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


def test_a_rejection_of_this_stacks_packages_runs_the_retirement(template) -> None:
    """Issue 21 retire: RetireCandidateRule matches SageMaker's state-change event with Rejected, for this
    stack's model package group only, and hands it to the function that already holds DeleteEndpoint;
    its failures go to the shadow deployment's dead-letter queue, which accepts them."""
    resources = template["Resources"]
    rule = resources["RetireCandidateRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"]["ModelApprovalStatus"] == ["Rejected"]
    assert pattern["detail"]["ModelPackageGroupName"] == [{"Fn::Sub": "${AWS::StackName}-kyc-models"}]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ShadowDeployFunction", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ShadowDeployDeadLetterQueue", "Arn"]}
    permission = resources["RetireCandidateRulePermission"]["Properties"]
    assert permission["SourceArn"] == {"Fn::GetAtt": ["RetireCandidateRule", "Arn"]}
    assert permission["FunctionName"] == {"Ref": "ShadowDeployFunction"}
    queue = resources["ShadowDeployDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert {"Fn::GetAtt": ["RetireCandidateRule", "Arn"]} in queue["Condition"]["ArnEquals"]["aws:SourceArn"]
    # the approval rule still matches approvals only: a rejection never deploys
    approval = resources["ShadowDeployRule"]["Properties"]["EventPattern"]["detail"]
    assert approval["ModelApprovalStatus"] == ["Approved"]


def test_the_retirement_reads_only_the_two_pointers(template) -> None:
    """It may read the production pointer (never delete what it names) and the shadow pointer (cleared
    first), nothing else; it writes only the shadow pointer (WriteShadowPolicy's grant)."""
    statements = _statements(template, "ShadowDeployFunctionPolicy")
    ssm = {sid: s for sid, s in statements.items() if "ssm:" in _text(s["Action"])}
    assert set(ssm) == {"WriteShadowPolicy", "ReadShadowPointerToRetire", "ReadProductionPointerToRetire"}
    assert ssm["WriteShadowPolicy"]["Action"] == "ssm:PutParameter"
    assert ssm["ReadShadowPointerToRetire"]["Action"] == "ssm:GetParameter"
    assert ssm["ReadProductionPointerToRetire"]["Action"] == "ssm:GetParameter"
    for sid in ("WriteShadowPolicy", "ReadShadowPointerToRetire"):
        assert _text(ssm[sid]["Resource"]).endswith('parameter/kyc/${AWS::StackName}/shadow-policy"}')
    production = _text(ssm["ReadProductionPointerToRetire"]["Resource"])
    assert production.endswith('parameter${PolicyParameterName}"}')
    env = template["Resources"]["ShadowDeployFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KYC_POLICY_PARAMETER"] == {"Ref": "PolicyParameterName"}
