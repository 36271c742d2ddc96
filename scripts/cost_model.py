"""Cost per 1,000 screened videos, from template.yaml and the durations benchmarks/pipeline.py measured.

    .venv/bin/python benchmarks/pipeline.py --out build/bench/pipeline.json
    .venv/bin/python scripts/cost_model.py --measured build/bench/pipeline.json [--monthly-videos N] [--json]

Memory, ephemeral storage, architecture, frame count and retention periods come from template.yaml
(parameter defaults; override with --param Name=Value as `sam deploy --parameter-overrides` would).
Per-screening quantities (handler seconds, API calls, state transitions, log bytes, S3 bytes) come
from the measured JSON. Prices are us-east-1 list prices, dated in PRICES_AS_OF: verify them.
Everything this model assumes rather than measures is in ASSUMPTIONS and printed with the table.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[1]
PRICES_AS_OF = "2026-11-28 (us-east-1 list prices as published 2024-2025; verify on aws.amazon.com/pricing)"
PRICES: dict[str, float] = {
    "lambda_gb_s_arm64": 0.0000133334,
    "lambda_gb_s_x86_64": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    "lambda_ephemeral_gb_s": 0.0000000309,  # above the free 512 MB
    "sfn_standard_transition": 0.025 / 1000,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "s3_gb_month": 0.023,
    "ddb_wru": 0.625 / 1e6,  # on-demand, after the Nov 2024 price cut
    "ddb_rru": 0.125 / 1e6,
    "ddb_gb_month": 0.25,
    "ddb_pitr_gb_month": 0.20,
    "logs_ingest_gb": 0.50,
    "logs_store_gb_month": 0.03,
    "metric_month": 0.30,
    "alarm_metric_month": 0.10,
    "dashboard_month": 3.00,
    "kms_key_month": 1.00,
    "kms_request": 0.03 / 10000,
    "kms_asymmetric_request": 0.15 / 10000,  # Sign with an ECC key (evidence digests)
    "sqs_request": 0.40 / 1e6,
    "eventbridge_custom_event": 1.00 / 1e6,
    "sns_publish": 0.50 / 1e6,
    "xray_trace": 5.00 / 1e6,
    "config_rule_evaluation": 0.001,  # first 100,000 evaluations per account and region
    "incident_response_plan_month": 7.00,  # Systems Manager Incident Manager, per response plan
    "sm_serverless_gb_s": 0.0000200,
    "sm_data_gb": 0.016,
    "sm_ml.m5.large_hour": 0.115,
    "sm_ml.c5.xlarge_hour": 0.204,
    "sm_ml.g4dn.xlarge_hour": 0.736,
    # face stage: Rekognition Image DetectFaces (a "Group 2" API), first 1 million images a month;
    # $0.0008 in the next tiers (aws.amazon.com/rekognition/pricing)
    "rekognition_detect_faces_image": 0.001,
}
ASSUMPTIONS: dict[str, Any] = {
    "frames_per_batch": 8,  # model contract: at most 8 frames per request
    "lambda_platform_log_bytes_per_invocation": 350,  # START/END/REPORT lines, not captured locally
    "sfn_log_bytes_per_history_event": 350,  # Logging Level ALL, IncludeExecutionData false
    "s3_access_log_bytes_per_request": 400,
    "ddb_item_bytes": 3000,  # decision record with policy, media, source; used if not measured
    "ddb_gsi_copies": 2,  # ReviewQueueIndex always, ClientReferenceIndex when a reference is given
    "reuse_entry_bytes": 220,  # a band entry: keys (~110 B), id, frame, hash, time, TTL, + 100 B overhead
    "reuse_list_bytes_per_entry": 75,  # one "pk\nsk" string in the submission's entry list
    "sqs_requests_per_upload": 3,  # send (EventBridge), receive, delete; deferrals add receives
    "decision_events_per_screening": 1,
    # KMS requests the services make for us and no local run can count: S3 and SQS data keys (S3 Bucket
    # Keys and SQS data-key reuse keep them to a few per screening, whatever the object count). The
    # handlers' own KMS calls (GenerateMac for the keyed pseudonyms, issue 13 item 5) are measured.
    "kms_service_data_key_requests_per_screening": 5,
    "xray_traces_per_screening": 2,  # start function + state machine trace
    # distinct name x dimension combinations (decision, reason_code, outcome): about 50, plus
    # StageDuration x 6 stages and TimeToDecision (issue 14); the face stage adds StageDuration faces,
    # FaceFramesChecked and FaceDetectionRefusals; DecisionScoreBand x 5 bands (issue 21, drift), and
    # the drift alarm's DriftOutcomeDeviation x 3 outcomes + DriftBandDeviation x 5 bands
    "custom_metrics": 73,
    # AWS Config (EnableConfigRules): configuration changes per month to the stack's resources in scope
    # (deployments, drift), each re-evaluated by the change-triggered rules that apply to its type
    "config_changes_per_month": 30,
    # the periodic log-group rule evaluates every log group of the region once a day, not only the
    # stack's: add the account's other log groups here
    "config_other_log_groups_in_region": 0,
    "sm_serverless_memory_gb": 4,
    "sm_request_bytes_per_screening": 2_000_000,  # 32 JPEG q95 frames at 1024 px (docs/model-contract.md)
    "sm_batch_latency_s": 3.34,  # median 8-frame batch, reference model (docs/model-contract.md)
    "sm_realtime_instances": 2,  # at least two, for availability across AZs
    "sm_target_utilisation": 0.5,  # headroom for peaks: size instances at half their sequential capacity
    "sm_instance": "ml.c5.xlarge",
}


@dataclass(frozen=True)
class Line:
    component: str
    driver: str
    per_1000: float  # USD per 1,000 screenings
    note: str = ""


def load_template(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    if matches:
        raise SystemExit(f"{path} does not parse: {matches}")
    return template


def parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    values = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
    return values | overrides


def resolve(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return params.get(value["Ref"])
    return value


def condition_values(template: dict[str, Any], params: dict[str, Any]) -> dict[str, bool]:
    """The template's Conditions with these parameters (the intrinsics its conditions use)."""

    def value(expr: Any) -> Any:
        if isinstance(expr, list):
            return [value(e) for e in expr]
        if not isinstance(expr, dict):
            return expr
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            raw = params.get(arg, "")
            spec = template["Parameters"].get(arg, {})
            if spec.get("Type") == "CommaDelimitedList" and not isinstance(raw, list):
                return str(raw if raw is not None else "").split(",")
            return str(raw)
        if fn == "Condition":
            return value(template["Conditions"][arg])
        if fn == "Fn::Not":
            return not value(arg[0])
        if fn == "Fn::And":
            return all(value(a) for a in arg)
        if fn == "Fn::Or":
            return any(value(a) for a in arg)
        if fn == "Fn::Equals":
            return value(arg[0]) == value(arg[1])
        if fn == "Fn::Join":
            parts = value(arg[1])
            flat = [x for p in parts for x in (p if isinstance(p, list) else [p])]
            return arg[0].join(str(x) for x in flat)
        if fn == "Fn::Split":
            return value(arg[1]).split(arg[0])
        if fn == "Fn::Select":
            return value(arg[1])[int(arg[0])]
        raise ValueError(f"unsupported intrinsic in a condition: {fn}")

    return {name: bool(value(expr)) for name, expr in template.get("Conditions", {}).items()}


def created(template: dict[str, Any], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The resources a deployment with these parameters creates."""
    conditions = condition_values(template, params)
    return {lid: r for lid, r in template["Resources"].items() if conditions.get(r.get("Condition"), True)}


def functions(template: dict[str, Any], params: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Logical id -> memory (MB) and /tmp (MB) of every function, as deployed with these parameters."""
    out = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        storage = resolve(props.get("EphemeralStorage", {}).get("Size", 512), params)
        out[name] = {
            "memory_mb": float(resolve(props.get("MemorySize", 128), params)),
            "tmp_mb": float(storage),
        }
    return out


def alarm_metrics(resources: dict[str, dict[str, Any]]) -> int:
    """Alarms are billed per metric they evaluate (a metric-math alarm over five metrics counts five)."""
    total = 0
    for resource in resources.values():
        if resource.get("Type") == "AWS::CloudWatch::Alarm":
            stats = [m for m in resource["Properties"].get("Metrics", []) if "MetricStat" in m]
            total += max(1, len(stats))
    return total


def count_type(resources: dict[str, dict[str, Any]], kind: str) -> int:
    return sum(1 for r in resources.values() if r.get("Type") == kind)


def calls(measured: dict[str, Any], *names: str) -> float:
    return sum(measured.get("api_calls_per_screening", {}).get(n, 0.0) for n in names)


def reuse_index_lines(params: dict[str, Any]) -> list[Line]:
    """The reuse index (CheckReuse, docs/provenance.md), from FrameCount: worst case, every sampled
    frame hashed and every band value distinct. One item for the bytes and 4 per frame (each under
    1 KB: 1 WRU), the submission's entry list (~75 B per entry), one strongly consistent Query per
    band value and one for the bytes (1 RRU each while a bucket holds under 4 KB), kept
    RawVideoRetentionDays with PITR."""
    p, a, k = PRICES, ASSUMPTIONS, 1000
    frames = int(params["FrameCount"])
    entries = 1 + 4 * frames
    list_kb = math.ceil(entries * a["reuse_list_bytes_per_entry"] / 1024)
    writes, reads = entries + list_kb, entries
    raw_months = float(params["RawVideoRetentionDays"]) / 30
    stored_gb = (entries * a["reuse_entry_bytes"] + list_kb * 1024) / 1024**3
    return [
        Line(
            "DynamoDB reuse index requests",
            "WRU + RRU",
            k * (writes * p["ddb_wru"] + reads * p["ddb_rru"]),
            f"{writes} WRU ({entries} entries + {list_kb} KB entry list), {reads} RRU (Queries)",
        ),
        Line(
            "DynamoDB reuse index storage + PITR",
            "GB-month",
            k * stored_gb * raw_months * (p["ddb_gb_month"] + p["ddb_pitr_gb_month"]),
            f"{stored_gb * 1024**2:.0f} kB x {raw_months:.2f} mo (TTL = RawVideoRetentionDays)",
        ),
    ]


def variable_lines(template: dict[str, Any], params: dict[str, Any], measured: dict[str, Any]) -> list[Line]:
    """Costs that scale with the number of screenings."""
    p, a, k = PRICES, ASSUMPTIONS, 1000
    arch = str(params.get("Architecture", "arm64"))
    lines: list[Line] = []
    invocations = 0.0
    for name, spec in functions(template, params).items():
        m = measured.get("functions", {}).get(name)
        if m is None:
            continue
        seconds, calls_n = m["billed_s_per_screening_median"], m["invocations_per_screening"]
        invocations += calls_n
        gb_s = spec["memory_mb"] / 1024 * seconds
        tmp_gb_s = max(0.0, spec["tmp_mb"] - 512) / 1024 * seconds
        cost = k * (
            gb_s * p[f"lambda_gb_s_{arch}"]
            + calls_n * p["lambda_request"]
            + tmp_gb_s * p["lambda_ephemeral_gb_s"]
        )
        note = f"{spec['memory_mb']:.0f} MB x {seconds:.2f} s x {calls_n:g} call(s), {arch}"
        lines.append(Line(f"Lambda {name}", "GB-s + requests", cost, note))
    transitions = float(measured["state_transitions_per_screening"])
    lines.append(
        Line(
            "Step Functions Standard",
            "state transitions",
            k * transitions * p["sfn_standard_transition"],
            f"{transitions:g} transitions per screening (4,000 free per month ignored)",
        )
    )
    s3 = measured["s3"]
    puts = calls(measured, "s3:PutObject") + 1  # + the client's upload
    gets = calls(measured, "s3:GetObject", "s3:HeadObject")
    lines.append(
        Line(
            "S3 requests",
            "PUT + GET",
            k * (puts * p["s3_put"] + gets * p["s3_get"]),
            f"{puts:g} PUT, {gets:g} GET/HEAD per screening",
        )
    )
    raw_months = float(params["RawVideoRetentionDays"]) / 30
    keep_months = float(params["DecisionRetentionDays"]) / 30
    log_months = float(params["LogRetentionDays"]) / 30
    gb = 1024**3
    storage = (
        s3["upload_bytes"] * raw_months
        + s3["work_bytes_per_screening"] / 30
        + s3["audit_bytes_per_screening"] * keep_months
        + s3.get("review_bytes_per_screening", 0) * raw_months  # contact sheets go with the raw video
    ) / gb
    lines.append(
        Line(
            "S3 storage over retention",
            "GB-month",
            k * storage * p["s3_gb_month"],
            f"upload {s3['upload_bytes'] / 1e6:.1f} MB x {raw_months:.2f} mo, work 1 day, "
            f"audit {s3['audit_bytes_per_screening'] / 1e3:.1f} kB x {keep_months:.0f} mo, "
            f"contact sheet {s3.get('review_bytes_per_screening', 0) / 1e3:.1f} kB x {raw_months:.2f} mo",
        )
    )
    access = (puts + gets) * a["s3_access_log_bytes_per_request"] / gb
    lines.append(
        Line(
            "S3 server access logs",
            "storage",
            k * access * log_months * p["s3_gb_month"],
            f"{a['s3_access_log_bytes_per_request']} B per request, {log_months:.0f} mo",
        )
    )
    item = float(measured.get("decision_item_bytes", a["ddb_item_bytes"]))
    copies = 1 + a["ddb_gsi_copies"]
    # CheckReuse's one UpdateItem (its submission's entry list) is priced with the reuse index below
    reuse_update = 1.0 if calls(measured, "dynamodb:BatchWriteItem") else 0.0
    decision_writes = max(0.0, calls(measured, "dynamodb:PutItem", "dynamodb:UpdateItem") - reuse_update)
    writes = decision_writes * copies * math.ceil(item / 1024)
    reads = calls(measured, "dynamodb:GetItem") * math.ceil(item / 4096)
    lines.append(
        Line(
            "DynamoDB on-demand",
            "WRU + RRU",
            k * (writes * p["ddb_wru"] + reads * p["ddb_rru"]),
            f"{writes:g} WRU, {reads:g} RRU per screening (item {item / 1024:.1f} KB, {copies} copies)",
        )
    )
    ddb_gb = (item + 100) / gb
    lines.append(
        Line(
            "DynamoDB storage + PITR over retention",
            "GB-month",
            k * ddb_gb * keep_months * (copies * p["ddb_gb_month"] + p["ddb_pitr_gb_month"]),
            f"{keep_months:.0f} months (TTL = DecisionRetentionDays)",
        )
    )
    lines.extend(reuse_index_lines(params))
    log_bytes = (
        measured["log_bytes_per_screening"]
        + invocations * a["lambda_platform_log_bytes_per_invocation"]
        + measured["history_events_per_screening"] * a["sfn_log_bytes_per_history_event"]
    )
    lines.append(
        Line(
            "CloudWatch Logs ingestion (incl. EMF)",
            "GB ingested",
            k * log_bytes / gb * p["logs_ingest_gb"],
            f"{log_bytes / 1e3:.1f} kB per screening",
        )
    )
    lines.append(
        Line(
            "CloudWatch Logs storage over retention",
            "GB-month",
            k * log_bytes / gb * log_months * p["logs_store_gb_month"],
            f"{log_months:.0f} months, uncompressed size (upper bound)",
        )
    )
    handler_kms = sum(
        v for n, v in measured.get("api_calls_per_screening", {}).items() if n.startswith("kms:")
    )
    service_kms = a["kms_service_data_key_requests_per_screening"]
    lines.append(
        Line(
            "KMS requests",
            "requests",
            k * (handler_kms + service_kms) * p["kms_request"],
            f"{handler_kms:g} by the handlers (measured) + {service_kms} S3/SQS data-key requests (assumed)",
        )
    )
    sqs = a["sqs_requests_per_upload"]
    lines.append(
        Line(
            "SQS + EventBridge",
            "requests + custom events",
            k * (sqs * p["sqs_request"] + a["decision_events_per_screening"] * p["eventbridge_custom_event"]),
            "S3 -> default bus events are free; one decision event on the custom bus",
        )
    )
    lines.append(
        Line(
            "X-Ray traces",
            "traces recorded",
            k * a["xray_traces_per_screening"] * p["xray_trace"],
            f"{a['xray_traces_per_screening']} per screening, before the free tier",
        )
    )
    lines.extend(face_stage_lines(params))
    return lines


def face_stage_lines(params: dict[str, Any]) -> list[Line]:
    """Rekognition DetectFaces: one billed image per frame checked (docs/face-stage.md); none when
    the deployment relies on its model's faces (FaceEvidenceSource=model)."""
    if str(params.get("FaceEvidenceSource", "rekognition")) != "rekognition":
        return []
    frames = int(params["FrameCount"])
    wanted = int(params.get("FaceCheckFrames", 0))
    checked = frames if wanted <= 0 else min(wanted, frames)
    price = PRICES["rekognition_detect_faces_image"]
    return [
        Line(
            "Rekognition DetectFaces (face stage)",
            "images",
            1000 * checked * price,
            f"{checked} frames checked x ${price} per image (first 1M images a month)",
        )
    ]


def fixed_monthly(template: dict[str, Any], params: dict[str, Any]) -> list[Line]:
    """Costs per month whatever the volume (shown in the per_1000 column as USD per month)."""
    p, a = PRICES, ASSUMPTIONS
    resources = created(template, params)
    alarms = alarm_metrics(resources)
    lines = [
        Line(
            "CloudWatch alarms",
            "per alarm metric",
            alarms * p["alarm_metric_month"],
            f"{alarms} alarm metrics ({count_type(resources, 'AWS::CloudWatch::Alarm')} alarms)",
        ),
        Line(
            "CloudWatch custom metrics",
            "per metric",
            a["custom_metrics"] * p["metric_month"],
            f"{a['custom_metrics']} name x dimension combinations (assumed)",
        ),
        Line(
            "CloudWatch dashboard",
            "per dashboard",
            count_type(resources, "AWS::CloudWatch::Dashboard") * p["dashboard_month"],
            "first 3 dashboards per account are free",
        ),
        Line("KMS key", "per key", count_type(resources, "AWS::KMS::Key") * p["kms_key_month"]),
    ]
    if "DigestEvidenceFunction" in resources:
        digests = digests_per_month(str(params["DigestSchedule"]))
        lines.append(
            Line(
                "KMS Sign (evidence digests)",
                "per asymmetric request",
                digests * p["kms_asymmetric_request"],
                f"one Sign per digest: {digests:.0f} a month at {params['DigestSchedule']}",
            )
        )
    rules = [r for r in resources.values() if r.get("Type") == "AWS::Config::ConfigRule"]
    if rules:
        periodic = [r for r in rules if "MaximumExecutionFrequency" in r["Properties"]]
        log_groups = count_type(resources, "AWS::Logs::LogGroup") + a["config_other_log_groups_in_region"]
        evaluations = (
            len(periodic) * log_groups * 30 + (len(rules) - len(periodic)) * a["config_changes_per_month"]
        )
        lines.append(
            Line(
                "AWS Config rule evaluations",
                "per evaluation",
                evaluations * p["config_rule_evaluation"],
                f"{len(rules)} rules: {len(periodic)} periodic x {log_groups} log groups x 30 days + "
                f"{a['config_changes_per_month']} changes x {len(rules) - len(periodic)} change-triggered "
                "(upper bound: a change triggers only the rules of its type); the recorder is the account's",
            )
        )
    plans = count_type(resources, "AWS::SSMIncidents::ResponsePlan")
    if plans:
        lines.append(
            Line(
                "Incident Manager response plans",
                "per plan",
                plans * p["incident_response_plan_month"],
                f"{plans} plans; incidents, SMS and voice engagements are charged on top",
            )
        )
    return lines


def digests_per_month(schedule: str) -> float:
    """Runs a month of a ``rate(N unit)`` schedule; a cron expression is taken as hourly."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", schedule.strip())
    if not match:
        return 730.0
    minutes = int(match.group(1)) * {"minute": 1, "hour": 60, "day": 1440}[match.group(2).rstrip("s")]
    return 730.0 * 60 / minutes


def sagemaker_lines(params: dict[str, Any], monthly_videos: float) -> list[Line]:
    """Endpoint cost per 1,000 by hosting option; latency: benchmarks/scoring.py (docs/model-contract.md)."""
    p, a = PRICES, ASSUMPTIONS
    batches = math.ceil(int(params["FrameCount"]) / a["frames_per_batch"])
    busy_s = batches * a["sm_batch_latency_s"]
    data = a["sm_request_bytes_per_screening"] / 1e9 * p["sm_data_gb"]
    serverless = 1000 * (busy_s * a["sm_serverless_memory_gb"] * p["sm_serverless_gb_s"] + data)
    lines = [
        Line(
            "SageMaker serverless",
            "GB-s + data",
            serverless,
            f"{batches} batches x {a['sm_batch_latency_s']} s x {a['sm_serverless_memory_gb']} GB"
            "; cold starts extra",
        )
    ]
    per_instance = 730 * 3600 / busy_s * a["sm_target_utilisation"]  # one request at a time per instance
    count = max(a["sm_realtime_instances"], math.ceil(monthly_videos / per_instance))
    for instance in ("ml.m5.large", "ml.c5.xlarge", "ml.g4dn.xlarge"):
        month = p[f"sm_{instance}_hour"] * 730 * count
        lines.append(
            Line(
                f"SageMaker real-time {instance} x{count}",
                "instance-hours",
                month / monthly_videos * 1000,
                f"${month:,.0f}/month at {monthly_videos:,.0f} videos; {per_instance:,.0f} videos/month per "
                f"instance at {a['sm_target_utilisation']:.0%} busy and the reference latency",
            )
        )
    return lines


def build(
    template_path: Path, measured: dict[str, Any], overrides: dict[str, str], monthly: float
) -> dict[str, Any]:
    template = load_template(template_path)
    params = parameters(template, overrides)
    variable = variable_lines(template, params, measured)
    fixed = fixed_monthly(template, params)
    fixed_total = sum(line.per_1000 for line in fixed)
    return {
        "prices_as_of": PRICES_AS_OF,
        "monthly_videos": monthly,
        "parameters": {
            k: params[k]
            for k in (
                "Architecture",
                "FrameCount",
                "RawVideoRetentionDays",
                "DecisionRetentionDays",
                "LogRetentionDays",
                "WorkStorageMiB",
                "EnableConfigRules",
                "EnableIncidentManager",
                "FaceEvidenceSource",
                "FaceCheckFrames",
            )
        },
        "measured_at": measured.get("measured_at"),
        "variable": [asdict(line) for line in variable],
        "variable_total_per_1000": sum(line.per_1000 for line in variable),
        "fixed_monthly": [asdict(line) for line in fixed],
        "fixed_per_1000_at_volume": fixed_total / monthly * 1000,
        "sagemaker": [asdict(line) for line in sagemaker_lines(params, monthly)],
        "assumptions": ASSUMPTIONS,
    }


GOAL_PER_1000 = 0.50  # issue 25: variable cost beside the model endpoint at 100,000 videos a month


def goal_lines(model: dict[str, Any], top: int = 4) -> list[str]:
    """The variable total against issue 25's goal, and the lines that make most of it."""
    total = model["variable_total_per_1000"]
    largest = sorted(model["variable"], key=lambda line: -line["per_1000"])[:top]
    verdict = "meets" if total <= GOAL_PER_1000 else f"misses by {total - GOAL_PER_1000:.4f}"
    return [
        f"Goal (issue 25): variable cost beside the endpoint <= {GOAL_PER_1000:.2f} per 1,000: "
        f"{total:.4f}, {verdict}. Largest lines: "
        + "; ".join(f"{line['component']} {line['per_1000']:.4f}" for line in largest),
    ]


def render(model: dict[str, Any]) -> str:
    out = [
        f"Cost per 1,000 screened videos (USD), prices as of {model['prices_as_of']}",
        f"parameters: {model['parameters']}; measured {model['measured_at']}",
        "",
        "| Component | Driver | USD per 1,000 | Basis |",
        "|---|---|---:|---|",
    ]
    for line in model["variable"]:
        out.append(f"| {line['component']} | {line['driver']} | {line['per_1000']:.4f} | {line['note']} |")
    out.append(f"| **Serverless pipeline, variable** | | **{model['variable_total_per_1000']:.4f}** | |")
    out += ["", *goal_lines(model)]
    out += [
        "",
        f"Fixed per month (amortised at {model['monthly_videos']:,.0f} videos/month: "
        f"{model['fixed_per_1000_at_volume']:.4f} per 1,000)",
        "",
        "| Component | USD per month | Basis |",
        "|---|---:|---|",
    ]
    for line in model["fixed_monthly"]:
        out.append(f"| {line['component']} | {line['per_1000']:.2f} | {line['note']} |")
    out += [
        "",
        "SageMaker endpoint by hosting option",
        "",
        "| Option | USD per 1,000 | Basis |",
        "|---|---:|---|",
    ]
    for line in model["sagemaker"]:
        out.append(f"| {line['component']} | {line['per_1000']:.2f} | {line['note']} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--measured", type=Path, default=REPO / "build" / "bench" / "pipeline.json")
    parser.add_argument("--template", type=Path, default=REPO / "template.yaml")
    parser.add_argument("--monthly-videos", type=float, default=100_000)
    parser.add_argument("--param", action="append", default=[], metavar="Name=Value")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.measured.exists():
        print(f"{args.measured} missing: run benchmarks/pipeline.py first", file=sys.stderr)
        return 2
    measured = json.loads(args.measured.read_text(encoding="utf-8"))
    overrides = dict(item.split("=", 1) for item in args.param)
    model = build(args.template, measured, overrides, args.monthly_videos)
    print(json.dumps(model, indent=2) if args.json else render(model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
