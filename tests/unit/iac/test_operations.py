"""Operations as the on-call SRE reads them: every alarm acts, is explained in the runbook and shown on the
dashboard; rate alarms are metric math with a volume guard; AWS Config rules and Incident Manager response
plans exist only when enabled, and enabling them changes nothing else. cfn-lint and Checkov run on a copy
of the template with every optional feature on (the default template is linted by ``make iac``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.unit.iac.test_template import ALARM_TOPIC, FUNCTIONS, ROOT, _props, _resources
from tests.unit.iac.test_vpc import _conditions

RUNBOOK = ROOT / "docs" / "runbook.md"
TOOLS = ROOT / ".venv-tools" / "bin"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
OUTCOMES = {"PASS", "REVIEW", "REJECT", "INVALID", "ERROR"}
RATE_ALARMS = {
    "DecisionsErrorRateAlarm": ("ERROR", "ErrorRateAlarmPercent"),
    "DecisionsInvalidRateAlarm": ("INVALID", "InvalidRateAlarmPercent"),
    "DecisionsReviewRateAlarm": ("REVIEW", "ReviewRateAlarmPercent"),
    "DecisionsRejectRateAlarm": ("REJECT", "RejectRateAlarmPercent"),
}
OPTIONAL = {
    "EnableConfigRules": "true",
    "EnableIncidentManager": "true",
    "CreateIncidentReplicationSet": "true",
}


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


TEMPLATE_OPTIONS = _script("template_options")
# the same switches `make iac` lints with (lists as the condition evaluator reads CommaDelimitedList)
ALL_ON = {k: (v.split(",") if k == "IncidentContactArns" else v) for k, v in TEMPLATE_OPTIONS.ALL_ON.items()}
assert OPTIONAL.items() <= ALL_ON.items()
CONFIG_IDENTIFIERS = {
    "S3_DEFAULT_ENCRYPTION_KMS",
    "S3_BUCKET_SSL_REQUESTS_ONLY",
    "S3_BUCKET_VERSIONING_ENABLED",
    "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED",
    "DYNAMODB_PITR_ENABLED",
    "CLOUDWATCH_LOG_GROUP_ENCRYPTED",
    "SNS_ENCRYPTED_KMS",
    "LAMBDA_CONCURRENCY_CHECK",
    "STEP_FUNCTIONS_STATE_MACHINE_LOGGING_ENABLED",
}


def _created(tpl: dict[str, Any], **params: Any) -> set[str]:
    conditions = _conditions(tpl, **params)
    return {lid for lid, res in tpl["Resources"].items() if conditions.get(res.get("Condition"), True)}


def _render(value: Any, tpl: dict[str, Any], conditions: dict[str, bool]) -> str:
    """Fn::Join / Fn::Sub / Fn::If of the dashboard body, with ${X} left as the literal ${X}."""
    if isinstance(value, str):
        return value
    ((fn, arg),) = value.items()
    if fn == "Fn::Join":
        return arg[0].join(_render(v, tpl, conditions) for v in arg[1])
    if fn == "Fn::Sub":
        return arg if isinstance(arg, str) else arg[0]
    if fn == "Fn::If":
        return _render(arg[1] if conditions[arg[0]] else arg[2], tpl, conditions)
    raise AssertionError(f"unexpected intrinsic in the dashboard body: {fn}")


def _dashboard(tpl: dict[str, Any], **params: Any) -> str:
    body = _props(tpl, "ScreeningDashboard")["DashboardBody"]
    return _render(body, tpl, _conditions(tpl, **params))


def _as_json(body: str) -> dict[str, Any]:
    numbers = re.sub(r"\$\{(\w+(?:Percent|Seconds|Decisions))\}", "1", body)  # numeric parameters
    return json.loads(numbers)


def _runbook_sections() -> dict[str, str]:
    """Heading -> body of each '###' section of the runbook."""
    text = RUNBOOK.read_text(encoding="utf-8")
    parts = re.split(r"^### +(.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


# --------------------------------------------------------------------------------------------------------
# every alarm: an action, a runbook section, a place on the dashboard
# --------------------------------------------------------------------------------------------------------
def test_every_alarm_notifies_the_alarm_topic_in_both_modes(template):
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 35
    for lid, alarm in alarms.items():
        props = alarm["Properties"]
        assert props.get("ActionsEnabled", True) is not False, lid
        assert props["AlarmActions"][0] == ALARM_TOPIC, f"{lid} notifies nobody"
        assert ALARM_TOPIC in props["OKActions"], lid
        for action in props["AlarmActions"][1:]:  # only conditional extras (response plans)
            assert action["Fn::If"][0] == "IsIncidentManagerEnabled", lid
            assert action["Fn::If"][2] == {"Ref": "AWS::NoValue"}, lid


def test_every_alarm_has_a_runbook_section_with_meaning_checks_and_recovery(template):
    sections = _runbook_sections()
    missing, thin = [], []
    for lid in _resources(template, "AWS::CloudWatch::Alarm"):
        titled = [body for heading, body in sections.items() if re.search(rf"\b{lid}\b", heading)]
        if not titled:
            missing.append(lid)
            continue
        body = titled[0]
        if not all(key in body for key in ("**Meaning.**", "**First checks.**", "**Recovery.**")):
            thin.append(lid)
    assert not missing, f"alarms without a runbook section (### heading naming them): {missing}"
    assert not thin, f"runbook sections without Meaning / First checks / Recovery: {thin}"


def test_rate_alarm_thresholds_are_reasoned_in_the_runbook(template):
    text = RUNBOOK.read_text(encoding="utf-8")
    for param in ("RateAlarmMinDecisions", "RateAlarmPeriodSeconds", *(p for _, p in RATE_ALARMS.values())):
        default = template["Parameters"][param]["Default"]
        assert re.search(rf"`{param}`[^\n|]*\|\s*{re.escape(str(default))}\b", text), (
            f"{param} (default {default}) is not in the runbook's threshold table"
        )


def test_every_function_and_every_alarm_is_on_the_dashboard(template):
    for params in ({}, ALL_ON):
        body = _dashboard(template, **params)
        _as_json(body)  # the rendered body is valid JSON in this mode
        created = _created(template, **params)
        for fn in FUNCTIONS:
            if fn in created:
                assert f"${{{fn}}}" in body, f"{fn} missing from the dashboard ({params or 'defaults'})"
        for lid in _resources(template, "AWS::CloudWatch::Alarm"):
            shown = f':alarm:${{{lid}}}"' in body
            assert shown == (lid in created), f"{lid}: on the dashboard={shown}, created={lid in created}"


def test_dashboard_shows_stage_durations_time_to_decision_and_the_no_decision_signal(template):
    widgets = _as_json(_dashboard(template))["widgets"]
    text = json.dumps(widgets)
    for stage in ("admit", "validate", "extract", "score", "reuse", "decide", "notify"):
        for stat in ("p50", "p95"):
            assert (
                f'"StageDuration", "service", "kyc-screening", "stage", "{stage}", {{"stat": "{stat}"' in text
            )
    assert '"TimeToDecision"' in text and "UploadsReceived" in text and "FramesScored" in text
    assert "UploadsRefused" in text  # INVALID by reason
    assert "IF(FILL(uploads, 0) > 0 AND h_total == 0, 1, 0)" in text


def test_stage_handlers_emit_stage_duration_through_the_shared_helper():
    stages = {"start": "admit", "validate": "validate", "extract": "extract", "score": "score"}
    stages |= {"decide": "decide", "notify": "notify"}
    for folder, stage in stages.items():
        source = (ROOT / "functions" / folder / "app.py").read_text(encoding="utf-8")
        assert f'@stage_duration("{stage}")\ndef lambda_handler' in source, folder
    for folder in ("decide", "reconcile"):
        source = (ROOT / "functions" / folder / "app.py").read_text(encoding="utf-8")
        assert 'time_to_decision(submission.get("received_at"))' in source, folder


# --------------------------------------------------------------------------------------------------------
# rates, not counts
# --------------------------------------------------------------------------------------------------------
def test_rate_alarms_are_metric_math_shares_with_a_volume_guard(template):
    for lid, (outcome, threshold) in RATE_ALARMS.items():
        props = _props(template, lid)
        queries = {q["Id"]: q for q in props["Metrics"]}
        returned = [q for q in props["Metrics"] if q.get("ReturnData", True)]
        assert [q["Id"] for q in returned] == ["rate"], lid
        assert returned[0]["Expression"] == {
            "Fn::Sub": f"IF(FILL({outcome.lower()}, 0) >= ${{RateAlarmMinDecisions}}, "
            f"100 * FILL({outcome.lower()}, 0) / total, 0)"
        }, lid
        assert queries["total"]["Expression"] == " + ".join(f"FILL({o.lower()}, 0)" for o in OUTCOMES_ORDER)
        stats = {
            q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]: q
            for q in props["Metrics"]
            if "MetricStat" in q
        }
        assert set(stats) == OUTCOMES, lid
        for q in stats.values():
            assert (
                q["MetricStat"]["Period"] == {"Ref": "RateAlarmPeriodSeconds"}
                and q["MetricStat"]["Stat"] == "Sum"
            )
        assert props["Threshold"] == {"Ref": threshold}
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert props["TreatMissingData"] == "notBreaching"
    no_counts = [
        lid
        for lid, alarm in _resources(template, "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("MetricName") == "Decisions"
    ]
    assert not no_counts, f"count alarms on Decisions left: {no_counts}"


OUTCOMES_ORDER = ("PASS", "REVIEW", "REJECT", "INVALID", "ERROR")


def test_no_decision_alarm_is_on_by_default_and_needs_uploads(template):
    assert "DecisionsAbsentAlarm" in _created(template)
    props = _props(template, "DecisionsAbsentAlarm")
    (returned,) = [q for q in props["Metrics"] if q.get("ReturnData", True)]
    assert returned["Expression"] == "IF(FILL(uploads, 0) + FILL(intake, 0) > 0 AND total == 0, 1, 0)"
    uploads = next(q for q in props["Metrics"] if q["Id"] == "uploads")["MetricStat"]["Metric"]
    assert uploads["MetricName"] == "UploadsReceived"
    # issue 23: the intake side (the bucket's events the admission rule matched) as well
    intake = next(q for q in props["Metrics"] if q["Id"] == "intake")["MetricStat"]["Metric"]
    assert (intake["Namespace"], intake["MetricName"]) == ("AWS/Events", "MatchedEvents")
    assert intake["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": "IntakeObjectCreatedRule"}}]
    # missing data (no uploads, no decisions) must not breach: a quiet night is not an incident
    assert props["TreatMissingData"] == "notBreaching"
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == {"Ref": "NoDecisionWindowHours"}
    assert template["Parameters"]["NoDecisionWindowHours"]["MinValue"] >= 2


def test_endpoint_alarms_and_dashboard_take_the_variant_from_a_parameter(template):
    sagemaker = []
    for lid, alarm in _resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        metrics = (
            [props]
            if "MetricName" in props
            else [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q]
        )
        for metric in metrics:
            if metric["Namespace"] == "AWS/SageMaker":
                sagemaker.append(lid)
                dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                assert dims == {
                    "EndpointName": {"Ref": "EndpointName"},
                    "VariantName": {"Ref": "EndpointVariantName"},
                }, lid
    assert set(sagemaker) >= {
        "EndpointInvocation5XXErrorsAlarm",
        "EndpointModelLatencyAlarm",
        "EndpointVariantMetricsMissingAlarm",
    }
    assert "AllTraffic" not in _dashboard(template)
    blind = _props(template, "EndpointVariantMetricsMissingAlarm")
    (returned,) = [q for q in blind["Metrics"] if q.get("ReturnData", True)]
    assert returned["Expression"] == "IF(FILL(scored, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"


# --------------------------------------------------------------------------------------------------------
# optional AWS Config and Incident Manager
# --------------------------------------------------------------------------------------------------------
NEW_CONDITIONS = {
    "IsConfigRulesEnabled",
    "IsIncidentManagerEnabled",
    "CreateReplicationSet",
    "HasIncidentContacts",
}


def test_optional_operations_features_are_off_by_default_and_change_nothing_else(template):
    for name in OPTIONAL:
        assert template["Parameters"][name]["Default"] == "false"
    default = _created(template)
    enabled = _created(template, **OPTIONAL)
    added = enabled - default
    assert default <= enabled
    for lid in added:
        assert template["Resources"][lid]["Condition"] in NEW_CONDITIONS, lid
    assert {r["Type"] for lid, r in template["Resources"].items() if lid in added} == {
        "AWS::Config::ConfigRule",
        "AWS::Events::Rule",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::CloudWatch::Alarm",
        "AWS::SSMIncidents::ReplicationSet",
        "AWS::SSMIncidents::ResponsePlan",
        "AWS::CloudFormation::WaitConditionHandle",
    }
    # moto's CloudFormation creates the template with its defaults: none of the new types may be on then
    assert not {lid for lid in default if template["Resources"][lid].get("Condition") in NEW_CONDITIONS}
    optional_types = {
        "AWS::Config::ConfigRule",
        "AWS::SSMIncidents::ReplicationSet",
        "AWS::SSMIncidents::ResponsePlan",
    }
    assert not {lid for lid in default if template["Resources"][lid]["Type"] in optional_types}


def test_config_rules_cover_the_promised_controls_scoped_to_this_stack(template):
    rules = {lid: r["Properties"] for lid, r in _resources(template, "AWS::Config::ConfigRule").items()}
    assert {p["Source"]["SourceIdentifier"] for p in rules.values()} == CONFIG_IDENTIFIERS
    for lid, props in rules.items():
        assert template["Resources"][lid]["Condition"] == "IsConfigRulesEnabled"
        assert props["Source"]["Owner"] == "AWS"
        scope = props["Scope"]
        assert scope.get("ComplianceResourceId") or scope == {
            "TagKey": "aws:cloudformation:stack-name",
            "TagValue": {"Ref": "AWS::StackName"},
        }, lid
    kms = [p for p in rules.values() if p["Source"]["SourceIdentifier"] == "S3_DEFAULT_ENCRYPTION_KMS"]
    assert {p["Scope"]["ComplianceResourceId"]["Ref"] for p in kms} == {
        "IntakeBucket",
        "WorkBucket",
        "AuditBucket",
    }
    for p in kms:
        assert p["InputParameters"] == {"kmsKeyArns": {"Fn::GetAtt": ["ScreeningKey", "Arn"]}}


def test_non_compliant_changes_reach_the_alarm_topic(template):
    rule = _props(template, "ConfigComplianceChangeRule")
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.config"] and pattern["detail-type"] == [
        "Config Rules Compliance Change"
    ]
    assert pattern["detail"]["newEvaluationResult"] == {"complianceType": ["NON_COMPLIANT"]}
    named = [ref["Ref"] for branch in pattern["detail"]["$or"] for ref in branch["configRuleName"]]
    assert sorted(named) == sorted(_resources(template, "AWS::Config::ConfigRule"))
    (target,) = rule["Targets"]
    assert target["Arn"] == ALARM_TOPIC
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ConfigAlertDeadLetterQueue", "Arn"]}
    # the topic admits EventBridge for this rule only, and keeps CloudWatch alarms publishing
    statements = {s["Sid"]: s for s in _props(template, "AlarmTopicPolicy")["PolicyDocument"]["Statement"]}
    assert statements["ConfigComplianceChangeRulePublishes"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ConfigComplianceChangeRule", "Arn"]}}
    }
    assert statements["CloudWatchAlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    # the topic is encrypted: EventBridge needs the key (the key policy admits it for this account)
    key = {s["Sid"]: s for s in _props(template, "ScreeningKey")["KeyPolicy"]["Statement"] if "Sid" in s}
    events = key["AllowEventBridgeToEncryptedQueuesAndBus"]
    assert (
        events["Principal"] == {"Service": "events.amazonaws.com"}
        and "kms:GenerateDataKey" in events["Action"]
    )


def test_response_plans_point_to_their_playbook_and_are_started_by_the_critical_alarms(template):
    plans = {
        lid: r["Properties"] for lid, r in _resources(template, "AWS::SSMIncidents::ResponsePlan").items()
    }
    assert set(plans) == {"DeepfakeWaveResponsePlan", "DetectionOutageResponsePlan"}
    sections = _runbook_sections()
    for lid, props in plans.items():
        summary = props["IncidentTemplate"]["Summary"]
        number = re.search(r"section (\d\.\d)", summary)[1]
        assert any(h.startswith(number + " ") for h in sections), (
            f"{lid} points to a missing section {number}"
        )
    started_by: dict[str, set[str]] = {}
    for lid, alarm in _resources(template, "AWS::CloudWatch::Alarm").items():
        for action in alarm["Properties"]["AlarmActions"][1:]:
            started_by.setdefault(action["Fn::If"][1]["Ref"], set()).add(lid)
    assert started_by == {
        "DeepfakeWaveResponsePlan": {"DecisionsRejectRateAlarm"},
        "DetectionOutageResponsePlan": {
            "DecisionsErrorRateAlarm",
            "EndpointScoringErrorsAlarm",
            "DecisionsAbsentAlarm",
        },
    }
    assert _created(template, EnableIncidentManager="true") - _created(template) == {
        "DeepfakeWaveResponsePlan",
        "DetectionOutageResponsePlan",
        "IncidentReplicationSetReady",
    }  # the account-wide replication set only on request
    assert template["Resources"]["IncidentReplicationSet"]["DeletionPolicy"] == "Retain"


def test_runbook_drills_name_the_response_plan_they_rehearse():
    text = RUNBOOK.read_text(encoding="utf-8")
    drills = text[text.index("## 4. Drills") :]
    for plan in ("deepfake-wave", "detection-outage"):
        assert f"`<stack>-{plan}`" in drills


# --------------------------------------------------------------------------------------------------------
# cfn-lint and Checkov with every optional feature on
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def all_options_template(tmp_path_factory) -> Path:
    """The template with the optional features' defaults flipped on (the copy ``make iac`` lints too)."""
    path = tmp_path_factory.mktemp("all-options") / "template.json"
    assert TEMPLATE_OPTIONS.main(["--all-on", "--out", str(path)]) == 0
    tpl = json.loads(path.read_text(encoding="utf-8"))
    assert _created(tpl, **ALL_ON) == _created(tpl)  # every optional resource is on at these defaults
    return path


def test_cfn_lint_is_clean_with_every_option_on(all_options_template):
    if not (TOOLS / "cfn-lint").exists():
        pytest.skip(".venv-tools is absent")
    proc = subprocess.run(
        [str(TOOLS / "cfn-lint"), "-a", "cfn_lint_serverless.rules", "--", str(all_options_template)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_checkov_is_clean_with_every_option_on(all_options_template):
    if not CHECKOV.exists():
        pytest.skip(".venv-checkov is absent")
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-f",
            str(all_options_template),
            "--framework",
            "cloudformation",
            "--external-checks-dir",
            str(ROOT / "policies" / "checkov"),
            "--compact",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    # the optional resources were really scanned (Checkov evaluates conditions it can resolve)
    checked = {c["resource"].split(".")[-1] for c in report["results"]["passed_checks"]}
    assert "ConfigAlertDeadLetterQueue" in checked, sorted(checked)


def test_optional_features_grant_no_identity_permissions_and_scope_service_principals(template):
    """The IAM walk (test_template.py) reads every role whatever its condition; the options add none,
    and each resource policy they add admits a service only for this stack's rule or account."""
    added = _created(template, **ALL_ON) - _created(template)
    iam = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
    config_or_im = {lid for lid in added if template["Resources"][lid].get("Condition") in NEW_CONDITIONS}
    assert not {lid for lid in config_or_im if template["Resources"][lid]["Type"] in iam}
    for lid in ("AlarmTopicPolicy", "ConfigAlertDeadLetterQueuePolicy"):
        for st in _props(template, lid)["PolicyDocument"]["Statement"]:
            if st["Effect"] == "Allow" and "Service" in st.get("Principal", {}):
                assert st.get("Condition"), f"{lid}/{st['Sid']}: a service principal without a condition"
            assert st.get("Principal") != "*" or st["Effect"] == "Deny", f"{lid}/{st['Sid']}"
