"""Erasure reaches the learning data (issue 21): the erase role may list LearningBucket's personal
prefixes and read, rewrite and delete by version only under labels/ and runs/ (never models/, reports/,
code/, champion/), through the stack key it already uses; the function is told the bucket."""

from __future__ import annotations

import json
from typing import Any

ROLE = "EraseSubmissionFunctionRole"


def _learning_statements(tpl: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        st
        for res in tpl["Resources"].values()
        if res["Type"] == "AWS::IAM::Policy" and res["Properties"]["Roles"] == [{"Ref": ROLE}]
        for st in res["Properties"]["PolicyDocument"]["Statement"]
        if "LearningBucket" in json.dumps(st)
    ]


def test_erase_role_lists_only_the_personal_prefixes_of_the_learning_bucket(template):
    listing = [
        s for s in _learning_statements(template) if "s3:ListBucketVersions" in json.dumps(s["Action"])
    ]
    assert len(listing) == 1
    assert listing[0]["Action"] == ["s3:ListBucketVersions"]
    assert listing[0]["Resource"] == {"Fn::GetAtt": ["LearningBucket", "Arn"]}
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["labels/*", "runs/*"]}}


def test_erase_role_rewrites_and_deletes_versions_only_under_labels_and_runs(template):
    objects = [s for s in _learning_statements(template) if "s3:ListBucketVersions" not in json.dumps(s)]
    assert len(objects) == 1
    (grant,) = objects
    assert grant["Effect"] == "Allow"
    assert sorted(grant["Action"]) == [
        "s3:DeleteObjectVersion",  # by version id: a plain delete would leave the bytes behind a marker
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
    ]
    assert grant["Resource"] == [
        {"Fn::Sub": "${LearningBucket.Arn}/labels/*"},
        {"Fn::Sub": "${LearningBucket.Arn}/runs/*"},
    ]


def test_erase_function_is_told_the_learning_bucket_and_its_role_may_use_the_bucket_key(template):
    env = template["Resources"]["EraseSubmissionFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KYC_LEARNING_BUCKET"] == {"Ref": "LearningBucket"}
    bucket = template["Resources"]["LearningBucket"]["Properties"]["BucketEncryption"]
    key = bucket["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert key == {"Fn::GetAtt": ["ScreeningKey", "Arn"]}
    policy = template["Resources"]["ScreeningKey"]["Properties"]["KeyPolicy"]["Statement"]
    users = next(s for s in policy if s.get("Sid") == "UseKeyThroughDataServicesStackRoles")
    assert {"Fn::GetAtt": [ROLE, "Arn"]} in users["Principal"]["AWS"]


def test_learning_index_is_under_the_stack_key_with_a_retention_and_only_the_erase_role_uses_it(template):
    """The index names subjects (one-way tokens of their hashes, pseudonyms and file names): the stack
    key, a TTL, the learning data's retention, and one reader and writer, the erase role, with no Scan."""
    table = template["Resources"]["LearningIndexTable"]["Properties"]
    assert table["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": ["ScreeningKey", "Arn"]},
    }
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    env = template["Resources"]["EraseSubmissionFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KYC_LEARNING_INDEX_TABLE"] == {"Ref": "LearningIndexTable"}
    assert env["KYC_LEARNING_RETENTION_DAYS"] == {"Ref": "RetrainDataRetentionDays"}
    grants = [
        (name, st)
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::IAM::Policy"
        for st in res["Properties"]["PolicyDocument"]["Statement"]
        if "LearningIndexTable" in json.dumps(st)
    ]
    assert len(grants) == 1, grants
    name, grant = grants[0]
    assert template["Resources"][name]["Properties"]["Roles"] == [{"Ref": ROLE}]
    assert sorted(grant["Action"]) == ["dynamodb:BatchWriteItem", "dynamodb:Query"]
    assert grant["Resource"] == {"Fn::GetAtt": ["LearningIndexTable", "Arn"]}
    roles = [
        n
        for n, res in template["Resources"].items()
        if res["Type"] == "AWS::IAM::Role" and "LearningIndexTable" in json.dumps(res)
    ]
    assert roles == [], roles  # no inline grant anywhere else
