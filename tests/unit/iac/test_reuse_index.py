"""The reuse index (issue 16): encrypted with the stack key, expiring with the raw video, reachable
only by the roles that need it and only with the actions they use; CheckReuse sits between
ScoreFrames and DecideOutcome and fails into the existing failure path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
ASL = json.loads((ROOT / "statemachines" / "screening.asl.json").read_text(encoding="utf-8"))
KEY_ARN = {"Fn::GetAtt": ["ScreeningKey", "Arn"]}
TABLE_ARN = {"Fn::GetAtt": ["ReuseIndexTable", "Arn"]}


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for st in doc["Statement"]:
        if "Fn::If" in st:
            out.extend(b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b)
        else:
            out.append(st)
    return out


def _role_statements(tpl: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        st
        for res in tpl["Resources"].values()
        if res["Type"] == "AWS::IAM::Policy" and res["Properties"]["Roles"] == [{"Ref": role}]
        for st in _statements(res["Properties"]["PolicyDocument"])
    ]


def _mentions(value: Any, logical_id: str) -> bool:
    return logical_id in json.dumps(value)


def test_index_is_encrypted_with_the_stack_key_recoverable_and_expiring(template):
    props = template["Resources"]["ReuseIndexTable"]["Properties"]
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]


def test_index_retention_is_the_raw_video_retention_and_the_window_is_a_parameter(template):
    env = template["Resources"]["CheckReuseFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KYC_REUSE_RETENTION_DAYS"] == {"Ref": "RawVideoRetentionDays"}
    assert env["KYC_REUSE_WINDOW_DAYS"] == {"Ref": "ReuseWindowDays"}
    assert env["KYC_REUSE_TABLE"] == {"Ref": "ReuseIndexTable"}
    window = template["Parameters"]["ReuseWindowDays"]
    assert int(window["MaxValue"]) <= int(template["Parameters"]["RawVideoRetentionDays"]["MaxValue"])


def test_check_reuse_role_is_least_privilege(template):
    statements = _role_statements(template, "CheckReuseFunctionRole")
    ddb = [st for st in statements if any(a.startswith("dynamodb:") for a in st["Action"])]
    assert len(ddb) == 1
    assert sorted(ddb[0]["Action"]) == [
        "dynamodb:BatchWriteItem",
        "dynamodb:GetItem",  # the race (issue 24): has an earlier submission finished indexing?
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    assert ddb[0]["Resource"] == TABLE_ARN  # its own table only, not the decisions table
    # the race (issue 24): the screenings still running, read from the screening state machine only
    states = [st for st in statements if any(a.startswith("states:") for a in st["Action"])]
    machine = (
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
        ":stateMachine:${AWS::StackName}-screening"
    )
    executions = machine.replace(":stateMachine:", ":execution:") + ":*"
    assert [(st["Action"], st["Resource"]) for st in states] == [
        (["states:ListExecutions"], {"Fn::Sub": machine}),
        (["states:DescribeExecution"], {"Fn::Sub": executions}),
    ]
    (decrypt,) = [st for st in statements if st.get("Sid") == "DecryptRunningScreeningInputs"]
    assert decrypt["Action"] == ["kms:Decrypt"]  # the inputs, under the screening machine's context only
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:EncryptionContext:aws:states:stateMachineArn": {"Fn::Sub": machine}
    }
    name = template["Resources"]["ScreeningStateMachine"]["Properties"]["StateMachineName"]
    assert name == {"Fn::Sub": "${AWS::StackName}-screening"}  # the name the ARNs above spell out
    s3 = [st for st in statements if any(a.startswith("s3:") for a in st["Action"])]
    assert [st["Action"] for st in s3] == [["s3:GetObject"], ["s3:GetObject"]]
    # the frames and their manifest, and the face stage's evidence (issue 24): nothing else of the bucket
    assert [st["Resource"] for st in s3] == [
        {"Fn::Sub": "${WorkBucket.Arn}/frames/*"},
        {"Fn::Sub": "${WorkBucket.Arn}/scores/*/faces.json"},
    ]
    for st in statements:
        assert not _mentions(st, "DecisionsTable") and not _mentions(st, "AuditBucket")
        assert not any(a.endswith(":*") or a == "*" for a in st["Action"])


def test_only_check_reuse_and_erasure_reach_the_index(template):
    reaching = {
        res["Properties"]["Roles"][0]["Ref"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::IAM::Policy"
        and _mentions(res["Properties"]["PolicyDocument"], "ReuseIndexTable")
    }
    assert reaching == {"CheckReuseFunctionRole", "EraseSubmissionFunctionRole"}
    erase = [
        st
        for st in _role_statements(template, "EraseSubmissionFunctionRole")
        if _mentions(st, "ReuseIndexTable")
    ]
    assert sorted(a for st in erase for a in st["Action"]) == [
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
    ]


def test_check_reuse_role_may_use_the_key_through_data_services(template):
    key_policy = template["Resources"]["ScreeningKey"]["Properties"]["KeyPolicy"]
    statement = next(
        st for st in key_policy["Statement"] if st.get("Sid") == "UseKeyThroughDataServicesStackRoles"
    )
    assert {"Fn::GetAtt": ["CheckReuseFunctionRole", "Arn"]} in statement["Principal"]["AWS"]


def test_check_reuse_runs_between_scoring_and_the_decision_and_fails_closed():
    states = ASL["States"]
    assert states["ScoreFrames"]["Next"] == "CheckReuse"
    check = states["CheckReuse"]
    assert check["Next"] == "DecideOutcome"
    assert check["ResultPath"] == "$.reuse"
    assert check["Parameters"]["FunctionName"] == "${CheckReuseFunctionArn}"
    assert [c["Next"] for c in check["Catch"]] == ["RecordFailure"]
    assert check["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert check["Retry"]
    # refused uploads never reach it: the only way in is through scoring of accepted media
    into = [name for name, st in states.items() if st.get("Next") == "CheckReuse"]
    assert into == ["ScoreFrames"]
    choice = states["IsUploadAccepted"]
    assert choice["Default"] == "DecideOutcome"
