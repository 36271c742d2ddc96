"""The optional webhook's resources (issue 20): off by default, the secret generated under the stack
key, retries through the queue into an alarmed DLQ, and a role that reaches only its queue and secret."""

from __future__ import annotations

import json
import re
from typing import Any

from kyc.domain.webhook import DETAIL_TYPES

KEY_ARN = {"Fn::GetAtt": ["ScreeningKey", "Arn"]}


def _webhook_resources(tpl: dict[str, Any]) -> dict[str, Any]:
    return {lid: r for lid, r in tpl["Resources"].items() if lid.startswith("Webhook")}


def test_off_by_default_every_webhook_resource_under_its_condition(template):
    assert template["Parameters"]["WebhookUrl"]["Default"] == ""
    assert template["Conditions"]["IsWebhookEnabled"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookUrl"}, ""]}]
    }
    resources = _webhook_resources(template)
    expected = {"WebhookSigningSecret", "WebhookQueue", "WebhookDeadLetterQueue", "WebhookRule"}
    assert expected | {"WebhookFunction", "WebhookDeadLetterAlarm"} <= set(resources)
    assert all(r.get("Condition") == "IsWebhookEnabled" for r in resources.values())


def test_url_parameter_takes_only_https_without_credentials(template):
    pattern = template["Parameters"]["WebhookUrl"]["AllowedPattern"]
    for ok in ("", "https://hooks.example.com/kyc", "https://hooks.example.com:8443/a/b?x=1"):
        assert re.fullmatch(pattern, ok), ok
    for bad in ("http://hooks.example.com/", "https://user:pw@hooks.example.com/", "ftp://x/", "https://"):
        assert not re.fullmatch(pattern, bad), bad


def test_secret_is_generated_under_the_stack_key(template):
    props = template["Resources"]["WebhookSigningSecret"]["Properties"]
    assert props["KmsKeyId"] == KEY_ARN
    assert "SecretString" not in props and props["GenerateSecretString"]["PasswordLength"] >= 32


def test_failed_deliveries_retry_through_the_queue_into_an_alarmed_dead_letter_queue(template):
    res = template["Resources"]
    queue = res["WebhookQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "WebhookMaxAttempts"},
    }
    assert (
        queue["KmsMasterKeyId"] == KEY_ARN
        and res["WebhookDeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == KEY_ARN
    )
    assert queue["VisibilityTimeout"] >= 6 * res["WebhookFunction"]["Properties"]["Timeout"]
    rule = res["WebhookRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "DecisionEventBus"}
    # what the bus really carries (witnesses the signer does not control: the pipe's DetailType and the
    # API's only PutEvents detail type), and what the signer accepts
    pipe = res["DecisionEventsPipe"]["Properties"]["TargetParameters"]["EventBridgeEventBusParameters"]
    api_statements = json.dumps(template["Resources"]["ScreeningApiFunctionPolicy"]["Properties"])
    published = [pipe["DetailType"]] + (
        ["Screening Reviewed"] if '"events:detail-type": "Screening Reviewed"' in api_statements else []
    )
    assert rule["EventPattern"]["detail-type"] == published
    assert tuple(published) == DETAIL_TYPES
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhookQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    alarm = res["WebhookDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    events = res["WebhookFunction"]["Properties"]["Events"]
    (source,) = events.values()
    assert source["Type"] == "SQS" and source["Properties"]["FunctionResponseTypes"] == [
        "ReportBatchItemFailures"
    ]


def test_webhook_role_reaches_only_its_queue_and_secret(template):
    doc = template["Resources"]["WebhookFunctionPolicy"]["Properties"]["PolicyDocument"]
    statements = [s for s in doc["Statement"] if "Fn::If" not in s]
    by_action: dict[str, list[Any]] = {}
    for st in statements:
        for action in st["Action"]:
            by_action.setdefault(action, []).append(st["Resource"])
    assert by_action["secretsmanager:GetSecretValue"] == [{"Ref": "WebhookSigningSecret"}]
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert by_action[action] == [{"Fn::GetAtt": ["WebhookQueue", "Arn"]}]
    assert by_action["kms:Decrypt"] == [KEY_ARN]
    assert not any(a.endswith("*") for a in by_action)
    text = json.dumps(doc)
    for other in ("DecisionsTable", "ReviewsTable", "AuditBucket", "IntakeBucket", "PseudonymKey"):
        assert other not in text
    key_policy = json.dumps(template["Resources"]["ScreeningKey"]["Properties"]["KeyPolicy"])
    assert "WebhookRoleDecryptsItsQueueAndSecret" in key_policy
