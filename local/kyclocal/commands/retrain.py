"""`kycscreen retrain LABELS`: the retraining pipeline's steps, in order, here (docs/learning-loop.md).

The steps and their order are read from the SageMaker pipeline definition the stack deploys
(pipelines/retrain.pipeline.json); each runs in process:

Process   labelled verdicts + retained media -> a versioned manifest with grouped, stable splits;
          frames sampled by the screening path's sampler, faces cropped by the model server's code
Train     the reference learner (or nothing: ``--candidate-config`` brings a model trained elsewhere)
Evaluate  thresholds proposed on the validation split; candidate and champion screen the same test
          split through the full local pipeline (decision-level APCER per attack type, BPCER, review
          rate with Wilson intervals; flips); the gate's verdict
Gate      the Condition step: Register-RegisterModel when the verdict passed; otherwise the run ends
          with the report and nothing else changes

Nothing here changes what the local stack decides: the candidate's policy and package are files in
``--out`` until a person approves them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kyc.domain.dataset import (
    DatasetError,
    SplitRule,
    build_manifest,
    manifest_sha256,
    parse_labels_csv,
    rows_of,
)
from kyc.domain.evaluation import EvaluationError, decision_rates, propose_thresholds
from kyc.domain.promotion import decision_flips, gate, worst_apcer
from kyclocal.commands.evaluate import (
    CalibrationRefused,
    LabelledFile,
    LabelsFileError,
    binding_observed,
    calibrated_policy,
    decided_once_bound,
    file_sha256,
    files_by_sha256,
    scored,
    scoring_models,
)
from kyclocal.commands.run import screen_files
from kyclocal.stack import LocalStack, LocalStackSettings

REPORT_FORMAT = "kycscreen-retrain-report-v1"


def register(sub: argparse._SubParsersAction) -> None:
    rt = sub.add_parser("retrain", help="train, measure and gate a candidate model on reviewed cases")
    rt.add_argument("labels", type=Path, help="CSV: file,label[,attack_type,applicant] or sha256,label[,...]")
    rt.add_argument("--media", type=Path, help="folder of retained media, matched by SHA-256 (sha256 CSVs)")
    rt.add_argument("--out", type=Path, default=Path("build/retrain"), help="dataset, candidate, report")
    rt.add_argument("--champion-config", type=Path, help="the champion's onnx model config (model.json)")
    rt.add_argument("--champion-policy", type=Path, help="the champion's policy document (its thresholds)")
    rt.add_argument("--candidate-config", type=Path, help="skip training: measure this model instead")
    rt.add_argument("--frames", type=int, default=8, help="frames per video, in training and screening")
    rt.add_argument(
        "--max-apcer",
        type=float,
        default=0.05,
        help="target for each attack type's 95%% Wilson APCER upper bound (0.05 needs >= 73 attacks/type)",
    )
    rt.add_argument("--max-bpcer", type=float, default=0.05)
    rt.add_argument("--max-review-rate", type=float, default=0.5, help="target: scored videos sent to REVIEW")
    rt.add_argument(
        "--split", default="0.7,0.15,0.15", help="train,validation,test fractions of applicants (stable)"
    )
    rt.add_argument("--timeout", type=float, default=600.0)
    rt.add_argument("--json", action="store_true", help="print the report as JSON")
    rt.add_argument(
        "--definition", type=Path, default=DEFINITION, help="pipeline definition: its steps run, in order"
    )
    rt.set_defaults(command=cmd_retrain)


def labelled_media(labels: Path, media: Path | None) -> tuple[str, dict[str, str]]:
    """The labels as a sha256 CSV, and SHA-256 -> file path of every retained video found."""
    text = labels.read_text(encoding="utf-8")
    header = next(csv.reader(io.StringIO(text)), [])
    if "file" in {c.strip().lower() for c in header}:  # evaluate's format: hash the named files
        rows = list(csv.DictReader(io.StringIO(text)))
        found: dict[str, str] = {}
        out = io.StringIO()
        fields = (
            ["sha256", *[c for c in rows[0] if c and c.strip().lower() != "file"]] if rows else ["sha256"]
        )
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            path = Path(row["file"].strip())
            path = path if path.is_absolute() else labels.parent / path
            if not path.is_file():
                raise DatasetError(f"{labels}: {row['file']} is not a file")
            sha = file_sha256(path)
            found[sha] = str(path)
            writer.writerow({k: v for k, v in row.items() if k} | {"sha256": sha})
        return out.getvalue(), found
    if media is None:
        raise DatasetError("a sha256 labels file needs --media: the folder of retained videos")
    return text, {sha: str(path) for sha, path in files_by_sha256(media).items()}


def split_rule(text: str) -> SplitRule:
    try:
        train, validation, test = (float(part) for part in text.split(","))
    except ValueError as exc:
        raise DatasetError(f"--split must be three fractions, train,validation,test: got {text!r}") from exc
    return SplitRule(train=train, validation=validation, test=test)


def crop_examples(rows: list[dict[str, Any]], frames: int) -> list[tuple[str, Any, int]]:
    """(video sha256, crop tensor, 0/1) for every face in every sampled frame of ``rows``' videos."""
    from kyc import settings
    from kyc.domain.contract import FrameImage
    from kyc.media.errors import MediaRefusedError
    from kyc.media.sampling import SamplingParams, sample_frames
    from kyc.media.validation import validate_upload
    from kycserve.learner import CropReader

    reader = CropReader()
    limits = settings.media_limits({})
    params = SamplingParams(**(settings.sampling_overrides({}) | {"frame_count": frames}))
    examples = []
    for row in rows:
        if not validate_upload(row["media_key"], limits).accepted:
            continue  # INVALID media teaches nothing; the report counts the videos that trained
        try:
            sample = sample_frames(row["media_key"], params, limits)
        except MediaRefusedError:
            continue
        label = 1 if row["label"] == "attack" else 0
        for frame in sample.frames:
            image = FrameImage(f"{frame.index}", frame.content_type, frame.data)
            examples.extend((row["sha256"], tensor, label) for tensor in reader.tensors(image))
    return examples


def _screen(
    config: Path, rows: list[dict[str, Any]], *, frames: int, thresholds: tuple[float, float], timeout: float
) -> tuple[list[dict[str, Any]], list[dict[str, str]], list[dict[str, Any]]]:
    """Screen ``rows`` through the full local pipeline with ``config``'s model and these thresholds.

    Returns each video's decision as the thresholds bound to the model decide it, the models that
    scored, and what each scores.json observed deciding it (artefact hash, sampling settings).
    """
    settings = LocalStackSettings(
        model="onnx",
        onnx_config=config,
        frame_count=frames,
        pass_threshold=thresholds[0],
        reject_threshold=thresholds[1],
    )
    with LocalStack(settings) as stack:
        recorded = screen_files(stack, [Path(r["media_key"]) for r in rows], timeout=timeout)
        bound = [decided_once_bound(stack, row) for row in recorded]
        return bound, scoring_models(stack, bound), binding_observed(stack, bound)


def _rates(rows: list[dict[str, Any]], decided: list[dict[str, Any]]) -> dict[str, Any]:
    return decision_rates(
        [d.get("decision") for d in decided], [r["label"] for r in rows], [r["attack_type"] for r in rows]
    ).to_dict()


def _thresholds_of(policy: Path | None) -> tuple[float, float]:
    if policy is None:
        from kyc.domain.policy import DecisionPolicy

        defaults = DecisionPolicy()
        return defaults.pass_threshold, defaults.reject_threshold
    document = json.loads(policy.read_text(encoding="utf-8"))
    return float(document["pass_threshold"]), float(document["reject_threshold"])


# The pipeline definition (pipelines/retrain.pipeline.json, built by scripts/build_pipeline.py with the
# SageMaker SDK and embedded in template.yaml) names the steps and their order; this table says which
# in-process function runs each. A step the table does not know is refused, never skipped.
DEFINITION = Path(__file__).resolve().parents[3] / "pipelines" / "retrain.pipeline.json"


class StepRefused(Exception):
    """A step cannot go on with this input: exit 2 with the message."""


@dataclass
class RetrainRun:
    """What the steps hand each other (in AWS: the S3 outputs of one step, the inputs of the next)."""

    args: argparse.Namespace
    now: datetime
    manifest: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    examples: list[tuple[str, Any, int]] | None = None
    candidate_config: Path | None = None
    thresholds: tuple[float, float] = (0.0, 1.0)
    screened: tuple[list[dict[str, Any]], list[dict[str, str]], list[dict[str, Any]]] | None = None
    report: dict[str, Any] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)


def load_definition(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StepRefused(f"cannot read the pipeline definition {path}: {exc}") from exc


_STEP_REFERENCE = re.compile(r"Steps\.([A-Za-z0-9_-]+)")


def _needs(step: dict[str, Any]) -> set[str]:
    """The steps whose properties or property files ``step`` reads, and those it names in DependsOn."""
    body = {k: v for k, v in step.get("Arguments", {}).items() if k not in ("IfSteps", "ElseSteps")}
    found = set(_STEP_REFERENCE.findall(json.dumps([body, step.get("PropertyFiles", [])])))
    return found | set(step.get("DependsOn", []))


def ordered(steps: list[dict[str, Any]], done: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """``steps`` in the order SageMaker runs them: each after every step it reads (listed order breaks ties).

    SageMaker orders a pipeline by its data dependencies, not by the list: so does this.
    """
    pending, out, ready = list(steps), [], set(done)
    while pending:
        runnable = next((st for st in pending if _needs(st) - {st["Name"]} <= ready), None)
        if runnable is None:
            names = ", ".join(st["Name"] for st in pending)
            raise StepRefused(f"the pipeline definition's steps {names} wait on steps that never run")
        pending.remove(runnable)
        out.append(runnable)
        ready.add(runnable["Name"])
    return out


def flattened(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step, a Condition's IfSteps then ElseSteps right after it."""
    out = []
    for step in steps:
        out.append(step)
        for branch in ("IfSteps", "ElseSteps"):
            out.extend(flattened(step.get("Arguments", {}).get(branch, [])))
    return out


def pipeline_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The definition's top-level steps in run order, after checking that every one runs here.

    The local run and the definition must be the same pipeline: a step the definition has and this
    command cannot run, a step this command runs that the definition lacks, or a step of another type
    (a Processing step turned into a Lambda step, say) is refused before anything runs.
    """
    steps = definition.get("Steps")
    if not isinstance(steps, list) or not steps:
        raise StepRefused("the pipeline definition has no Steps")
    every = flattened(steps)
    found = {st.get("Name"): st.get("Type") for st in every}
    unknown = [name for name in found if name not in LOCAL_STEPS]
    missing = [name for name in LOCAL_STEPS if name not in found]
    mistyped = [
        f"{n} is {t}, not {LOCAL_STEPS[n][0]}"
        for n, t in found.items()
        if n in LOCAL_STEPS and t != LOCAL_STEPS[n][0]
    ]
    if unknown or missing or mistyped or len(found) != len(every):
        problems = [
            *(f"{n} has no local implementation" for n in unknown),
            *(f"{n} is not in the definition" for n in missing),
            *mistyped,
            *(["a step name appears twice"] if len(found) != len(every) else []),
        ]
        raise StepRefused("the pipeline definition and kycscreen retrain differ: " + "; ".join(problems))
    return ordered(steps)


def run_steps(run: RetrainRun, steps: list[dict[str, Any]]) -> None:
    for step in steps:
        run.ran.append(step["Name"])
        outcome = LOCAL_STEPS[step["Name"]][1](run)
        if step["Type"] == "Condition":
            branch = step["Arguments"].get("IfSteps" if outcome else "ElseSteps", [])
            run_steps(run, ordered(branch, frozenset(run.ran)))


def step_process(run: RetrainRun) -> None:
    """Process: the dataset manifest (grouped, stable splits) and the train split's face crops."""
    args = run.args
    try:
        text, media = labelled_media(args.labels, args.media)
        run.manifest = build_manifest(
            parse_labels_csv(text, source=str(args.labels)),
            media,
            rule=split_rule(args.split),
            created=run.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            source=str(args.labels),
        )
    except (OSError, DatasetError, LabelsFileError) as exc:
        raise StepRefused(str(exc)) from exc
    manifest = run.manifest
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    run.splits = {s: rows_of(manifest, s) for s in ("train", "validation", "test")}
    if not run.splits["validation"] or not run.splits["test"]:
        raise StepRefused(
            "the validation and test splits need videos of several applicants "
            + "(train {train}, validation {validation}, test {test})".format(
                **{k: len(v) for k, v in run.splits.items()}
            )
        )
    run.report.update(
        {
            "format": REPORT_FORMAT,
            "created": manifest["created"],
            "dataset": {
                "version": manifest["version"],
                "labelled_set_sha256": manifest["labelled_set_sha256"],
                "manifest_sha256": manifest_sha256(manifest),
                "counts": manifest["counts"],
                "excluded": {k: v for k, v in manifest["excluded"].items() if k != "missing_media_sha256"},
            },
        }
    )
    if args.candidate_config is None:
        run.examples = crop_examples(run.splits["train"], args.frames)


def step_train(run: RetrainRun) -> None:
    """Train: the reference learner on the train split's crops (or a model trained elsewhere)."""
    args = run.args
    if args.candidate_config is not None:
        run.candidate_config = args.candidate_config
        run.report["training"] = {"skipped": f"measuring {args.candidate_config}"}
        return
    from kycserve.learner import LearnerError, train

    try:
        result = train(run.examples or [], version=run.manifest["version"])
    except LearnerError as exc:
        raise StepRefused(str(exc)) from exc
    run.candidate_config = result.write(args.out / "candidate")
    run.report["training"] = {
        "learner": result.config["name"],
        "model_sha256": result.sha256,
        "examples": result.examples,
        "videos": result.videos,
        "train_auc": result.train_auc,
    }


def step_evaluate(run: RetrainRun) -> None:
    """Evaluate: thresholds on the validation split; candidate and champion on the same test split; gate."""
    args, report = run.args, run.report
    assert run.candidate_config is not None  # the definition runs Train first
    validation_rows, test_rows = run.splits["validation"], run.splits["test"]
    validated, _, _ = _screen(
        run.candidate_config,
        validation_rows,
        frames=args.frames,
        thresholds=_thresholds_of(None),
        timeout=args.timeout,
    )
    proposal = propose_thresholds(
        [scored(d) for d in validated],
        [r["label"] for r in validation_rows],
        [r["attack_type"] for r in validation_rows],
        max_apcer=args.max_apcer,
        max_bpcer=args.max_bpcer,
        max_review_rate=args.max_review_rate,
        apcer_on_bound=True,  # the gate holds the test split's APCER upper bound to the target
    )
    run.thresholds = (proposal.pass_threshold, proposal.reject_threshold)
    run.screened = _screen(
        run.candidate_config, test_rows, frames=args.frames, thresholds=run.thresholds, timeout=args.timeout
    )
    candidate_decided, candidate_models, _ = run.screened
    try:
        candidate_rates = _rates(test_rows, candidate_decided)
        report["candidate"] = {
            "config": str(run.candidate_config),
            "models": candidate_models,
            "thresholds": {
                "pass": run.thresholds[0],
                "reject": run.thresholds[1],
                "feasible": proposal.feasible,
            },
            "rates": candidate_rates,
        }
        champion_rates, champion_decided = None, None
        if args.champion_config is not None:
            champion_decided, champion_models, _ = _screen(
                args.champion_config,
                test_rows,
                frames=args.frames,
                thresholds=_thresholds_of(args.champion_policy),
                timeout=args.timeout,
            )
            champion_rates = _rates(test_rows, champion_decided)
            report["champion"] = {
                "config": str(args.champion_config),
                "models": champion_models,
                "rates": champion_rates,
            }
            report["flips"] = decision_flips(
                [d.get("decision") for d in champion_decided], [d.get("decision") for d in candidate_decided]
            )
    except EvaluationError as exc:
        raise StepRefused(str(exc)) from exc
    report["test_videos"] = test_outcomes(test_rows, candidate_decided, champion_decided)
    targets = {
        "max_apcer": args.max_apcer,
        "max_bpcer": args.max_bpcer,
        "max_review_rate": args.max_review_rate,
    }
    report["gate"] = gate(candidate_rates, champion_rates, **targets).to_dict() | {"targets": targets}


def _outcome(decided: dict[str, Any]) -> dict[str, Any]:
    return {"decision": decided.get("decision"), "reasons": list(decided.get("reasons") or [])}


def test_outcomes(
    rows: list[dict[str, Any]],
    candidate: list[dict[str, Any]],
    champion: list[dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Each test video's decision and reason codes under the candidate (and the champion), by SHA-256.

    The rates say how many; a reviewer of the gate also needs which videos and why: a champion
    REVIEW for a finding that is not about the model (too few frames, a reused recording) is not
    the model's error, and a flip is only worth approving if its reasons are the model's.
    """
    outcomes = []
    for at, row in enumerate(rows):
        entry = {
            "sha256": row["sha256"],
            "label": row["label"],
            "attack_type": row.get("attack_type") or "",
            "candidate": _outcome(candidate[at]),
        }
        if champion is not None:
            entry["champion"] = _outcome(champion[at])
        outcomes.append(entry)
    return outcomes


def step_gate(run: RetrainRun) -> bool:
    """Gate (the Condition step): the Evaluate step's verdict picks the branch."""
    return bool(run.report["gate"]["passed"])


def step_register(run: RetrainRun) -> None:
    """Register: the policy bound to the candidate's bytes and its package, PendingManualApproval."""
    assert run.candidate_config is not None and run.screened is not None
    run.report["package"] = _register(
        run.args,
        run.manifest,
        run.candidate_config,
        run.splits["test"],
        run.screened,
        run.thresholds,
        run.report,
    )


# step name -> (its type in the definition, what runs it here)
LOCAL_STEPS: dict[str, tuple[str, Callable[[RetrainRun], Any]]] = {
    "Process": ("Processing", step_process),
    "Train": ("Training", step_train),
    "Evaluate": ("Processing", step_evaluate),
    "Gate": ("Condition", step_gate),
    "Register-RegisterModel": ("RegisterModel", step_register),
}


def cmd_retrain(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    run = RetrainRun(args=args, now=datetime.now(UTC))
    try:
        steps = pipeline_steps(load_definition(args.definition))
        run_steps(run, steps)
    except StepRefused as exc:
        print(f"kycscreen retrain: {exc}", file=sys.stderr)
        return 2
    report = run.report
    report["pipeline"] = {"definition": str(args.definition), "steps_run": run.ran}
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        print_report(report, out)
    return 0 if report["gate"]["passed"] else 1


def _register(
    args: argparse.Namespace,
    manifest: dict[str, Any],
    config: Path,
    rows: list[dict[str, Any]],
    screened: tuple[list[dict[str, Any]], list[dict[str, str]], list[dict[str, Any]]],
    thresholds: tuple[float, float],
    report: dict[str, Any],
) -> dict[str, Any] | None:
    """The candidate's policy (bound to it, measured on the test split) and its package for approval."""
    decided, models, observed = screened
    labelled = [LabelledFile(Path(r["media_key"]), r["label"], r["attack_type"]) for r in rows]
    try:
        policy = calibrated_policy(
            labelled,
            decided,
            models,
            pass_threshold=thresholds[0],
            reject_threshold=thresholds[1],
            origin=f"kycscreen retrain: validation split of {manifest['version']}",
            observed=observed,
        )
    except (CalibrationRefused, EvaluationError, ValueError) as exc:
        report["gate"]["passed"] = False
        report["gate"]["reasons"].append(f"no policy could be calibrated: {exc}")
        return None
    policy_path = config.parent / "policy.json"
    policy_path.write_text(json.dumps(policy, indent=2) + "\n", encoding="utf-8")
    model_file = config.parent / json.loads(config.read_text(encoding="utf-8"))["path"]
    if policy["calibration"]["model"]["artefact_sha256"] != file_sha256(model_file):
        # the server scored other bytes than the file we would register: never package the pair
        report["gate"]["passed"] = False
        report["gate"]["reasons"].append("the measured model's artefact hash is not the candidate file's")
        return None
    package = {
        "status": "PendingManualApproval",
        "model": models[0] if models else None,
        "model_sha256": file_sha256(model_file),
        "policy_bound_to_sha256": policy["calibration"]["model"]["artefact_sha256"],
        "contract_version": policy["calibration"]["model"]["contract_version"],
        "dataset_version": manifest["version"],
        "labelled_set_sha256": manifest["labelled_set_sha256"],
        "policy": str(policy_path),
        "policy_version": policy["version"],
    }
    (args.out / "package.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
    return package


def _rate(rate: dict[str, Any]) -> str:
    if rate["value"] is None:
        return "n/a"
    low, high = rate["ci95"]
    return f"{rate['value']:.3f} ({rate['errors']}/{rate['total']}, CI {low:.3f}-{high:.3f})"


def print_report(report: dict[str, Any], out: TextIO) -> None:
    dataset = report["dataset"]
    print(f"dataset {dataset['version']}  labelled set {dataset['labelled_set_sha256'][:16]}…", file=out)
    for split, counts in dataset["counts"].items():
        print(f"  {split:<10} genuine {counts['genuine']:>4}  attack {counts['attack']:>4}", file=out)
    training = report["training"]
    if "learner" in training:
        print(
            f"trained {training['learner']} on {training['videos']} videos "
            f"({training['examples']} face crops), model sha256 {training['model_sha256'][:16]}…",
            file=out,
        )
    columns = [("candidate", report["candidate"]["rates"])]
    if "champion" in report:
        columns.insert(0, ("champion", report["champion"]["rates"]))
    print(f"\n{'test split':<22}" + "".join(f"{name:>36}" for name, _ in columns), file=out)
    kinds = sorted({k for _, r in columns for k in r["apcer_by_type"]})
    for kind in kinds:
        cells = "".join(f"{_rate(r['apcer_by_type'].get(kind, {'value': None})):>36}" for _, r in columns)
        print(f"{'APCER[' + kind + ']':<22}{cells}", file=out)
    for name, key in (("BPCER", "bpcer"), ("review rate", "review_rate")):
        print(f"{name:<22}" + "".join(f"{_rate(r[key]):>36}" for _, r in columns), file=out)
    worst = worst_apcer(report["candidate"]["rates"])
    if worst is not None:
        print(f"worst attack type (candidate): {worst['attack_type']}", file=out)
    target = report["gate"].get("targets", {}).get("max_apcer")
    for kind, bound in report["gate"].get("apcer_bounds", {}).items():
        needed = bound["attacks_needed_at_zero_errors"]
        more = "never (zero target)" if needed < 0 else f"{needed} more attack(s) needed at zero errors"
        print(
            f"APCER[{kind}] upper bound {bound['upper']:.4f} vs target {target:g}: "
            + ("meets it" if bound["meets_target"] else f"above it; {more}"),
            file=out,
        )
    if report.get("flips"):
        print(
            "flips champion -> candidate: " + ", ".join(f"{k} {v}" for k, v in report["flips"].items()),
            file=out,
        )
    gate_result = report["gate"]
    if gate_result["passed"]:
        package = report.get("package") or {}
        print(
            f"\ngate: PASSED - registered for approval ({package.get('status')}), "
            f"policy {package.get('policy')}",
            file=out,
        )
    else:
        print("\ngate: NOT REGISTERED - " + "; ".join(gate_result["reasons"]), file=out)
    print("The reference learner is not a production deepfake detector (docs/learning-loop.md).", file=out)
