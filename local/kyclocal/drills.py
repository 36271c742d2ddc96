"""Operational drills against the embedded local stack: break one thing, check the pipeline's answer.

Each scenario starts its own ``LocalStack`` (one per process at a time), drives real uploads through
the real state machine and handlers, injects one failure the way it happens in AWS (endpoint 503s,
a crashed Lambda, a regressed model, a burst of uploads) and checks what the on-call SRE and the
runbook rely on: the recorded decisions, the execution status and the EMF metric records the
CloudWatch alarms are built on. Then it evaluates the template's own alarm definitions over the
metrics the run produced (``kyclocal.alarms``) and reports which alarm would fire, and how many
minutes after the first bad upload. The deployed-stack drill is in docs/runbook.md.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyc.domain.contract import Face, FrameImage, FrameScore, ModelInfo
from kyc.domain.drift import record_baseline
from kyc.domain.promotion import DRIFT_BASELINE_KEY
from kyclocal.alarms import (
    TEMPLATE_PATH,
    Datapoint,
    datapoints_from_emf,
    first_alarm,
    load_alarms,
    parameter_default,
)
from kyclocal.loop import pointer
from kyclocal.stack import LocalStack, LocalStackSettings
from kycserve.faults import Fault, FaultInjector

DECISION_TIMEOUT_S = 120.0
# Metrics the local stack produces: the handlers' EMF records and Step Functions' execution counts.
LOCAL_NAMESPACES = {"KycScreening", "AWS/States"}
# Alarms on what a scheduled function emits: moto does not fire schedules, so locally `kycscreen digest`
# runs it on demand and a drill has no such metric to judge (the alarm would read its absence).
# (digest, verifier, backlog measurement)
UNSCHEDULED_LOCALLY = {"DigestMissedAlarm", "VerifierMissedAlarm", "ReviewBacklogAgeAlarm"}
# Incident Manager response plans (template.yaml, EnableIncidentManager) and the playbook each follows.
PLANS = {"deepfake-wave": "runbook 2.1", "detection-outage": "runbook 2.2"}
# The drift alarm's volume guard as the model-regression drill deploys it: the default (30) would need
# 63 uploads (11 minutes on a shared 2-core machine); the guard's own arithmetic is unit-tested at 30.
DRILL_DRIFT_MIN_DECISIONS = 8


@dataclass(frozen=True)
class Check:
    """One expectation of a drill; ``detail`` says what was seen, so a FAIL is diagnosable."""

    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class AlarmFinding:
    """An alarm of template.yaml evaluated on the drill's metrics; ``fires_after_s`` None = never."""

    alarm: str
    fires_after_s: float | None
    expected: bool


@dataclass
class DrillReport:
    scenario: str
    checks: list[Check] = field(default_factory=list)
    elapsed_s: float = 0.0
    rehearses: str | None = None  # the Incident Manager response plan (<stack>-<name>) this drill rehearses
    alarms: list[AlarmFinding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def check(self, name: str, passed: bool, detail: str = "") -> None:
        self.checks.append(Check(name, bool(passed), detail))


# --------------------------------------------------------------------------------------- fakes
class Outage(FaultInjector):
    """Every request fails with the same fault: an endpoint that is down, not a blip."""

    def __init__(self, fault: Fault = Fault.SERVICE_UNAVAILABLE) -> None:
        super().__init__()
        self.fault = fault

    def next(self) -> Fault | None:
        with self._lock:
            self.requests += 1
            return self.fault


class ConstantModel:
    """A detector that sees one centred face per frame and gives it a fixed p_fake.

    Stands in for "your model" in drills: 0.97 plays a detector that catches a deepfake wave,
    0.02 plays a poisoned or regressed version that waves everything through.
    """

    def __init__(self, p_fake: float, version: str, name: str = "drill-detector") -> None:
        # its "weights" are the constant: another constant under the same version is another artefact
        self._artefact = f"drill-detector p_fake={p_fake!r}".encode()
        artefact = hashlib.sha256(self._artefact).hexdigest()
        self.info = ModelInfo(name=name, version=version, artefact_sha256=artefact)
        self.description = f"drill model, constant p_fake={p_fake}"
        self._p_fake = p_fake

    def describe(self) -> dict[str, str]:
        return self.info.to_dict() | {"description": self.description}

    def artefact(self) -> bytes:
        """The model data a deployment of this detector uploads (the deployment witness reads its hash)."""
        return self._artefact

    def predict(self, frames: Sequence[FrameImage]) -> list[FrameScore]:
        face = Face(box=(0.3, 0.2, 0.4, 0.5), confidence=0.99, p_fake=self._p_fake)
        return [FrameScore(f.frame_id, self._p_fake, (face,), ()) for f in frames]


# --------------------------------------------------------------------------------------- helpers
def make_drill_clip(directory: Path, name: str = "drill.mp4", *, person: int | None = None) -> Path:
    """A small synthetic clip (320x240, 2 s): every drill screens it, so the drills stay fast.

    ``person``: another applicant's clip (480x360, a scene of its own), which reuse detection does
    not take for the same media, for drills whose point needs distinct applicants.
    """
    from kyclocal.samples import write_clip

    if person is not None:
        return write_clip(
            directory / name, "mp4", "libx264", {}, width=480, height=360, fps=10, seconds=1.5, person=person
        )
    return write_clip(directory / name, "mp4", "libx264", {}, width=320, height=240, fps=15, seconds=2.0)


def drill_policy(model: ConstantModel, frame_count: int) -> dict[str, Any]:
    """The template's thresholds, calibrated for ``model``'s artefact and a stack sampling
    ``frame_count`` frames (role-played: the drill's customer calibrated their detector before going
    live; kyclocal.policy_file)."""
    from kyc.domain.policy import DecisionPolicy
    from kyclocal.policy_file import role_played_policy

    defaults = DecisionPolicy()
    return role_played_policy(
        model.info.to_dict(),
        pass_threshold=defaults.pass_threshold,
        reject_threshold=defaults.reject_threshold,
        frame_count=frame_count,
    )


@contextmanager
def drill_stack(
    frame_count: int = 8,
    faults: FaultInjector | None = None,
    policy: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[LocalStack]:
    """A fresh stack. moto's backends are process-global and outlive a stopped LocalStack, so a second
    stack in one process would find the first one's table: reset them before and after."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    settings = LocalStackSettings(
        frame_count=frame_count, model_faults=faults, policy=policy, extra_env=dict(env or {})
    )
    try:
        with LocalStack(settings) as stack:
            yield stack
    finally:
        moto_api_backend.reset()  # leave no resources behind for the next stack in this process


def set_model(stack: LocalStack, model: Any) -> None:
    """Swap the model behind the local endpoint, as a new endpoint config / variant would: the local
    stack plays the SageMaker control plane (model data, model, endpoint config, the endpoint's switch)."""
    stack.serve_model(model)


def emf_records(stack: LocalStack, metric: str) -> list[dict[str, Any]]:
    """EMF records of one metric as CloudWatch would ingest them from the function log groups."""
    out = []
    for record in stack.log_lines():
        directives = record.get("_aws", {}).get("CloudWatchMetrics", [])
        if any(m.get("Name") == metric for d in directives for m in d.get("Metrics", [])):
            out.append(record)
    return out


def emf_sum(stack: LocalStack, metric: str, **dimensions: str) -> float:
    """Sum of a metric over records whose dimensions match, i.e. what an alarm on them would read."""
    total = 0.0
    for record in emf_records(stack, metric):
        if all(record.get(k) == v for k, v in dimensions.items()):
            values = record.get(metric)
            total += sum(values) if isinstance(values, list) else float(values or 0)
    return total


def execution_datapoints(stack: LocalStack) -> list[Datapoint]:
    """What AWS/States publishes for the local executions: one count per start and per end status."""
    sfn = stack.client("stepfunctions")
    arn = stack.state_machine_arn
    points = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        for execution in page["executions"]:
            dims = (("StateMachineArn", arn),)
            points.append(
                Datapoint("AWS/States", "ExecutionsStarted", dims, execution["startDate"].timestamp(), 1.0)
            )
            if execution.get("stopDate") is not None:
                name = {"SUCCEEDED": "ExecutionsSucceeded", "FAILED": "ExecutionsFailed"}.get(
                    execution["status"], "Executions" + execution["status"].title().replace("_", "")
                )
                points.append(Datapoint("AWS/States", name, dims, execution["stopDate"].timestamp(), 1.0))
    return points


def run_datapoints(stack: LocalStack, since: float = 0.0, until: float = float("inf")) -> list[Datapoint]:
    """The run's metrics as CloudWatch would hold them, those stamped in [since, until) only."""
    points = datapoints_from_emf(stack.log_lines()) + execution_datapoints(stack)
    return [p for p in points if since <= p.timestamp < until]


def evaluate_alarms(
    report: DrillReport,
    stack: LocalStack,
    first_bad_upload: float,
    expected: Sequence[str],
    *,
    overrides: dict[str, str] | None = None,
    until: float = float("inf"),
) -> None:
    """Which alarms of template.yaml (parameter defaults + ``overrides``) would fire on this run's
    metrics up to ``until`` (e.g. the rollback: what paged while the fault was live), and when.

    Each expected alarm is a check; alarms that fire unexpectedly are reported too (a drill that
    pages more than the runbook says is worth knowing about).
    """
    points = run_datapoints(stack, until=until)
    last = max((p.timestamp for p in points), default=first_bad_upload)
    specs = load_alarms(
        TEMPLATE_PATH, overrides, resources={"ScreeningStateMachine": stack.state_machine_arn}
    )
    for name, spec in specs.items():
        if not spec.namespaces <= LOCAL_NAMESPACES:
            continue  # AWS/Lambda, AWS/SQS, AWS/SageMaker ...: no local source of these metrics
        if name in UNSCHEDULED_LOCALLY:
            continue  # watches a scheduled function the local stack runs only on demand
        horizon = (last - first_bad_upload) + spec.period * spec.evaluation_periods + 120
        fires = first_alarm(spec, points, since=first_bad_upload, horizon_s=horizon)
        if fires is not None or name in expected:
            report.alarms.append(AlarmFinding(name, fires, name in expected))
    for name in expected:
        fires = next((a.fires_after_s for a in report.alarms if a.alarm == name), None)
        seen = "never" if fires is None else f"{fires / 60:.1f} min after the first bad upload"
        report.check(f"{name} would fire (template alarm on the run's metrics)", fires is not None, seen)


def screen_many(
    stack: LocalStack, clip: Path | Sequence[Path], keys: Sequence[str]
) -> list[dict[str, Any] | None]:
    """Upload all keys at once (threads: a burst), then wait for each decision. ``clip``: one file
    for every key, or one file per key."""
    idents: list[dict[str, Any]] = [{} for _ in keys]
    clips = [clip] * len(keys) if isinstance(clip, Path) else list(clip)

    def put(i: int, key: str) -> None:
        idents[i] = stack.upload(clips[i], key=key)

    threads = [threading.Thread(target=put, args=(i, k)) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = []
    for ident in idents:
        item = stack.wait_for_decision(ident["submission_id"], timeout_s=DECISION_TIMEOUT_S)
        items.append(None if item is None else item | {"_ident": ident})
    return items


def execution_status(stack: LocalStack, sid: str) -> str:
    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{sid}"
    return str(stack.client("stepfunctions").describe_execution(executionArn=arn)["status"])


def all_decisions(stack: LocalStack) -> list[dict[str, Any]]:
    table = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": stack.resources.decisions_table}
    while True:
        page = table.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _decisions(items: Sequence[dict[str, Any] | None]) -> list[str]:
    return [i["decision"] if i else "NONE" for i in items]


# --------------------------------------------------------------------------------------- scenarios
def endpoint_outage(workdir: Path, frame_count: int = 8, uploads: int | None = None) -> DrillReport:
    """The endpoint answers 503 to everything: each upload ends ERROR, none PASS, both outage alarms fire.

    As many uploads as the rate alarms' volume guard, so the ERROR-rate alarm can fire as well as the
    per-batch scoring-errors alarm.
    """
    report = DrillReport("endpoint-outage", rehearses="detection-outage")
    uploads = uploads or max(2, int(parameter_default(TEMPLATE_PATH, "RateAlarmMinDecisions")))
    clip = make_drill_clip(workdir)
    outage = Outage(Fault.SERVICE_UNAVAILABLE)
    with drill_stack(frame_count, faults=outage) as stack:
        first_bad = time.time()
        items = screen_many(stack, clip, [f"uploads/outage-{i}/selfie.mp4" for i in range(uploads)])
        got = _decisions(items)
        report.check("every upload has a decision", "NONE" not in got, f"decisions={got}")
        report.check("every decision is ERROR", got == ["ERROR"] * uploads, f"decisions={got}")
        reasons = [list(i["reasons"]) if i else [] for i in items]
        report.check(
            "reason ENDPOINT_UNAVAILABLE on each",
            all("ENDPOINT_UNAVAILABLE" in r for r in reasons),
            f"reasons={reasons}",
        )
        report.check("no PASS during the outage", "PASS" not in got, f"decisions={got}")
        report.check("the endpoint was really called", outage.requests > 0, f"requests={outage.requests}")
        errors = emf_sum(stack, "Decisions", decision="ERROR", service="kyc-screening")
        report.check(
            "EMF Decisions{decision=ERROR,service} emitted (DecisionsErrorRateAlarm input)",
            errors == uploads,
            f"sum={errors:g}",
        )
        endpoint = emf_sum(
            stack, "EndpointErrors", reason_code="ENDPOINT_UNAVAILABLE", service="kyc-screening"
        )
        report.check(
            "EMF EndpointErrors{reason_code=ENDPOINT_UNAVAILABLE} emitted",
            endpoint >= uploads,
            f"sum={endpoint:g}",
        )
        evaluate_alarms(
            report, stack, first_bad, expected=["EndpointScoringErrorsAlarm", "DecisionsErrorRateAlarm"]
        )
    return report


def crash_between_stages(workdir: Path, frame_count: int = 8) -> DrillReport:
    """Extract crashes once: that upload ends ERROR (not lost, not PASS); the next one is screened."""
    report = DrillReport("crash-between-stages")
    clip = make_drill_clip(workdir)
    crashed: list[str] = []

    def crash_extract_once(name: str, event: dict[str, Any]) -> None:
        if name == "ExtractFramesFunction" and not crashed:
            crashed.append(event.get("submission", {}).get("submission_id", "?"))
            raise RuntimeError("drill: extract crashed between validate and score")

    detector = ConstantModel(0.02, "1.0.0")
    with drill_stack(frame_count, policy=drill_policy(detector, frame_count)) as stack:
        set_model(stack, detector)  # a calibrated detector: the recovery upload is decided, not REVIEWed
        stack.router.fault = crash_extract_once
        first_bad = time.time()
        [item] = screen_many(stack, clip, ["uploads/crash/selfie.mp4"])
        report.check("the fault fired once", len(crashed) == 1, f"crashed={len(crashed)}")
        report.check("the crashed upload has a decision", item is not None)
        decision = item["decision"] if item else "NONE"
        report.check("its decision is ERROR", decision == "ERROR", f"decision={decision}")
        if item:
            sid = item["submission_id"]
            status = execution_status(stack, sid)
            report.check(
                "its execution FAILED (ExecutionsFailed alarm input)", status == "FAILED", f"status={status}"
            )
            report.check(
                "reason recorded", bool(item.get("reasons")), f"reasons={list(item.get('reasons', []))}"
            )
        errors = emf_sum(stack, "Decisions", decision="ERROR", service="kyc-screening")
        report.check("EMF Decisions{decision=ERROR} emitted once", errors == 1, f"sum={errors:g}")
        stack.router.fault = None
        [after] = screen_many(stack, clip, ["uploads/after-crash/selfie.mp4"])
        after_decision = after["decision"] if after else "NONE"
        report.check(
            "the next upload is screened normally (not ERROR)",
            after_decision not in ("ERROR", "NONE"),
            f"decision={after_decision}",
        )
        report.check(
            "one decision per upload", len(all_decisions(stack)) == 2, f"items={len(all_decisions(stack))}"
        )
        evaluate_alarms(report, stack, first_bad, expected=["ScreeningExecutionsFailedAlarm"])
    return report


def attack_wave(workdir: Path, frame_count: int = 8, uploads: int | None = None) -> DrillReport:
    """A burst of deepfakes the model catches: one REJECT each, and the REJECT-rate alarm fires.

    As many uploads as the rate alarms' volume guard (RateAlarmMinDecisions): fewer could not fire it.
    """
    report = DrillReport("attack-wave", rehearses="deepfake-wave")
    uploads = uploads or max(6, int(parameter_default(TEMPLATE_PATH, "RateAlarmMinDecisions")))
    clip = make_drill_clip(workdir)
    detector = ConstantModel(0.97, "1.0.0")
    with drill_stack(frame_count, policy=drill_policy(detector, frame_count)) as stack:
        set_model(stack, detector)
        keys = [f"uploads/wave-{i:02d}/selfie.mp4" for i in range(uploads)]
        started = time.monotonic()
        first_bad = time.time()
        items = screen_many(stack, clip, keys)
        wall = time.monotonic() - started
        got = _decisions(items)
        report.check("every upload has a decision", "NONE" not in got, f"decisions={dict(Counter(got))}")
        report.check(
            "every decision is REJECT", got == ["REJECT"] * uploads, f"decisions={dict(Counter(got))}"
        )
        table = all_decisions(stack)
        report.check("exactly one decision item per upload", len(table) == uploads, f"items={len(table)}")
        executions = stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)
        count = len(executions["executions"])
        report.check("exactly one execution per upload", count == uploads, f"executions={count}")
        rejects = emf_sum(stack, "Decisions", decision="REJECT", service="kyc-screening")
        report.check("EMF Decisions{decision=REJECT} == uploads", rejects == uploads, f"sum={rejects:g}")
        total = emf_sum(stack, "Decisions")
        report.check("no decision counted twice", total == uploads, f"sum={total:g}, burst wall={wall:.1f}s")
        evaluate_alarms(report, stack, first_bad, expected=["DecisionsRejectRateAlarm"])
    return report


def model_regression(workdir: Path, frame_count: int = 8) -> DrillReport:
    """A regressed model passes what the calibrated one rejected: as a new version it is held at REVIEW
    (MODEL_NOT_CALIBRATED) and pages; shipped under the calibrated version label it is held too, since
    the calibration binds the artefact's SHA-256, not the label, and the drift alarm pages on the
    decision mix as well (as many applicants as its volume guard, deployed at
    DRILL_DRIFT_MIN_DECISIONS). Find the affected decisions, roll back, re-screen: the mix is the
    champion's again and the drift alarm, on the re-screen alone, stays quiet (the control)."""
    report = DrillReport("model-regression")
    clip = make_drill_clip(workdir)
    good, bad = ConstantModel(0.97, "1.0.0"), ConstantModel(0.02, "1.1.0-regressed")
    relabelled = ConstantModel(0.02, "1.0.0")  # the same regression, reporting the calibrated version
    volume = DRILL_DRIFT_MIN_DECISIONS
    # the pointer is read at once, not after the 300 s cache: the baseline below takes effect now
    no_cache = {"KYC_POLICY_CACHE_SECONDS": "0"}
    with drill_stack(frame_count, policy=drill_policy(good, frame_count), env=no_cache) as stack:
        set_model(stack, good)
        [before] = screen_many(stack, clip, ["uploads/reg-a/selfie.mp4"])
        report.check(
            "baseline: known deepfake is REJECT",
            bool(before) and before["decision"] == "REJECT",
            f"decision={before and before['decision']}",
        )
        # The champion's recorded mix on this traffic (the drill replays known deepfakes), written
        # into the production pointer beside its policy, as a promotion installs it (one write).
        baseline = record_baseline([(before["decision"], before.get("score"))] if before else [])
        production = pointer(stack)
        current = production.current()
        assert current is not None, "the drill stack starts with its champion's policy as the pointer"
        production.put(
            dict(current.document) | {DRIFT_BASELINE_KEY: baseline.to_document()},
            expected_version=current.version,
        )
        deployed = {"DriftMinDecisions": str(volume)}  # the alarm itself knows no baseline
        set_model(stack, bad)
        first_bad = time.time()
        during = screen_many(stack, clip, ["uploads/reg-b/selfie.mp4", "uploads/reg-c/selfie.mp4"])
        got = [(i["decision"], list(i["reasons"])) if i else ("NONE", []) for i in during]
        # The same clip again: reuse detection adds MEDIA_REUSED beside the binding's finding.
        report.check(
            "new version without recalibration: REVIEW MODEL_NOT_CALIBRATED, never PASS",
            [(d, "MODEL_NOT_CALIBRATED" in r) for d, r in got] == [("REVIEW", True)] * 2,
            f"decisions={got}",
        )
        same_input = bool(before) and all(
            i and i["source"]["sha256"] == before["source"]["sha256"] for i in during
        )
        report.check("same input sha256, different decision", same_input)
        affected = [
            i["submission_id"]["S"]
            for i in all_decisions(stack)
            if i.get("model", {}).get("M", {}).get("version", {}).get("S") == bad.info.version
        ]
        expected = sorted(i["submission_id"] for i in during if i)
        report.check(
            "affected submissions found by the recorded model version",
            sorted(affected) == expected,
            f"found={len(affected)} expected={len(expected)}",
        )
        set_model(stack, relabelled)
        # New applicants (clips reuse detection does not match): only the model decides them.
        applicants = [make_drill_clip(workdir, f"applicant-{n}.mp4", person=n) for n in range(1, volume + 1)]
        keys = [f"uploads/reg-d{n:02d}/selfie.mp4" for n in range(1, volume + 1)]
        silent = screen_many(stack, applicants, keys)
        got = _decisions(silent)
        reasons = [list(i["reasons"]) if i else [] for i in silent]
        report.check(
            "regression under the calibrated version label (other artefact): REVIEW MODEL_NOT_CALIBRATED",
            got == ["REVIEW"] * volume and all("MODEL_NOT_CALIBRATED" in r for r in reasons),
            f"decisions={dict(Counter(got))} reasons={reasons}",
        )
        differs = [
            list((i.get("calibration_binding") or {}).get("differs") or []) if i else [] for i in silent
        ]
        report.check(  # the server's report and the deployment witness (SageMaker + S3) both differ
            "the record names the artefact hash as the field that differed",
            differs == [["model.artefact_sha256", "model.witness.artefact_sha256"]] * volume,
            f"differs={differs}",
        )
        rollback = time.time()
        set_model(stack, good)  # roll back the endpoint variant
        redo = screen_many(stack, applicants, [i["_ident"]["key"] for i in silent if i])  # new versions
        got = _decisions(redo)
        report.check(
            "re-screen after rollback: REJECT", got == ["REJECT"] * volume, f"decisions={dict(Counter(got))}"
        )
        held_ids = sorted(i["submission_id"] for i in silent if i)
        new_ids = {i["submission_id"] for i in redo if i}
        report.check("re-screen is a new submission (new object version)", not new_ids & set(held_ids))
        originals = [stack.decision(sid) for sid in held_ids]
        report.check(
            "original REVIEW records stand unchanged (audit trail)",
            [o and o["decision"] for o in originals] == ["REVIEW"] * volume,
        )
        # While the regression was live: the version change and the relabelled artefact page
        # (MODEL_NOT_CALIBRATED), and the decision mix moved off the recorded baseline (DecisionsDriftAlarm).
        evaluate_alarms(
            report,
            stack,
            first_bad,
            expected=["DecisionsModelNotCalibratedAlarm", "DecisionsReviewRateAlarm", "DecisionsDriftAlarm"],
            overrides=deployed,
            until=rollback,
        )
        # Control: the champion's own decisions after the rollback, as many as the volume guard
        # asks, against the same baseline: no drift page.
        drift = load_alarms(TEMPLATE_PATH, deployed)["DecisionsDriftAlarm"]
        healthy = run_datapoints(stack, since=rollback)
        quiet = first_alarm(drift, healthy, since=rollback, horizon_s=drift.period + 120)
        report.check(
            "control: the champion's re-screen does not fire DecisionsDriftAlarm",
            quiet is None and len(redo) >= volume,
            f"decisions={len(redo)}, fires={'never' if quiet is None else f'{quiet / 60:.1f} min'}",
        )
    return report


SCENARIOS: dict[str, Callable[..., DrillReport]] = {
    "endpoint-outage": endpoint_outage,
    "model-regression": model_regression,
    "attack-wave": attack_wave,
    "crash-between-stages": crash_between_stages,
}


def run_drill(scenario: str, frame_count: int = 8, workdir: Path | None = None) -> DrillReport:
    """Run one scenario; an exception inside it is a FAIL of the drill, not a crash of the runner."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kyc-drill-") as tmp:
        directory = workdir or Path(tmp)
        try:
            report = SCENARIOS[scenario](directory, frame_count=frame_count)
        except Exception as exc:  # a drill reports, it does not raise
            report = DrillReport(scenario)
            report.check("scenario ran to completion", False, f"{type(exc).__name__}: {exc}")
    report.elapsed_s = time.monotonic() - started
    return report
