"""The retraining pipeline's resources (issue 21): what a security reviewer and an on-call SRE check.

The roles can do the pipeline's job and nothing else; the learning data is under the stack key and
expires; a failed run pages; the definition runs every job as the job role, isolated from the network
where it trains.
"""

from __future__ import annotations

import json
from typing import Any

from tests.unit.iac.test_template import KEY_ARN, _as_list, _props, _statements

PIPELINE_NAME = {"Fn::Sub": "${AWS::StackName}-retrain"}


def _role_statements(template: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    return _statements(_props(template, policy)["PolicyDocument"])


def _resources_of(statements: list[dict[str, Any]], action: str) -> list[Any]:
    return [r for st in statements if action in _as_list(st["Action"]) for r in _as_list(st["Resource"])]


def test_the_pipeline_and_its_roles_exist_only_with_the_customers_image(template):
    for lid in ("RetrainPipeline", "RetrainPipelineRole", "RetrainPipelinePolicy", "RetrainJobRole"):
        assert template["Resources"][lid]["Condition"] == "IsRetrainPipelineEnabled", lid
    assert template["Parameters"]["RetrainProcessingImageUri"]["Default"] == ""
    # the group, the bucket and the failed-run alarm are always there (the registry's other users)
    for lid in (
        "ModelPackageGroup",
        "LearningBucket",
        "RetrainPipelineFailedRule",
        "RetrainPipelineFailedAlarm",
    ):
        assert "Condition" not in template["Resources"][lid], lid


def test_the_pipeline_role_passes_only_the_job_role_and_only_to_sagemaker(template):
    statements = _role_statements(template, "RetrainPipelinePolicy")
    passing = [st for st in statements if "iam:PassRole" in _as_list(st["Action"])]
    assert len(passing) == 1
    assert passing[0]["Resource"] == {"Fn::GetAtt": ["RetrainJobRole", "Arn"]}
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # it reads the evaluation reports (the Gate's property file) and writes nothing in S3
    assert _resources_of(statements, "s3:GetObject") == [{"Fn::Sub": "${LearningBucket.Arn}/reports/*"}]
    assert not _resources_of(statements, "s3:PutObject")
    for trust in ("RetrainPipelineRole", "RetrainJobRole"):
        (st,) = _props(template, trust)["AssumeRolePolicyDocument"]["Statement"]
        assert st["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_jobs_cannot_rewrite_the_code_they_run_or_the_labels_they_learn_from(template):
    statements = _role_statements(template, "RetrainJobPolicy")
    written = {json.dumps(r) for r in _resources_of(statements, "s3:PutObject")}
    assert written == {
        json.dumps({"Fn::Sub": f"${{LearningBucket.Arn}}/{prefix}/*"})
        for prefix in ("runs", "models", "reports")
    }
    read = {json.dumps(r) for r in _resources_of(statements, "s3:GetObject")}
    assert json.dumps({"Fn::Sub": "${IntakeBucket.Arn}/${UploadPrefix}*"}) in read  # retained media only
    assert not any("AuditBucket" in r or "ReviewBucket" in r or "WorkBucket" in r for r in read)
    # the stack key only through S3, and grants only for SageMaker's own job volumes
    for st in statements:
        actions = [a for a in _as_list(st["Action"]) if a.startswith("kms:")]
        if not actions:
            continue
        assert st["Resource"] == KEY_ARN
        via = st["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Sub"]
        if actions == ["kms:CreateGrant"]:
            assert via == "sagemaker.${AWS::Region}.amazonaws.com"
            assert st["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": True}
        else:
            assert via == "s3.${AWS::Region}.amazonaws.com"


def test_learning_data_is_under_the_stack_key_and_personal_data_expires_first(template):
    props = _props(template, "LearningBucket")
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN}
    rules = {r.get("Prefix", ""): r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules[""]["ExpirationInDays"] == {"Ref": "ModelArtefactRetentionDays"}
    for prefix in ("runs/", "labels/"):  # verdicts, datasets, face crops
        assert rules[prefix]["ExpirationInDays"] == {"Ref": "RetrainDataRetentionDays"}
    params = template["Parameters"]
    assert params["RetrainDataRetentionDays"]["Default"] < params["ModelArtefactRetentionDays"]["Default"]


def test_a_failed_run_of_this_pipeline_pages(template):
    pattern = _props(template, "RetrainPipelineFailedRule")["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    assert pattern["detail"]["currentPipelineExecutionStatus"] == ["Failed"]
    (arn,) = pattern["detail"]["pipelineArn"]
    name = _props(template, "RetrainPipeline")["PipelineName"]
    assert name == PIPELINE_NAME
    assert arn["equals-ignore-case"]["Fn::Sub"].endswith(":pipeline/" + name["Fn::Sub"])
    alarm = _props(template, "RetrainPipelineFailedAlarm")
    assert alarm["Namespace"] == "AWS/Events" and alarm["MetricName"] == "MatchedEvents"
    assert alarm["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": "RetrainPipelineFailedRule"}}]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_job_runs_as_the_job_role_and_training_has_no_network(template):
    body = _props(template, "RetrainPipeline")["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
    definition = json.loads(body)
    jobs = [s for s in definition["Steps"] if s["Type"] in ("Processing", "Training")]
    assert {s["Arguments"]["RoleArn"] for s in jobs} == {
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RetrainJobRole}"
    }
    (training,) = [s for s in jobs if s["Type"] == "Training"]
    assert training["Arguments"]["EnableNetworkIsolation"] is True
