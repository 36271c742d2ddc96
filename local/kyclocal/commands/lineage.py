"""`kycscreen lineage SUBMISSION_ID`: rebuild a decision's lineage from the logs alone and verify it.

The chain comes from the functions' CloudWatch Logs records only (as an auditor would rebuild it
in AWS with Logs Insights), each stage's record only from its own function's log group; every hash
it names is then checked against the stored objects, the decision's lineage.json and its DynamoDB
record, field by field, and the record against the Step Functions execution named by the submission
id (the service's own history). Strict: any evidence missing while still within its retention
fails; only objects past the template's lifecycle expiry (counted from the execution's start, never
from the item's own fields) or removed by an erasure that erase itself logged are excused. Exit 0
when intact, 1 when anything disagrees or is missing (also: a decision no function logged), 2 when
there is neither a decision nor a lineage record.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from kyc.aws.lineage_witnesses import STAGE_FUNCTIONS, ExecutionHistory, StoredObjects
from kyc.domain.lineage import (
    LOG_GROUP_FIELD,
    EvidenceRetention,
    ExecutionWitness,
    LineageChain,
    StageRecord,
    check_lineage,
    is_failure,
    witness_from_history,
)
from kyc.domain.timestamps import parse_utc
from kyclocal.stack import LocalResources, LocalStack, LocalStackSettings
from kyclocal.state import MARKER, saved_execution, state_directory
from kyclocal.template import read_template

EXIT_INTACT, EXIT_BROKEN, EXIT_UNKNOWN = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("lineage", help="rebuild and verify a decision's lineage from the saved local state")
    cmd.add_argument("submission_id")
    cmd.add_argument("--json", action="store_true", help="the chain and the verification as one JSON object")
    cmd.add_argument(
        "--state-dir", type=Path, help="saved local state (default: $KYCSCREEN_STATE_DIR or .local-stack)"
    )
    cmd.add_argument(
        "--at",
        type=parse_utc,
        help="judge retention as at this ISO time instead of now (what a later audit would excuse)",
    )
    cmd.set_defaults(command=cmd_lineage)


def cmd_lineage(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    directory = state_directory(args.state_dir)
    if not (directory / MARKER).is_file():
        print(
            f"no saved local state in {directory}: screen something with `kycscreen run` first",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN
    with LocalStack(LocalStackSettings(state_dir=directory)) as stack:
        report = lineage_report(stack, args.submission_id, now=getattr(args, "at", None))
        recorded = report is None and stack.decision(args.submission_id) is not None
    if report is None:
        if recorded:  # a decision nobody logged: the forged-decision case, never "unknown"
            print(
                f"decision record for {args.submission_id} exists, but no function logged its lineage",
                file=sys.stderr,
            )
            return EXIT_BROKEN
        print(f"no lineage records and no decision for submission {args.submission_id}", file=sys.stderr)
        return EXIT_UNKNOWN
    failing = [p for p in report["problems"] if is_failure(p)]
    report["verified"] = not failing
    if args.json:
        print(json.dumps(report, default=str), file=out)
    else:
        print_chain(report, out)
    return EXIT_INTACT if not failing else EXIT_BROKEN


def lineage_report(
    stack: LocalStack, submission_id: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """The chain from the stack's logs, verified against its stores and the service's execution
    history (``kyc.domain.lineage.check_lineage``, as the scheduled verifier runs it); None when no
    function's own log names the submission."""
    objects = StoredObjects(stack.client("s3"))
    check = check_lineage(
        log_records(stack),
        submission_id,
        stage_groups=stage_log_groups(stack),
        decision_item=stack.decision(submission_id),
        fetch=objects.fetch,
        fetch_source=objects.fetch_version,
        audit_bucket=stack.resources.audit_bucket,
        retention=evidence_retention(stack.resources),
        witness=execution_witness(stack, submission_id),
        now=now,
    )
    if check.chain is None:
        return None
    return check.chain.to_dict() | {"problems": list(check.problems), "summary": summarise(check.chain)}


def stage_log_groups(stack: LocalStack) -> dict[str, str]:
    return {stage: stack.log_group(function) for stage, function in STAGE_FUNCTIONS.items()}


def log_records(stack: LocalStack) -> list[dict[str, Any]]:
    """Every JSON log record of every function, each tagged with the log group it was read from
    (all groups, not only the stages': a stage record in a foreign group is reported)."""
    logs = stack.client("logs")
    out: list[dict[str, Any]] = []
    for group in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]:
        name = group["logGroupName"]
        for stream in logs.describe_log_streams(logGroupName=name).get("logStreams", []):
            events = logs.get_log_events(
                logGroupName=name, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
            for event in events:
                try:
                    record = json.loads(event["message"])
                except ValueError:
                    continue
                if isinstance(record, dict):
                    out.append(record | {LOG_GROUP_FIELD: name})
    return out


def execution_witness(stack: LocalStack, submission_id: str) -> ExecutionWitness:
    """The execution Step Functions ran under the submission id's name (a restored stack's: saved)."""
    history = ExecutionHistory(stack.state_machine_arn, stack.client("stepfunctions"))
    witness = history.witness(submission_id)
    if witness.found:
        return witness
    saved = saved_execution(stack.settings.state_dir, submission_id)
    if saved is None:
        return witness
    return witness_from_history(witness.arn, saved["execution"], saved["history"])


def evidence_retention(resources: LocalResources) -> EvidenceRetention:
    """The template's lifecycle rules for the objects a lineage names, at the parameters' defaults."""
    template = read_template()
    parameters = template.get("Parameters", {})

    def days(logical_id: str, key_prefix: str) -> float:
        rules = template["Resources"][logical_id]["Properties"]["LifecycleConfiguration"]["Rules"]
        found = [
            float(parameters[r["ExpirationInDays"]["Ref"]]["Default"])
            if isinstance(r["ExpirationInDays"], dict)
            else float(r["ExpirationInDays"])
            for r in rules
            if r.get("Status") == "Enabled"
            and "ExpirationInDays" in r
            and key_prefix.startswith(r.get("Prefix", ""))
        ]
        return min(found)

    return EvidenceRetention(
        days={
            resources.intake_bucket: days("IntakeBucket", "uploads/"),
            resources.work_bucket: days("WorkBucket", "frames/"),
            resources.audit_bucket: days("AuditBucket", "decisions/"),
        },
        erasable=frozenset({resources.intake_bucket, resources.work_bucket}),
    )


def summarise(chain: LineageChain) -> dict[str, Any]:
    """The few facts a reader looks for first: input, model, policy, decision, code."""
    validate, extract, terminal = chain.first("validate"), chain.first("extract"), chain.terminal
    policy = (terminal.entry.get("policy") if terminal else None) or {}
    return {
        "input_sha256": validate.outputs.get("sha256") if validate else None,
        "manifest_sha256": extract.outputs.get("manifest_sha256") if extract else None,
        "frames": len((extract.outputs.get("frames") if extract else None) or []),
        "batches": len(chain.scores),
        "model": terminal.entry.get("model") if terminal else None,
        "policy_version": policy.get("version"),
        "decision": chain.decision,
        "reasons": terminal.outputs.get("reasons") if terminal else None,
        "lineage_sha256": terminal.outputs.get("lineage_sha256") if terminal else None,
        "execution_arn": chain.execution_arn,
        "code_versions": sorted({_code(s) for s in chain.stages}),
    }


def print_chain(report: dict[str, Any], out: TextIO) -> None:
    summary = report["summary"]
    print(f"submission  {report['submission_id']}", file=out)
    print(f"execution   {summary['execution_arn'] or '-'}", file=out)
    print(f"code        {', '.join(summary['code_versions'])}", file=out)
    print("", file=out)
    for stage in report["stages"]:
        print(_stage_line(stage), file=out)
        for name, value in _stage_facts(stage):
            print(f"    {name:<16}{value}", file=out)
    print("", file=out)
    model = summary["model"] or {}
    print(f"model       {model.get('name', '-')} {model.get('version', '')}".rstrip(), file=out)
    print(f"policy      {summary['policy_version'] or '-'}", file=out)
    reasons = ",".join(summary["reasons"] or []) or "-"
    print(f"decision    {summary['decision'] or '-'} ({reasons})", file=out)
    if report["problems"]:
        state = "OK (only expired or erased objects are gone)" if report["verified"] else "FAILED"
        print(f"\nverification {state}:", file=out)
        for problem in report["problems"]:
            print(f"  - {problem}", file=out)
    else:
        print(
            "\nverification OK: every hash matches the stored objects, lineage.json and the record", file=out
        )


def _stage_line(stage: dict[str, Any]) -> str:
    label = (
        stage["stage"] if stage.get("batch_index") is None else f"{stage['stage']}[{stage['batch_index']}]"
    )
    return f"{label:<12}{stage.get('timestamp') or '-'}  {stage.get('function_name') or '-'}"


def _stage_facts(stage: dict[str, Any]) -> list[tuple[str, str]]:
    inputs, outputs = stage.get("inputs") or {}, stage.get("outputs") or {}
    facts: list[tuple[str, Any]] = {
        "validate": [
            ("source sha256", outputs.get("sha256")),
            ("accepted", outputs.get("accepted")),
            ("reason", outputs.get("reason")),
        ],
        "extract": [
            ("read sha256", inputs.get("sha256")),
            ("manifest", outputs.get("manifest_key")),
            ("manifest sha256", outputs.get("manifest_sha256")),
            ("frames", len(outputs.get("frames") or [])),
            ("refused", outputs.get("refused")),
        ],
        "score": [
            ("frames", len(inputs.get("frames") or [])),
            ("request sha256", inputs.get("request_sha256")),
            ("response sha256", outputs.get("response_sha256")),
            ("result sha256", outputs.get("result_sha256")),
            ("status", outputs.get("status")),
            ("model", _model(stage.get("model"))),
        ],
        "decide": [
            ("manifest sha256", inputs.get("manifest_sha256")),
            ("lineage sha256", outputs.get("lineage_sha256")),
            ("decision", outputs.get("decision")),
        ],
        "reconcile": [("decision", outputs.get("decision")), ("status", outputs.get("status"))],
        "reuse": [
            ("manifest sha256", inputs.get("manifest_sha256")),
            ("matched", outputs.get("matched")),
            ("earlier", ", ".join(m["submission_id"] for m in outputs.get("matches") or [])),
        ],
    }.get(stage["stage"], [])
    return [(name, str(value)) for name, value in facts if value not in (None, "", [])]


def _model(model: Any) -> str | None:
    return f"{model.get('name')} {model.get('version')}" if isinstance(model, dict) else None


def _code(stage: StageRecord) -> str:
    code = stage.entry.get("code_version") or {}
    return f"{code.get('package', '?')}+{code.get('revision', '?')}"
