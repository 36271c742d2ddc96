"""Issue 23 item 4: CloudTrail management events that change the custody of keys, evidence and code
raise CustodyChangeAlarm. The rule's pattern, with its references resolved to sample values, is run
through moto's EventBridge pattern matcher (an implementation independent of this project) against
CloudTrail events written by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.iac.conftest import TEMPLATE_PATH

STACK, ACCOUNT, REGION = "kyc", "123456789012", "us-east-1"
KEYS = {"ScreeningKey": "k-screen", "PseudonymKey": "k-pseudo", "DigestSigningKey": "k-digest"}


def _resolve(node: Any) -> Any:
    if isinstance(node, list):
        return [_resolve(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return {"AuditBucket": "audit-bucket", **KEYS}.get(node["Ref"], node["Ref"])
    if "Fn::GetAtt" in node:
        name = (
            node["Fn::GetAtt"][0]
            if isinstance(node["Fn::GetAtt"], list)
            else node["Fn::GetAtt"].split(".")[0]
        )
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEYS[name]}"
    if "Fn::Sub" in node:
        text = node["Fn::Sub"]
        for var, value in {
            "AWS::StackName": STACK,
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
        }.items():
            text = text.replace("${" + var + "}", value)
        return text
    return {k: _resolve(v) for k, v in node.items()}


@pytest.fixture(scope="module")
def matcher() -> Any:
    from cfnlint.decode import decode
    from moto.events.models import EventPattern

    template, _ = decode(str(TEMPLATE_PATH))
    pattern = _resolve(template["Resources"]["CustodyChangeRule"]["Properties"]["EventPattern"])
    return EventPattern(json.dumps(pattern), pattern)


def _cloudtrail(source: str, name: str, parameters: dict[str, Any], invoked_by: str | None = None) -> dict:
    identity: dict[str, Any] = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/x"}
    if invoked_by:
        identity["invokedBy"] = invoked_by
    return {
        "version": "0",
        "id": "1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": source.split(".")[0] and f"aws.{source.split('.')[0]}",
        "account": ACCOUNT,
        "time": "2026-12-06T16:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "eventSource": source,
            "eventName": name,
            "userIdentity": identity,
            "requestParameters": parameters,
        },
    }


KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-digest"


@pytest.mark.parametrize(
    "event",
    [
        _cloudtrail("kms.amazonaws.com", "PutKeyPolicy", {"keyId": "k-screen", "policyName": "default"}),
        _cloudtrail("kms.amazonaws.com", "CreateGrant", {"keyId": KEY_ARN, "operations": ["Sign"]}),
        _cloudtrail("kms.amazonaws.com", "DisableKey", {"keyId": "k-pseudo"}),
        _cloudtrail(
            "kms.amazonaws.com", "ScheduleKeyDeletion", {"keyId": "k-screen", "pendingWindowInDays": 7}
        ),
        _cloudtrail("s3.amazonaws.com", "PutBucketPolicy", {"bucketName": "audit-bucket"}),
        _cloudtrail("s3.amazonaws.com", "PutObjectLockConfiguration", {"bucketName": "audit-bucket"}),
        _cloudtrail(
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            {"functionName": f"{STACK}-decide-outcome"},
        ),
        _cloudtrail(
            "lambda.amazonaws.com",
            "UpdateFunctionConfiguration20150331v2",
            {"functionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-digest-evidence"},
        ),
    ],
    ids=lambda e: e["detail"]["eventName"],
)
def test_custody_changes_match(matcher: Any, event: dict) -> None:
    assert matcher.matches_event(event)


@pytest.mark.parametrize(
    "event",
    [
        _cloudtrail("kms.amazonaws.com", "PutKeyPolicy", {"keyId": "someone-elses-key"}),
        _cloudtrail("kms.amazonaws.com", "Decrypt", {"keyId": "k-screen"}),  # use, not custody
        _cloudtrail("s3.amazonaws.com", "PutBucketPolicy", {"bucketName": "another-bucket"}),
        _cloudtrail("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", {"functionName": "other-fn"}),
        # this stack's own deployment: CloudFormation makes the call (the change process covers it)
        _cloudtrail(
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            {"functionName": f"{STACK}-decide-outcome"},
            invoked_by="cloudformation.amazonaws.com",
        ),
    ],
    ids=lambda e: f"{e['detail']['eventName']}-{sorted(e['detail']['requestParameters'].values())[0]}",
)
def test_other_calls_do_not_match(matcher: Any, event: dict) -> None:
    assert not matcher.matches_event(event)
