"""Static tests of template.yaml: the controls a security reviewer, a compliance lead and an on-call SRE
expect (encryption with the stack key, retention, least privilege, alarms), checked without an AWS account.

The template is parsed with ``cfnlint.decode`` (handles !Ref/!GetAtt/!Sub). One test runs the SAM transform
in the tools virtualenv (``.venv-tools``, which has aws-sam-translator) and inspects every IAM statement of
the generated CloudFormation; another measures the built artefacts in ``.aws-sam/build`` when present.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kyclocal.stack import FUNCTIONS as LOCAL_FUNCTIONS

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = ROOT / "template.yaml"
ASL_PATH = ROOT / "statemachines" / "screening.asl.json"
SETTINGS_PATH = ROOT / "layers" / "core" / "kyc" / "settings.py"
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
BUILD_DIR = ROOT / ".aws-sam" / "build"

KEY_ARN = {"Fn::GetAtt": ["ScreeningKey", "Arn"]}
ALARM_TOPIC = {"Ref": "AlarmTopic"}
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024

# Actions that support no resource-level scoping: the only ones allowed with Resource "*".
UNSCOPABLE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # Optional VPC attachment (condition IsInVpc only; tests/unit/iac/test_vpc.py): EC2 Describe* APIs
    # support no resource scoping. The ENI create/delete/assign actions are scoped and stay out of this set.
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    # face stage (FaceEvidenceSource=rekognition only): DetectFaces reads image bytes, no resource
    "rekognition:DetectFaces",
    # issue 21: the retraining jobs pull the customer's ECR images, a candidate model's role its inference
    # image; the ECR login token names no repository
    "ecr:GetAuthorizationToken",
}

# The function table, read from the template's CodeUri by the local stack (kyclocal.template).
FUNCTIONS = {name: f"functions/{folder}" for name, folder in LOCAL_FUNCTIONS.items()}


def test_every_function_folder_is_a_listed_function():
    folders = {p.parent.name for p in (ROOT / "functions").glob("*/app.py")}
    assert folders == set(LOCAL_FUNCTIONS.values())


LIMIT_VARS = {
    "KYC_MAX_UPLOAD_BYTES",
    "KYC_MIN_DURATION_S",
    "KYC_MAX_DURATION_S",
    "KYC_MAX_WIDTH",
    "KYC_MAX_HEIGHT",
    "KYC_MAX_PIXELS",
    "KYC_MIN_SIDE",
    "KYC_ALLOWED_CODECS",
    "KYC_DECODE_BUDGET_S",
    "KYC_SANDBOX_MEMORY_FRACTION",
}
EXPECTED_ENV = {
    "StartScreeningFunction": {
        "KYC_STATE_MACHINE_ARN",
        "KYC_SCORE_MAX_CONCURRENCY",
        "KYC_MAX_RUNNING_EXECUTIONS",
        "KYC_RETENTION_DAYS",
        "KYC_REUSE_TABLE",  # issue 24 item 5: admission records
        "KYC_ADMISSION_QUEUE_URL",  # held back for receipt order, briefly
        "KYC_ADMISSION_MAX_RECEIVES",  # the last receive is never deferred
    },
    "ValidateUploadFunction": LIMIT_VARS
    | {"KYC_PROVENANCE_TRUST_PARAMETER", "KYC_PROVENANCE_MAX_MANIFEST_BYTES"},
    "ExtractFramesFunction": LIMIT_VARS
    | {"KYC_FRAME_COUNT", "KYC_FRAME_MAX_SIDE", "KYC_WORK_BUCKET", "KYC_KMS_KEY_ID"},
    "ScoreFramesFunction": {
        "KYC_ENDPOINT_NAME",
        "KYC_MODEL_ARTEFACT_SHA256",
        "KYC_MODEL_DATA_BUCKET",  # issue 24: the deployment witness
        "KYC_MODEL_DATA_PREFIX",
        "KYC_MODEL_WITNESS_TTL_S",
        "KYC_WORK_BUCKET",
        "KYC_KMS_KEY_ID",
        "KYC_POLICY_PARAMETER",  # issue 21: the production pointer names the endpoint
        "KYC_POLICY_CACHE_SECONDS",
        "KYC_SHADOW_POLICY_PARAMETER",  # issue 21: live shadow traffic
        "KYC_SHADOW_TIMEOUT_SECONDS",
    },
    "DetectFacesFunction": {
        "KYC_FACE_EVIDENCE_SOURCE",
        "KYC_FACE_CHECK_FRAMES",
        "KYC_WORK_BUCKET",
        "KYC_KMS_KEY_ID",
    },
    "DecideOutcomeFunction": {
        "KYC_DECISIONS_TABLE",
        "KYC_AUDIT_BUCKET",
        "KYC_WORK_BUCKET",
        "KYC_KMS_KEY_ID",
        "KYC_PASS_THRESHOLD",
        "KYC_REJECT_THRESHOLD",
        "KYC_AGGREGATOR",
        "KYC_MIN_FRAMES_SCORED",
        "KYC_FACE_EVIDENCE_SOURCE",
        "KYC_FACE_CHECK_FRAMES",  # the calibration binds it (issue 24)
        "KYC_POLICY_VERSION",
        "KYC_POLICY_PARAMETER",
        "KYC_POLICY_CACHE_SECONDS",  # issue 21
        "KYC_DRIFT_BASELINE_OUTCOME_PERCENT",  # issue 21: the drift baseline while the pointer has none
        "KYC_DRIFT_BASELINE_BAND_PERCENT",
        "KYC_RETENTION_DAYS",
        # provenance rules (docs/provenance.md)
        "KYC_PROVENANCE_REJECT_SYNTHETIC",
        "KYC_PROVENANCE_SYNTHETIC_TYPES",
        "KYC_PROVENANCE_REVIEW_INVALID",
        "KYC_FORENSIC_RULES",
        "KYC_FORENSIC_MAX_AGE_DAYS",
    },
    "NotifyReviewFunction": {
        "KYC_WORK_BUCKET",
        "KYC_AUDIT_BUCKET",
        "KYC_REVIEW_BUCKET",
        "KYC_KMS_KEY_ID",
        "KYC_REVIEW_TOPIC_ARN",
        "KYC_REVIEW_LINK_SECONDS",
        "KYC_REVIEW_WORKBENCH_URL",
    },
    "ReconcileExecutionFunction": {"KYC_DECISIONS_TABLE", "KYC_RETENTION_DAYS", "KYC_REUSE_TABLE"},
    # issue 21: the learning loop's shadow deployment and backlog re-screen
    "ShadowDeployFunction": {
        "KYC_ENDPOINT_NAME",
        "KYC_AUDIT_BUCKET",
        "KYC_KMS_KEY_ID",
        "KYC_MODEL_PACKAGE_GROUP",
        "KYC_MODEL_ROLE_ARN",
        "KYC_SHADOW_POLICY_PARAMETER",
        "KYC_MODEL_DATA_BUCKET",  # issue 24: the deployment witness of the candidate's endpoint
        "KYC_MODEL_DATA_PREFIX",
        "KYC_POLICY_PARAMETER",  # issue 21 retire: the endpoint production serves is never deleted
    },
    "RescreenFunction": {
        "KYC_WORK_BUCKET",
        "KYC_AUDIT_BUCKET",
        "KYC_KMS_KEY_ID",
        "KYC_MODEL_PACKAGE_GROUP",
        "KYC_SHADOW_POLICY_PARAMETER",
        "KYC_MODEL_DATA_BUCKET",  # issue 24: the deployment witness of the candidate's endpoint
        "KYC_MODEL_DATA_PREFIX",
    },
    "IssueUploadUrlFunction": {
        "KYC_INTAKE_BUCKET",
        "KYC_UPLOAD_PREFIX",
        "KYC_KMS_KEY_ID",
        "KYC_MAX_UPLOAD_BYTES",
        "KYC_UPLOAD_URL_EXPIRY_S",
    },
    # issue 20: API
    "ScreeningApiFunction": {
        "KYC_PSEUDONYM_KEY_ARN",
        "KYC_INTAKE_BUCKET",
        "KYC_UPLOAD_PREFIX",
        "KYC_KMS_KEY_ID",
        "KYC_MAX_UPLOAD_BYTES",
        "KYC_UPLOAD_URL_EXPIRY_S",
        "KYC_DECISIONS_TABLE",
        "KYC_SCREENINGS_TABLE",
        "KYC_REVIEWS_TABLE",
        "KYC_IDEMPOTENCY_TABLE",
        "KYC_AUDIT_BUCKET",
        "KYC_REVIEW_BUCKET",
        "KYC_DECISION_EVENT_BUS",
        "KYC_CORS_ORIGIN",
        "KYC_RETENTION_DAYS",
        "KYC_REVIEW_LINK_SECONDS",
        "KYC_REVIEW_DEADLINE_HOURS",
        "KYC_REVIEW_LEASE_S",
        "KYC_REVIEW_HIGH_RISK_REASONS",
    },
    "EraseSubmissionFunction": {
        "KYC_WORK_BUCKET",
        "KYC_AUDIT_BUCKET",
        "KYC_REVIEW_BUCKET",
        "KYC_DECISIONS_TABLE",
        "KYC_KMS_KEY_ID",
        "KYC_REUSE_TABLE",
        "KYC_REVIEWS_TABLE",  # issue 20: erasure reaches the review records (empty without the API)
        "KYC_SCREENINGS_TABLE",
        "KYC_IDEMPOTENCY_TABLE",  # issue 20: and the Idempotency record of a declaration
        "KYC_LEARNING_BUCKET",  # issue 21: and the learning loop's labels, datasets and face crops
        "KYC_LEARNING_INDEX_TABLE",  # issue 21: which runs and labels files hold a subject
        "KYC_LEARNING_RETENTION_DAYS",  # the index entries' retention (RetrainDataRetentionDays)
    },
    # issue 20: the optional webhook (WebhookUrl)
    "WebhookFunction": {"KYC_WEBHOOK_URL", "KYC_WEBHOOK_SECRET_ARN", "KYC_WEBHOOK_TIMEOUT_S"},
    "CheckReuseFunction": {
        "KYC_WORK_BUCKET",
        "KYC_KMS_KEY_ID",
        "KYC_REUSE_TABLE",
        "KYC_REUSE_WINDOW_DAYS",
        "KYC_REUSE_RETENTION_DAYS",
        "KYC_REUSE_MAX_DISTANCE",
        "KYC_REUSE_MIN_MATCHING_FRAMES",
    },
    "DigestEvidenceFunction": {
        "KYC_AUDIT_BUCKET",
        "KYC_DECISIONS_TABLE",
        "KYC_KMS_KEY_ID",
        "KYC_DIGEST_SIGNING_KEY_ID",
        "KYC_DIGEST_SETTLE_SECONDS",
        "KYC_REVIEWS_TABLE",  # issue 20
    },
    # issue 23 item 6: the scheduled verifier
    "VerifyEvidenceFunction": {
        "KYC_AUDIT_BUCKET",
        "KYC_INTAKE_BUCKET",
        "KYC_WORK_BUCKET",
        "KYC_DECISIONS_TABLE",
        "KYC_STATE_MACHINE_ARN",
        "KYC_DIGEST_SIGNING_KEY_ID",
        "KYC_DIGEST_GENESIS_SHA256",
        "KYC_VERIFIER_SAMPLE_SIZE",
        "KYC_VERIFIER_LOOKBACK_HOURS",
        "KYC_VERIFIER_SETTLE_SECONDS",
        "KYC_VERIFIER_STAGE_LOG_GROUPS",
        "KYC_VERIFIER_RETENTION_DAYS",
    },
}
# Keyed pseudonyms (issue 13 item 5): exactly the functions that write a pseudonym know the HMAC key.
PSEUDONYMISING_FUNCTIONS = (
    "StartScreeningFunction",
    "ValidateUploadFunction",
    "DecideOutcomeFunction",
    "EraseSubmissionFunction",
    "IssueUploadUrlFunction",
    "ScreeningApiFunction",  # issue 20: upload keys and pseudonymous reviewer ids
)
for _lid in PSEUDONYMISING_FUNCTIONS:
    EXPECTED_ENV[_lid] = EXPECTED_ENV[_lid] | {"KYC_PSEUDONYM_KEY_ARN"}

EXPECTED_ALARMS = {
    "ScreeningExecutionsFailedAlarm",
    "ScreeningExecutionsTimedOutAlarm",
    "ScreeningExecutionsAbortedAlarm",
    "AdmissionDeadLetterQueueDepthAlarm",
    "ReconcileDeadLetterQueueDepthAlarm",
    "EndpointInvocation5XXErrorsAlarm",
    "EndpointModelLatencyAlarm",
    "EndpointVariantMetricsMissingAlarm",
    "EndpointScoringErrorsAlarm",
    "DigestMissedAlarm",
    "DecisionsErrorRateAlarm",
    "DecisionsInvalidRateAlarm",
    "DecisionsReviewRateAlarm",
    "DecisionsRejectRateAlarm",
    "DecisionsAbsentAlarm",
} | {f"{fn.removesuffix('Function')}{m}Alarm" for fn in FUNCTIONS for m in ("Errors", "Throttles")}


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------
def _resources(tpl: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == rtype}


def _props(tpl: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return tpl["Resources"][logical_id].get("Properties", {})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for st in _as_list(document.get("Statement", [])):
        if isinstance(st, dict) and "Fn::If" in st:  # conditional statement: check both branches
            out.extend(b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b)
        elif isinstance(st, dict):
            out.append(st)
    return out


def _policy_owner(lid: str, res: dict[str, Any]) -> str:
    """An AWS::IAM::Policy counts as its role's (the roles carry none inline: see the key policy)."""
    roles = res["Properties"].get("Roles", [])
    if len(roles) == 1 and isinstance(roles[0], dict) and "Ref" in roles[0]:
        return roles[0]["Ref"]
    return lid


def _role_policy_documents(tpl: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every identity policy document of a role: inline Policies and the AWS::IAM::Policy resources on it."""
    docs = [pol["PolicyDocument"] for pol in tpl["Resources"][role]["Properties"].get("Policies", [])]
    for lid, res in tpl["Resources"].items():
        if res["Type"] == "AWS::IAM::Policy" and _policy_owner(lid, res) == role:
            docs.append(res["Properties"]["PolicyDocument"])
    return docs


def _identity_statements(tpl: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of an identity policy: IAM roles, policies and SAM function/state machine Policies,
    labelled with the role they act for."""
    found = []
    for lid, res in tpl["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for pol in props.get("Policies", []):
                found += [(lid, st) for st in _statements(pol["PolicyDocument"])]
        elif res["Type"] == "AWS::IAM::Policy":
            found += [(_policy_owner(lid, res), st) for st in _statements(props["PolicyDocument"])]
        elif res["Type"] == "AWS::IAM::ManagedPolicy":
            found += [(lid, st) for st in _statements(props["PolicyDocument"])]
        elif res["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for pol in _as_list(props.get("Policies", [])):
                if isinstance(pol, dict) and "Statement" in pol:
                    found += [(lid, st) for st in _statements(pol)]
    return found


def _log_retention_param_ok(tpl: dict[str, Any], value: Any) -> bool:
    if isinstance(value, int):
        return value >= 365
    if isinstance(value, dict) and "Ref" in value:
        param = tpl["Parameters"][value["Ref"]]
        allowed = [int(v) for v in param.get("AllowedValues", [])]
        return bool(allowed) and min(allowed) >= 365 and int(param["Default"]) >= 365
    return False


# --------------------------------------------------------------------------------------------------------
# logging, retention, tracing
# --------------------------------------------------------------------------------------------------------
def test_every_function_is_a_handler_folder_built_by_its_makefile(template):
    # The independent side is the file system: each functions/<name>/app.py is deployed exactly once.
    # (FUNCTIONS itself is read from the template's CodeUri, so comparing the two would prove nothing.)
    functions = _resources(template, "AWS::Serverless::Function")
    on_disk = sorted(f"functions/{p.parent.name}" for p in (ROOT / "functions").glob("*/app.py"))
    assert sorted(f["Properties"]["CodeUri"].rstrip("/") for f in functions.values()) == on_disk
    for lid, function in functions.items():
        code_uri = function["Properties"]["CodeUri"]
        assert function["Metadata"]["BuildMethod"] == "makefile"
        assert f"build-{lid}:" in (ROOT / code_uri / "Makefile").read_text()


def test_globals_runtime_tracing_powertools_and_env_encryption(template):
    glob = template["Globals"]["Function"]
    assert glob["Runtime"] == "python3.13"
    assert glob["Handler"] == "app.lambda_handler"
    assert glob["Tracing"] == "Active"
    assert glob["Architectures"] == [{"Ref": "Architecture"}]
    assert glob["KmsKeyArn"] == KEY_ARN
    env = glob["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "kyc-screening"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "KycScreening"


def test_every_function_has_an_encrypted_log_group_kept_at_least_365_days(template):
    log_groups = _resources(template, "AWS::Logs::LogGroup")
    by_name = {json.dumps(lg["Properties"]["LogGroupName"], sort_keys=True): lg for lg in log_groups.values()}
    for lid in FUNCTIONS:
        lg = by_name.get(json.dumps({"Fn::Sub": f"/aws/lambda/${{{lid}}}"}, sort_keys=True))
        assert lg is not None, f"{lid} has no /aws/lambda/${{{lid}}} log group"
        assert _log_retention_param_ok(template, lg["Properties"]["RetentionInDays"]), lid
        assert lg["Properties"]["KmsKeyId"] == KEY_ARN, lid


def test_every_log_group_is_encrypted_and_kept_at_least_365_days(template):
    for lid, lg in _resources(template, "AWS::Logs::LogGroup").items():
        assert lg["Properties"]["KmsKeyId"] == KEY_ARN, lid
        assert _log_retention_param_ok(template, lg["Properties"]["RetentionInDays"]), lid
        assert lg.get("DeletionPolicy") == "Retain", f"{lid}: audit logs must survive stack deletion"


@pytest.mark.parametrize("machine", ["ScreeningStateMachine", "RescreenStateMachine"])
def test_state_machine_logs_all_without_execution_data_and_traces(template, machine):
    assert set(_resources(template, "AWS::StepFunctions::StateMachine")) == {
        "ScreeningStateMachine",
        "RescreenStateMachine",  # issue 21
    }
    props = _props(template, machine)
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    dest = props["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    lg_id = dest["Fn::GetAtt"][0]
    assert _props(template, lg_id)["LogGroupName"]["Fn::Sub"].startswith("/aws/vendedlogs/states/")
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["RoleArn"] == {"Fn::GetAtt": [f"{machine}Role", "Arn"]}
    assert not _resources(template, "AWS::Serverless::StateMachine"), "cannot take an EncryptionConfiguration"


# --------------------------------------------------------------------------------------------------------
# state machine definition <-> substitutions
# --------------------------------------------------------------------------------------------------------
def test_definition_substitutions_match_asl_placeholders(template):
    props = _props(template, "ScreeningStateMachine")
    assert props["DefinitionS3Location"] == "statemachines/screening.asl.json"
    if not ASL_PATH.is_file():
        pytest.skip("statemachines/screening.asl.json does not exist yet")
    used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", ASL_PATH.read_text(encoding="utf-8")))
    provided = set(props["DefinitionSubstitutions"])
    assert used - provided == set(), f"placeholders without a substitution: {sorted(used - provided)}"
    assert provided - used == set(), f"substitutions the definition never uses: {sorted(provided - used)}"


def test_state_machine_role_invokes_exactly_the_stage_functions(template):
    docs = _role_policy_documents(template, "ScreeningStateMachineRole")
    stmts = [st for doc in docs for st in _statements(doc)]
    invoke = [st for st in stmts if "lambda:InvokeFunction" in _as_list(st["Action"])]
    assert len(invoke) == 1
    targets = {json.dumps(r, sort_keys=True) for r in invoke[0]["Resource"]}
    stage_fns = [
        "ValidateUploadFunction",
        "ExtractFramesFunction",
        "DetectFacesFunction",
        "ScoreFramesFunction",
        "DecideOutcomeFunction",
        "NotifyReviewFunction",
        "CheckReuseFunction",
    ]
    expected = {json.dumps({"Fn::GetAtt": [f, "Arn"]}, sort_keys=True) for f in stage_fns}
    expected |= {json.dumps({"Fn::Sub": f"${{{f}.Arn}}:*"}, sort_keys=True) for f in stage_fns}
    assert targets == expected
    subs = _props(template, "ScreeningStateMachine")["DefinitionSubstitutions"]
    for f in stage_fns:
        assert subs[f"{f}Arn"] == {"Fn::GetAtt": [f, "Arn"]}


# --------------------------------------------------------------------------------------------------------
# storage: buckets, table, queues, topics, key
# --------------------------------------------------------------------------------------------------------
def _bucket_policy(template: dict[str, Any], bucket_id: str) -> dict[str, Any]:
    for pol in _resources(template, "AWS::S3::BucketPolicy").values():
        if pol["Properties"]["Bucket"] == {"Ref": bucket_id}:
            return pol["Properties"]["PolicyDocument"]
    raise AssertionError(f"{bucket_id} has no bucket policy")


def test_buckets_are_hardened(template):
    buckets = _resources(template, "AWS::S3::Bucket")
    buckets.pop(
        "WorkbenchBucket"
    )  # public static code, no personal data: tests/unit/iac/test_workbench_hosting.py
    assert set(buckets) == {
        "IntakeBucket",
        "WorkBucket",
        "AuditBucket",
        "ReviewBucket",
        "AccessLogsBucket",
        "LearningBucket",  # issue 21: labels, datasets, face crops, models, evaluation reports
    }
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        if lid == "AccessLogsBucket":
            # S3 server access logs can only be delivered to an SSE-S3 bucket; the skip is justified.
            assert sse["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
            skips = {s["id"]: s["comment"] for s in bucket["Metadata"]["checkov"]["skip"]}
            assert skips.get("CKV_AWS_18") and skips.get("CKV2_KYC_3")
        else:
            assert sse["ServerSideEncryptionByDefault"] == {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": KEY_ARN,
            }, lid
            assert sse["BucketKeyEnabled"] is True, lid
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}, lid
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, lid
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, lid
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}], lid
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("ExpirationInDays" in r for r in rules), f"{lid} has no expiry"
        assert any(r.get("NoncurrentVersionExpiration") for r in rules), (
            f"{lid} keeps noncurrent versions forever"
        )
        assert any(r.get("AbortIncompleteMultipartUpload") for r in rules), lid
        assert bucket.get("DeletionPolicy") == "Retain", lid

        statements = _statements(_bucket_policy(template, lid))
        assert any(
            st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for st in statements
        ), f"{lid} accepts plain HTTP"
        if lid != "AccessLogsBucket":
            conds = [st.get("Condition", {}) for st in statements if st["Effect"] == "Deny"]
            assert {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}} in conds, lid
            assert {
                "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN}
            } in conds, lid


def test_intake_bucket_emits_events_and_expires_raw_video(template):
    props = _props(template, "IntakeBucket")
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert "Prefix" not in rule and "Filter" not in rule, "raw-video expiry must cover the whole bucket"
    assert rule["ExpirationInDays"] == {"Ref": "RawVideoRetentionDays"}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert int(template["Parameters"]["RawVideoRetentionDays"]["MaxValue"]) <= 30


def test_work_bucket_expires_everything_after_one_day(template):
    (rule,) = _props(template, "WorkBucket")["LifecycleConfiguration"]["Rules"]
    assert "Prefix" not in rule and "Filter" not in rule
    assert rule["ExpirationInDays"] == 1
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_audit_evidence_lives_as_long_as_the_decision_record(template):
    rules = _props(template, "AuditBucket")["LifecycleConfiguration"]["Rules"]
    evidence = [r for r in rules if r.get("Prefix") == "decisions/"]
    assert evidence and evidence[0]["ExpirationInDays"] == {"Ref": "DecisionRetentionDays"}
    env = _props(template, "DecideOutcomeFunction")["Environment"]["Variables"]
    assert env["KYC_RETENTION_DAYS"] == {"Ref": "DecisionRetentionDays"}


def test_decisions_table_is_encrypted_recoverable_protected_and_expiring(template):
    table = template["Resources"]["DecisionsTable"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "submission_id", "KeyType": "HASH"}]
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    gsis = {
        g["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]]
        for g in props["GlobalSecondaryIndexes"]
    }
    assert gsis == {
        "ReviewQueueIndex": [("decision", "HASH"), ("decided_at", "RANGE")],
        "ClientReferenceIndex": [("client_reference", "HASH"), ("decided_at", "RANGE")],
    }


def test_queues_and_topics_and_bus_use_the_stack_key(template):
    for lid in _resources(template, "AWS::SQS::Queue"):
        assert _props(template, lid)["KmsMasterKeyId"] == KEY_ARN, lid
        assert "MessageRetentionPeriod" in _props(template, lid), lid
    for lid in _resources(template, "AWS::SNS::Topic"):
        assert _props(template, lid)["KmsMasterKeyId"] == KEY_ARN, lid
    for lid in _resources(template, "AWS::Events::EventBus"):
        assert _props(template, lid)["KmsKeyIdentifier"] == KEY_ARN, lid


def test_admission_queue_redrives_to_its_dead_letter_queue(template):
    props = _props(template, "AdmissionQueue")
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["AdmissionDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "AdmissionMaxReceives"},
    }
    assert template["Parameters"]["AdmissionMaxReceives"]["Default"] >= 5
    assert _props(template, "AdmissionDeadLetterQueue")["MessageRetentionPeriod"] == 1209600
    # SQS visibility timeout must exceed the consumer's timeout (AWS recommends 6x).
    assert props["VisibilityTimeout"] >= 6 * _props(template, "StartScreeningFunction")["Timeout"]
    # issue 24 item 5: holding an upload back for receipt order never hides it longer than a deferral
    start = (ROOT / "functions" / "start" / "app.py").read_text()
    assert f"ORDER_DEFER_MAX_S = {props['VisibilityTimeout']}" in start
    event = _props(template, "StartScreeningFunction")["Events"]["AdmissionQueueMessages"]["Properties"]
    assert event["BatchSize"] == 10
    assert event["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert _props(template, "StartScreeningFunction")["ReservedConcurrentExecutions"] >= 2


def test_event_rules_filter_precisely_and_dead_letter(template):
    intake = _props(template, "IntakeObjectCreatedRule")
    assert intake["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [{"Ref": "IntakeBucket"}]},
            "object": {"key": [{"prefix": {"Ref": "UploadPrefix"}}]},
        },
    }
    reconcile = _props(template, "ReconcileExecutionRule")
    assert reconcile["EventPattern"]["detail"] == {
        "status": ["FAILED", "TIMED_OUT", "ABORTED"],
        "stateMachineArn": [{"Ref": "ScreeningStateMachine"}],
    }
    for rule in (intake, reconcile):
        for target in rule["Targets"]:
            assert "Arn" in target["DeadLetterConfig"]


def test_queue_policies_admit_only_their_rule(template):
    for lid, pol in _resources(template, "AWS::SQS::QueuePolicy").items():
        for st in _statements(pol["Properties"]["PolicyDocument"]):
            if st["Effect"] == "Allow":
                assert st["Principal"] == {"Service": "events.amazonaws.com"}, lid
                assert "aws:SourceArn" in st["Condition"]["ArnEquals"], lid


def test_key_rotates_and_no_allow_statement_has_a_public_principal(template):
    key = template["Resources"]["ScreeningKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    docs = [key["Properties"]["KeyPolicy"]]
    for rtype in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
        docs += [r["Properties"]["PolicyDocument"] for r in _resources(template, rtype).values()]
    for doc in docs:
        for st in _statements(doc):
            if st["Effect"] == "Allow":
                assert st["Principal"] not in ("*", {"AWS": "*"}), st
    logs = [
        st
        for st in _statements(key["Properties"]["KeyPolicy"])
        if st["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    ]
    assert logs and "kms:EncryptionContext:aws:logs:arn" in logs[0]["Condition"]["ArnLike"]


# --------------------------------------------------------------------------------------------------------
# IAM least privilege (template as written)
# --------------------------------------------------------------------------------------------------------
def test_no_identity_statement_has_a_wildcard_action(template):
    for lid, st in _identity_statements(template):
        for action in _as_list(st["Action"]):
            assert "*" not in action, f"{lid}: wildcard action {action}"


def test_resource_star_only_for_unscopable_actions(template):
    for lid, st in _identity_statements(template):
        if "*" in _as_list(st["Resource"]):
            extra = set(_as_list(st["Action"])) - UNSCOPABLE_ACTIONS
            assert not extra, f"{lid}: {sorted(extra)} on Resource '*'"


def test_every_function_has_its_own_explicit_role_without_managed_policies(template):
    roles = set()
    for lid, fn in _resources(template, "AWS::Serverless::Function").items():
        props = fn["Properties"]
        assert "Policies" not in props, (
            f"{lid}: SAM would attach AWSLambdaBasicExecutionRole and X-Ray policies"
        )
        role = props["Role"]["Fn::GetAtt"][0]
        assert role == f"{lid}Role"
        roles.add(role)
    assert len(roles) == len(FUNCTIONS)
    for lid, role in _resources(template, "AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], lid


def test_only_the_score_role_can_invoke_the_endpoint(template):
    granted = [
        (lid, st)
        for lid, st in _identity_statements(template)
        if any(a.startswith("sagemaker:") for a in _as_list(st["Action"]))
    ]
    # issue 21: the retraining pipeline's role runs its jobs and registers packages: never an endpoint
    retrain = [st for lid, st in granted if lid == "RetrainPipelineRole"]
    assert {a for st in retrain for a in _as_list(st["Action"])} == {
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:AddTags",
        "sagemaker:CreateModelPackage",
        "sagemaker:DescribeModelPackage",
    }
    for st in retrain:
        assert all(":endpoint" not in json.dumps(r) for r in _as_list(st["Resource"])), st
    granted = [(lid, st) for lid, st in granted if lid != "RetrainPipelineRole"]
    base = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
    endpoint = {"Fn::Sub": base + "endpoint/${EndpointName}"}
    candidates = {"Fn::Sub": base + "endpoint/${EndpointName}-v*"}
    invoke = [(lid, st) for lid, st in granted if "sagemaker:InvokeEndpoint" in _as_list(st["Action"])]
    assert [lid for lid, _ in invoke] == ["ScoreFramesFunctionRole", "RescreenFunctionRole"]
    # the re-screen scores with candidates only, never the production endpoint
    (rescreen,) = [st for lid, st in invoke if lid == "RescreenFunctionRole"]
    assert rescreen["Action"] == "sagemaker:InvokeEndpoint" and rescreen["Resource"] == candidates
    # score: the production endpoint and (issue 21) a promoted candidate's own; issue 24: the deployment
    # witness reads (never changes) those endpoints and the configs and models under ModelNamePrefix
    score = [(st["Action"], st["Resource"]) for lid, st in granted if lid == "ScoreFramesFunctionRole"]
    assert score == [
        (["sagemaker:InvokeEndpoint"], [endpoint, candidates]),
        (["sagemaker:DescribeEndpoint"], [endpoint, candidates]),
        (
            ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            [
                {"Fn::Sub": base + "endpoint-config/${ModelNamePrefix}*"},
                {"Fn::Sub": base + "model/${ModelNamePrefix}*"},
            ],
        ),
    ]
    # issue 21: the rest of SageMaker is the learning loop's, on its own group and candidate names only
    for lid, st in granted:
        if lid == "ScoreFramesFunctionRole" or "sagemaker:InvokeEndpoint" in _as_list(st["Action"]):
            continue
        assert lid in {"ShadowDeployFunctionRole", "RescreenFunctionRole"}, lid
        for resource in _as_list(st["Resource"]):
            text = resource["Fn::Sub"]
            assert text.endswith(("${EndpointName}-v*", "model-package/${AWS::StackName}-kyc-models/*")), text
    # Endpoint ARNs carry the lower-cased name: the parameter must not accept upper case.
    pattern = template["Parameters"]["EndpointName"]["AllowedPattern"]
    assert re.fullmatch(pattern, "kyc-deepfake-detector") and not re.fullmatch(pattern, "Kyc-Detector")


def test_only_the_face_stage_may_call_rekognition_and_only_in_rekognition_mode(template):
    granted = [
        (lid, st)
        for lid, st in _identity_statements(template)
        if any(a.startswith("rekognition:") for a in _as_list(st["Action"]))
    ]
    assert [(lid, st["Action"]) for lid, st in granted] == [
        ("DetectFacesFunctionRole", ["rekognition:DetectFaces"])
    ]
    (doc,) = _role_policy_documents(template, "DetectFacesFunctionRole")
    conditional = [st for st in doc["Statement"] if "Fn::If" in st and st["Fn::If"][0] != "IsInVpc"]
    assert [(st["Fn::If"][0], st["Fn::If"][2]) for st in conditional] == [
        ("UseRekognitionFaces", {"Ref": "AWS::NoValue"})
    ]
    assert template["Conditions"]["UseRekognitionFaces"] == {
        "Fn::Equals": [{"Ref": "FaceEvidenceSource"}, "rekognition"]
    }
    # the default runs the stage's own detector: no Rekognition permission unless chosen (issue 25)
    assert template["Parameters"]["FaceEvidenceSource"]["Default"] == "local"


def test_policy_parameter_permission_is_conditional(template):
    (doc,) = _role_policy_documents(template, "DecideOutcomeFunctionRole")
    raw = doc["Statement"]
    # the IsInVpc ENI statements every function role carries are tested in test_vpc.py
    conditional = [st for st in raw if "Fn::If" in st and st["Fn::If"][0] != "IsInVpc"]
    assert len(conditional) == 1 and conditional[0]["Fn::If"][0] == "HasPolicyParameter"
    assert conditional[0]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert template["Conditions"]["HasPolicyParameter"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PolicyParameterName"}, ""]}]
    }


# --------------------------------------------------------------------------------------------------------
# functions: env contract, concurrency, sizing
# --------------------------------------------------------------------------------------------------------
def test_function_environment_matches_the_stage_contract(template):
    for lid, expected in EXPECTED_ENV.items():
        env = set(_props(template, lid)["Environment"]["Variables"])
        assert env == expected, (
            f"{lid}: missing {sorted(expected - env)}, unexpected {sorted(env - expected)}"
        )


def test_every_kyc_variable_read_by_settings_is_set_somewhere(template):
    if not SETTINGS_PATH.is_file():
        pytest.skip("layers/core/kyc/settings.py does not exist yet")
    read = set(re.findall(r"\"(KYC_[A-Z0-9_]+)\"", SETTINGS_PATH.read_text(encoding="utf-8")))
    provided = set().union(*EXPECTED_ENV.values())
    assert read - provided == set(), f"read by settings.py but set on no function: {sorted(read - provided)}"


def test_every_function_has_reserved_concurrency_memory_and_timeout(template):
    for lid in FUNCTIONS:
        props = _props(template, lid)
        for key in ("ReservedConcurrentExecutions", "MemorySize", "Timeout"):
            assert key in props, f"{lid} lacks {key}"
    assert _props(template, "ScoreFramesFunction")["ReservedConcurrentExecutions"] == {
        "Ref": "ScoreReservedConcurrency"
    }


def test_work_storage_default_holds_the_largest_upload_twice(template):
    params = template["Parameters"]
    assert int(params["WorkStorageMiB"]["Default"]) * 1024 * 1024 >= 2 * int(
        params["MaxUploadBytes"]["Default"]
    )
    for lid in ("ValidateUploadFunction", "ExtractFramesFunction"):
        assert _props(template, lid)["EphemeralStorage"] == {"Size": {"Ref": "WorkStorageMiB"}}


def test_layers_are_built_by_makefile_for_python313_and_the_chosen_architecture(template):
    layers = _resources(template, "AWS::Serverless::LayerVersion")
    assert set(layers) == {"CoreLayer", "MediaLayer", "ProvenanceLayer"}
    for layer in layers.values():
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
        assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    media = [{"Ref": "CoreLayer"}, {"Ref": "MediaLayer"}]
    # the C2PA reader is loaded by validate only (docs/provenance.md)
    assert _props(template, "ValidateUploadFunction")["Layers"] == [*media, {"Ref": "ProvenanceLayer"}]
    assert _props(template, "ExtractFramesFunction")["Layers"] == media


# --------------------------------------------------------------------------------------------------------
# alarms
# --------------------------------------------------------------------------------------------------------
def test_expected_alarms_exist_and_notify_the_alarm_topic(template):
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert EXPECTED_ALARMS - set(alarms) == set(), f"missing alarms: {sorted(EXPECTED_ALARMS - set(alarms))}"
    for lid, alarm in alarms.items():
        props = alarm["Properties"]
        assert props.get("ActionsEnabled", True) is not False, lid
        assert ALARM_TOPIC in props["AlarmActions"], f"{lid} notifies nobody"


def test_function_alarms_watch_their_own_function(template):
    for fn in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            props = _props(template, f"{fn.removesuffix('Function')}{metric}Alarm")
            if "Metrics" in props:  # a math alarm (CheckReuseErrorsAlarm): its AWS/Lambda metric
                (props,) = [
                    q["MetricStat"]["Metric"]
                    for q in props["Metrics"]
                    if q.get("MetricStat", {}).get("Metric", {}).get("Namespace") == "AWS/Lambda"
                ]
            assert props["Namespace"] == "AWS/Lambda" and props["MetricName"] == metric
            assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": fn}}]


def test_dead_letter_queue_alarms_fire_on_the_first_message(template):
    for queue in ("AdmissionDeadLetterQueue", "ReconcileDeadLetterQueue"):
        props = _props(template, f"{queue}DepthAlarm")
        assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold"


def test_decision_metric_alarms_match_the_emitted_dimensions(template):
    # kyc.observability.count() uses Powertools single_metric: dimensions {decision, service}.
    for lid in ("DecisionsErrorRateAlarm", "DecisionsAbsentAlarm"):
        stats = [m["MetricStat"]["Metric"] for m in _props(template, lid)["Metrics"] if "MetricStat" in m]
        decisions = {m["Dimensions"][0]["Value"]: m for m in stats if m["MetricName"] == "Decisions"}
        assert set(decisions) == {"PASS", "REVIEW", "REJECT", "INVALID", "ERROR"}, lid
        for decision, metric in decisions.items():
            assert metric["Namespace"] == "KycScreening"
            assert metric["Dimensions"] == [
                {"Name": "decision", "Value": decision},
                {"Name": "service", "Value": "kyc-screening"},
            ]
    absent = template["Resources"]["DecisionsAbsentAlarm"]
    assert absent["Condition"] == "IsNoDecisionAlarmEnabled"
    assert template["Parameters"]["NoDecisionAlarmEnabled"]["Default"] == "true"


def test_alarm_topic_is_encrypted_and_cloudwatch_may_use_the_key(template):
    assert _props(template, "AlarmTopic")["KmsMasterKeyId"] == KEY_ARN
    principals = [st["Principal"] for st in _statements(_props(template, "ScreeningKey")["KeyPolicy"])]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals


# --------------------------------------------------------------------------------------------------------
# after the SAM transform (runs in .venv-tools, which has aws-sam-translator)
# --------------------------------------------------------------------------------------------------------


def test_transformed_template_attaches_no_managed_policy(transformed):
    for lid, res in transformed["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            assert not res["Properties"].get("ManagedPolicyArns"), f"{lid} gets managed policies"


def test_transformed_iam_statements_are_least_privilege(transformed):
    statements = _identity_statements(transformed)
    assert len(statements) > 20
    for lid, st in statements:
        actions = _as_list(st["Action"])
        for action in actions:
            assert "*" not in action, f"{lid}: wildcard action {action}"
        if "*" in _as_list(st["Resource"]):
            assert set(actions) <= UNSCOPABLE_ACTIONS, f"{lid}: {actions} on Resource '*'"


def test_transformed_functions_are_python313_traced_and_env_encrypted(transformed):
    fns = {k: v for k, v in transformed["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}
    assert len(fns) == len(FUNCTIONS)
    for lid, fn in fns.items():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.13", lid
        assert props["TracingConfig"] == {"Mode": "Active"}, lid
        assert props["KmsKeyArn"] == KEY_ARN, lid


# --------------------------------------------------------------------------------------------------------
# built artefacts (after `sam build`): Lambda's 250 MB unzipped limit, function + its layers
# --------------------------------------------------------------------------------------------------------
def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


_ELF_MACHINE = {183: "arm64", 62: "x86_64"}


def _elf_arches(path: Path) -> set[str]:
    arches = set()
    for so in path.rglob("*.so*"):
        with so.open("rb") as f:
            head = f.read(20)
        if head[:4] == b"\x7fELF":
            arches.add(_ELF_MACHINE.get(int.from_bytes(head[18:20], "little"), "other"))
    return arches


def test_built_function_plus_layers_fit_lambda_unzipped_limit():
    if not (BUILD_DIR / "template.yaml").is_file():
        pytest.skip("no .aws-sam/build: run `sam build` first")
    sizes = {lid: _tree_size(BUILD_DIR / lid) for lid in [*FUNCTIONS, "CoreLayer", "MediaLayer"]}
    with_media = {"ValidateUploadFunction", "ExtractFramesFunction"}
    for lid in FUNCTIONS:
        total = sizes[lid] + sizes["CoreLayer"] + (sizes["MediaLayer"] if lid in with_media else 0)
        assert total < LAMBDA_UNZIPPED_LIMIT, f"{lid} with layers is {total / 2**20:.1f} MiB unzipped"
    for layer in ("CoreLayer", "MediaLayer"):
        assert not list((BUILD_DIR / layer).rglob("__pycache__")), f"{layer} ships __pycache__"
    arches = _elf_arches(BUILD_DIR / "CoreLayer") | _elf_arches(BUILD_DIR / "MediaLayer")
    assert len(arches) == 1, f"layers mix architectures: {arches}"


def test_every_parameter_is_documented_in_deployment_guide(template):
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    missing = sorted(name for name in template["Parameters"] if f"`{name}`" not in guide)
    assert not missing, f"parameters missing from docs/deployment.md: {missing}"
