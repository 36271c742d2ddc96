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
    assert len(ddb) == 2
    assert sorted(ddb[0]["Action"]) == ["dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:UpdateItem"]
    # issue 24 item 5: the admission records' keys-only index, nothing else of it
    assert ddb[1]["Action"] == ["dynamodb:Query"]
    assert ddb[1]["Resource"] == {"Fn::Sub": "${ReuseIndexTable.Arn}/index/Admissions"}
    assert ddb[0]["Resource"] == TABLE_ARN  # its own table only, not the decisions table
    # issue 24 item 5: no Step Functions call at all (the old witness read every running screening's
    # input: object key and client reference), and no key grant for execution inputs
    assert not [st for st in statements if any(a.startswith("states:") for a in st["Action"])]
    assert not any("aws:states:stateMachineArn" in json.dumps(st.get("Condition", {})) for st in statements)
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
    assert reaching == {
        "CheckReuseFunctionRole",
        "EraseSubmissionFunctionRole",
        # issue 24 item 5: admission records only (LeadingKeys adm#*), one action each
        "StartScreeningFunctionRole",
        "ReconcileExecutionFunctionRole",
        "ScreeningStateMachineRole",
    }
    for role, actions in (
        # the start function: writes, reads and marks started its own records; reads the index's order
        ("StartScreeningFunctionRole", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]),
        ("ReconcileExecutionFunctionRole", ["dynamodb:UpdateItem"]),
        ("ScreeningStateMachineRole", ["dynamodb:UpdateItem"]),
    ):
        statements = [st for st in _role_statements(template, role) if _mentions(st, "ReuseIndexTable")]
        st = next(st for st in statements if st["Resource"] == TABLE_ARN)
        assert st["Action"] == actions, role
        assert st["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["adm#*"]}}, role
        others = [x for x in statements if x is not st]
        if role == "StartScreeningFunctionRole":
            (query,) = others
            assert query["Action"] == ["dynamodb:Query"]
            assert query["Resource"] == {"Fn::Sub": "${ReuseIndexTable.Arn}/index/Admissions"}
        else:
            assert others == [], role
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


def test_the_admission_index_is_sparse_and_keys_only(template):
    props = template["Resources"]["ReuseIndexTable"]["Properties"]
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "Admissions"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["admitted_bucket", "admitted_at"]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def _terminal_paths(states: dict[str, Any], start: str, trail: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path through the top-level states from ``start`` to a Succeed or Fail state."""
    state = states[start]
    trail = (*trail, start)
    if state["Type"] in ("Succeed", "Fail"):
        return [trail]
    nexts = {state.get("Next"), state.get("Default")}
    nexts |= {c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])}
    following = sorted(x for x in nexts if x and x not in trail)
    return [p for n in following for p in _terminal_paths(states, n, trail)]


def test_every_terminal_path_settles_the_admission_record():
    """issue 24 item 5: success, REVIEW, every failure and the last-resort ERROR all pass through a
    settle state just before the end, so no 'admitted' row outlives its screening (the reconcile
    function covers executions that die outside the workflow: timeouts, aborts)."""
    states = ASL["States"]
    paths = _terminal_paths(states, ASL["StartAt"])
    assert len(paths) >= 18 and {p[-1] for p in paths} == {"Screened", "ScreeningFailed"}
    settles = {"Screened": "SettleAdmission", "ScreeningFailed": "SettleAdmissionAfterFailure"}
    assert all(p[-2] == settles[p[-1]] for p in paths), [p for p in paths if p[-2] != settles[p[-1]]]
    for name, end in settles.items():
        settle = states[end]
        assert settle["Resource"] == "arn:${Partition}:states:::dynamodb:updateItem"
        key = settle["Parameters"]["Key"]["pk"]
        assert key == {"S.$": "States.Format('adm#{}', $.submission.submission_id)"}
        assert settle["Parameters"]["ConditionExpression"] == "attribute_exists(pk)"  # never re-creates
        assert settle["Next"] == name and [c["Next"] for c in settle["Catch"]] == [name]  # decides nothing
    twin = {
        k: v
        for k, v in states["SettleAdmissionAfterFailure"].items()
        if k not in ("Next", "Catch", "Comment")
    }
    assert twin == {
        k: v for k, v in states["SettleAdmission"].items() if k not in ("Next", "Catch", "Comment")
    }


def test_the_reuse_wait_retries_agree_with_the_handler():
    """The handler calls its timed-out wait FAILED (an alarm) only on the attempt after the last retry."""
    import re

    retries = ASL["States"]["CheckReuse"]["Retry"]
    (retry,) = [r for r in retries if "EarlierSubmissionsInFlightError" in r["ErrorEquals"]]
    source = (ROOT / "functions" / "reuse" / "app.py").read_text(encoding="utf-8")
    assert int(re.search(r"^WAIT_RETRIES = (\d+)", source, re.M).group(1)) == retry["MaxAttempts"]
    assert ASL["States"]["CheckReuse"]["Parameters"]["Payload"]["retry_count.$"] == "$$.State.RetryCount"


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
