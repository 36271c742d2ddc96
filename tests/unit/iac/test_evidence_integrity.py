"""Write-once evidence and signed digests, read from the template after the SAM transform (issue 13).

- The audit bucket is under S3 Object Lock with the mode and retention parameters; no role may delete
  or re-lock anything in it, and nothing that shows a face is written there.
- Contact sheets live in their own KMS bucket with their own retention, and erasure reaches them.
- The digest signing key is ECC_NIST_P256 / SIGN_VERIFY; only the digest function may Sign (raw
  ECDSA_SHA_256 only), verifiers may read the public key, and nobody gets Sign through IAM alone.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from tests.unit.iac.test_key_custody import ROOT_PRINCIPAL, _granted, _principals, _resolved
from tests.unit.iac.test_operations import ALL_ON
from tests.unit.iac.test_template import KEY_ARN, _as_list, _identity_statements, _props, _resources
from tests.unit.iac.test_vpc import _conditions

DIGEST_ROLE = {"Fn::GetAtt": ["DigestEvidenceFunctionRole", "Arn"]}
VERIFIER_ROLE = {"Fn::GetAtt": ["VerifyEvidenceFunctionRole", "Arn"]}
KMS_ACTIONS = {
    "kms:Sign",
    "kms:Verify",
    "kms:GetPublicKey",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
}


def _mentions(resource: Any, logical_id: str) -> bool:
    return logical_id in json.dumps(resource)


def _actions_on(tpl: dict[str, Any], logical_id: str) -> dict[str, set[str]]:
    """Identity-policy actions per owner that name ``logical_id`` among their resources."""
    out: dict[str, set[str]] = {}
    for owner, st in _identity_statements(tpl):
        if st.get("Effect") == "Allow" and _mentions(st.get("Resource"), logical_id):
            out.setdefault(owner, set()).update(_as_list(st["Action"]))
    return out


# ------------------------------------------------------------------ write-once audit bucket
def test_audit_bucket_object_lock_takes_mode_and_retention_from_parameters(transformed):
    props = _props(transformed, "AuditBucket")
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {
            "DefaultRetention": {
                "Mode": {"Ref": "AuditObjectLockMode"},
                "Days": {"Ref": "DecisionRetentionDays"},
            }
        },
    }
    mode = transformed["Parameters"]["AuditObjectLockMode"]
    assert mode["Default"] == "GOVERNANCE" and sorted(mode["AllowedValues"]) == ["COMPLIANCE", "GOVERNANCE"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}  # Object Lock requires it


def test_no_role_can_delete_unlock_or_relock_audit_evidence(transformed):
    forbidden = (
        "s3:Delete*",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:BypassGovernanceRetention",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutLifecycleConfiguration",
    )
    for owner, actions in _actions_on(transformed, "AuditBucket").items():
        bad = {a for a in actions for f in forbidden if fnmatchcase(a, f) or a == "s3:*"}
        assert not bad, f"{owner} may {sorted(bad)} in the write-once audit bucket"


def test_nothing_writes_images_to_the_audit_bucket(transformed):
    # only decide (decisions/*), erase (decisions/*/erasure.json) and the digest function (digests/*) write
    writers: dict[str, list[str]] = {}
    for owner, st in _identity_statements(transformed):
        if st.get("Effect") == "Allow" and "s3:PutObject" in _as_list(st["Action"]):
            for resource in _as_list(st["Resource"]):
                if _mentions(resource, "AuditBucket"):
                    writers.setdefault(owner, []).append(resource["Fn::Sub"].split("}", 1)[1])
    assert writers == {
        "DecideOutcomeFunctionRole": ["/decisions/*"],
        "EraseSubmissionFunctionRole": ["/decisions/*/erasure.json"],
        "ScreeningApiFunctionRole": ["/decisions/*/reviews/*"],  # issue 20: one document per verdict/approval
        "DigestEvidenceFunctionRole": ["/digests/*"],
        "RescreenFunctionRole": ["/rescreen/*"],  # issue 21: JSON results of a backlog re-screen
    }


def test_audit_lifecycle_covers_evidence_and_digests_for_the_decision_retention(transformed):
    rules = {
        r.get("Prefix"): r for r in _props(transformed, "AuditBucket")["LifecycleConfiguration"]["Rules"]
    }
    for prefix in ("decisions/", "digests/"):
        assert rules[prefix]["ExpirationInDays"] == {"Ref": "DecisionRetentionDays"}, prefix
    assert "reviews/" not in rules


# ------------------------------------------------------------------ review bucket
def test_contact_sheets_have_their_own_encrypted_bucket_retention_and_erasure(transformed):
    props = _props(transformed, "ReviewBucket")
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert "Prefix" not in rule and rule["ExpirationInDays"] == {"Ref": "ReviewSheetRetentionDays"}
    assert int(transformed["Parameters"]["ReviewSheetRetentionDays"]["MaxValue"]) <= 30
    assert "ObjectLockEnabled" not in props  # erasure must be able to delete faces
    on_review = _actions_on(transformed, "ReviewBucket")
    assert {"s3:PutObject", "s3:GetObject"} <= on_review["NotifyReviewFunctionRole"]
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucketVersions"} <= on_review[
        "EraseSubmissionFunctionRole"
    ]
    for lid in ("NotifyReviewFunction", "EraseSubmissionFunction"):
        assert _props(transformed, lid)["Environment"]["Variables"]["KYC_REVIEW_BUCKET"] == {
            "Ref": "ReviewBucket"
        }


# ------------------------------------------------------------------ digest signing key
def _digest_key_statements(tpl: dict[str, Any], overrides: dict[str, Any]) -> list[dict[str, Any]]:
    policy = tpl["Resources"]["DigestSigningKey"]["Properties"]["KeyPolicy"]
    return _resolved(policy, _conditions(tpl, **overrides))["Statement"]


def test_digest_key_is_ecc_p256_for_signing(transformed):
    props = _props(transformed, "DigestSigningKey")
    assert props["KeySpec"] == "ECC_NIST_P256" and props["KeyUsage"] == "SIGN_VERIFY"
    assert transformed["Resources"]["DigestSigningKey"]["DeletionPolicy"] == "Retain"


def test_only_the_digest_function_may_sign_and_only_ecdsa_sha256_of_a_digest(transformed):
    for overrides in ({}, ALL_ON):
        statements = _digest_key_statements(transformed, overrides)
        signers = [st for st in statements if _granted(st, {"kms:Sign"})]
        assert len(signers) == 1, [st.get("Sid") for st in signers]
        (signer,) = signers
        assert _principals(signer) == [("AWS", DIGEST_ROLE)]
        assert _granted(signer, KMS_ACTIONS) == {"kms:Sign"}
        # DIGEST: the body's SHA-256 (KMS refuses a RAW message over 4096 bytes, a digest of ~20 entries)
        assert signer["Condition"] == {
            "StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "DIGEST"}
        }
        # issue 23 item 6: the scheduled verifier alone may Verify in KMS, of a SHA-256, never Sign
        verifiers = [st for st in statements if _granted(st, {"kms:Verify"})]
        assert [_principals(st) for st in verifiers] == [[("AWS", VERIFIER_ROLE)]]
        assert _granted(verifiers[0], KMS_ACTIONS) == {"kms:Verify"}
        assert verifiers[0]["Condition"] == {
            "StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "DIGEST"}
        }
        for st in statements:
            assert st["Effect"] == "Allow"
            if st is not signer:
                assert not _granted(st, {"kms:Sign", "kms:CreateGrant"}), st.get("Sid")
            if st not in verifiers:
                assert not _granted(st, {"kms:Verify"}), st.get("Sid")
        readers = [st for st in statements if _granted(st, {"kms:GetPublicKey"})]
        assert readers and all(st["Principal"] == ROOT_PRINCIPAL for st in readers)


def test_digest_role_signs_with_its_key_reads_every_item_and_version_and_writes_only_digests(transformed):
    statements = [
        st for owner, st in _identity_statements(transformed) if owner == "DigestEvidenceFunctionRole"
    ]
    by_action: dict[str, list[Any]] = {}
    for st in statements:
        for action in _as_list(st["Action"]):
            by_action.setdefault(action, []).extend(_as_list(st["Resource"]))
    assert by_action["kms:Sign"] == [{"Fn::GetAtt": ["DigestSigningKey", "Arn"]}]
    # issue 23: every item by a Scan (no index a writer can leave), every version of the evidence
    assert by_action["dynamodb:Scan"] == [{"Fn::GetAtt": ["DecisionsTable", "Arn"]}]
    assert "dynamodb:Query" not in by_action
    assert by_action["s3:PutObject"] == [{"Fn::Sub": "${AuditBucket.Arn}/digests/*"}]
    assert by_action["s3:GetObjectVersion"] == [
        {"Fn::Sub": "${AuditBucket.Arn}/decisions/*"},
        {"Fn::Sub": "${AuditBucket.Arn}/digests/*"},
    ]
    assert not {
        a
        for a in by_action
        if a.startswith(("s3:Delete", "s3:PutObjectRetention", "s3:BypassGovernance"))
        or a.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete"))
    }
    listing = [st for st in statements if "s3:ListBucketVersions" in _as_list(st["Action"])]
    assert listing and listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["digests/*", "decisions/*"]}}
    fn = _props(transformed, "DigestEvidenceFunction")
    assert fn["ReservedConcurrentExecutions"] == 1  # one writer: no forked chain
    assert fn["Environment"]["Variables"]["KYC_DIGEST_SIGNING_KEY_ID"] == {
        "Fn::GetAtt": ["DigestSigningKey", "Arn"]
    }


def test_digest_runs_on_the_schedule_parameter(transformed):
    rules = [
        r
        for r in _resources(transformed, "AWS::Events::Rule").values()
        if _mentions(r["Properties"].get("Targets"), "DigestEvidenceFunction")
    ]
    assert len(rules) == 1 and rules[0]["Properties"]["ScheduleExpression"] == {"Ref": "DigestSchedule"}
    assert transformed["Parameters"]["DigestSchedule"]["Default"] == "rate(1 hour)"


def test_digest_alarm_fires_when_no_digest_is_written(transformed):
    props = _props(transformed, "DigestMissedAlarm")
    assert (props["Namespace"], props["MetricName"]) == ("KycScreening", "DigestsWritten")
    assert props["Dimensions"] == [{"Name": "service", "Value": "kyc-screening"}]
    assert props["TreatMissingData"] == "breaching" and props["ComparisonOperator"] == "LessThanThreshold"
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == {"Ref": "DigestMissedAlarmHours"}


# --------------------------------------------------------------------------- issue 23 item 6: the verifier
# The verifier's whole policy, action by action (the template as SAM transforms it): reading the
# stores, the stage log groups, the service's history and KMS Verify; writing only its own log lines.
VERIFIER_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",  # its own log group only (asserted below)
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "dynamodb:Scan",
    "dynamodb:GetItem",
    "s3:ListBucketVersions",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "logs:FilterLogEvents",
    "states:DescribeExecution",
    "states:GetExecutionHistory",
    "kms:Verify",
    "kms:Decrypt",
}


def test_the_verifier_is_read_only_and_writes_nothing_but_its_own_log(transformed):
    statements = [
        st for owner, st in _identity_statements(transformed) if owner == "VerifyEvidenceFunctionRole"
    ]
    actions = {a for st in statements for a in _as_list(st["Action"]) if not a.startswith("ec2:")}
    assert actions == VERIFIER_ACTIONS
    for st in statements:
        assert st["Effect"] == "Allow"
        for action in _as_list(st["Action"]):
            if action.startswith("ec2:"):  # Lambda's own network interfaces, only with IsInVpc
                continue
            verb = action.split(":", 1)[1]
            assert ("*" not in action and not verb.startswith(("Put", "Delete", "Update", "Sign"))) or (
                action in ("logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords")
            ), action
        if "logs:PutLogEvents" in _as_list(st["Action"]):
            assert _as_list(st["Resource"]) == [
                {
                    "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                    "/aws/lambda/${AWS::StackName}-verify-evidence:*"
                }
            ]
    by_action: dict[str, list[Any]] = {}
    for st in statements:
        for action in _as_list(st["Action"]):
            by_action.setdefault(action, []).extend(_as_list(st["Resource"]))
    assert by_action["kms:Verify"] == [{"Fn::GetAtt": ["DigestSigningKey", "Arn"]}]
    # every stage function's log group, and no other: a record elsewhere is never a witness
    groups = {json.dumps(r) for r in by_action["logs:FilterLogEvents"]}
    from kyc.aws.lineage_witnesses import STAGE_FUNCTIONS

    assert groups == {
        json.dumps(
            {
                "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                f"/aws/lambda/${{{function}}}:*"
            }
        )
        for function in STAGE_FUNCTIONS.values()
    }


def test_the_verifier_env_names_the_same_stage_log_groups_the_cli_trusts(template):
    """One source of truth: the stage -> function map of kyc.aws.lineage_witnesses is the template's."""
    import re

    from kyc.aws.lineage_witnesses import STAGE_FUNCTIONS

    env = _props(template, "VerifyEvidenceFunction")["Environment"]["Variables"]
    text = env["KYC_VERIFIER_STAGE_LOG_GROUPS"]["Fn::Sub"]
    named = dict(re.findall(r'"(\w+)": "/aws/lambda/\$\{(\w+)\}"', text))
    assert named == STAGE_FUNCTIONS
    assert set(STAGE_FUNCTIONS.values()) <= set(_resources(template, "AWS::Serverless::Function"))
