"""`kycscreen retrain LABELS`: the learning loop's steps, in order, on this machine (docs/learning-loop.md).

1. dataset   labelled verdicts + retained media -> a versioned manifest with grouped, stable splits
2. process   frames sampled by the screening path's sampler, faces cropped by the model server's code
3. train     the reference learner (or nothing: ``--candidate-config`` brings a model trained elsewhere)
4. calibrate the candidate screens the validation split; thresholds proposed for the targets
5. evaluate  candidate and champion screen the same test split through the full local pipeline;
             decision-level APCER per attack type, BPCER, review rate with Wilson intervals; flips
6. gate      registered for approval only if no worse than the champion and within the targets

Nothing here changes what the local stack decides: the candidate's policy and package are files in
``--out`` until a person approves them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
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
    rt.add_argument("--max-apcer", type=float, default=0.05)
    rt.add_argument("--max-bpcer", type=float, default=0.05)
    rt.add_argument("--max-review-rate", type=float, default=0.5, help="target: scored videos sent to REVIEW")
    rt.add_argument(
        "--split", default="0.7,0.15,0.15", help="train,validation,test fractions of applicants (stable)"
    )
    rt.add_argument("--timeout", type=float, default=600.0)
    rt.add_argument("--json", action="store_true", help="print the report as JSON")
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


def cmd_retrain(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    now = datetime.now(UTC)
    try:
        text, media = labelled_media(args.labels, args.media)
        manifest = build_manifest(
            parse_labels_csv(text, source=str(args.labels)),
            media,
            rule=split_rule(args.split),
            created=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            source=str(args.labels),
        )
    except (OSError, DatasetError, LabelsFileError) as exc:
        print(f"kycscreen retrain: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    train_rows, validation_rows, test_rows = (rows_of(manifest, s) for s in ("train", "validation", "test"))
    if not validation_rows or not test_rows:
        print(
            "kycscreen retrain: the validation and test splits need videos of several applicants "
            f"(train {len(train_rows)}, validation {len(validation_rows)}, test {len(test_rows)})",
            file=sys.stderr,
        )
        return 2
    report: dict[str, Any] = {
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
    if args.candidate_config is not None:
        candidate_config = args.candidate_config
        report["training"] = {"skipped": f"measuring {candidate_config}"}
    else:
        from kycserve.learner import LearnerError, train

        try:
            result = train(crop_examples(train_rows, args.frames), version=manifest["version"])
        except LearnerError as exc:
            print(f"kycscreen retrain: {exc}", file=sys.stderr)
            return 2
        candidate_config = result.write(args.out / "candidate")
        report["training"] = {
            "learner": result.config["name"],
            "model_sha256": result.sha256,
            "examples": result.examples,
            "videos": result.videos,
            "train_auc": result.train_auc,
        }
    # 4. thresholds for the targets, chosen on the validation split (never on the test split)
    validated, _, _ = _screen(
        candidate_config,
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
    )
    thresholds = (proposal.pass_threshold, proposal.reject_threshold)
    # 5. both models on the same test split, each with its own thresholds
    candidate_decided, candidate_models, candidate_observed = _screen(
        candidate_config, test_rows, frames=args.frames, thresholds=thresholds, timeout=args.timeout
    )
    try:
        candidate_rates = _rates(test_rows, candidate_decided)
        report["candidate"] = {
            "config": str(candidate_config),
            "models": candidate_models,
            "thresholds": {"pass": thresholds[0], "reject": thresholds[1], "feasible": proposal.feasible},
            "rates": candidate_rates,
        }
        champion_rates = None
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
        print(f"kycscreen retrain: {exc}", file=sys.stderr)
        return 2
    targets = {
        "max_apcer": args.max_apcer,
        "max_bpcer": args.max_bpcer,
        "max_review_rate": args.max_review_rate,
    }
    verdict = gate(candidate_rates, champion_rates, **targets)
    report["gate"] = verdict.to_dict() | {"targets": targets}
    if verdict.passed:
        report["package"] = _register(
            args,
            manifest,
            candidate_config,
            test_rows,
            (candidate_decided, candidate_models, candidate_observed),
            thresholds,
            report,
        )
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        print_report(report, out)
    return 0 if verdict.passed else 1


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
