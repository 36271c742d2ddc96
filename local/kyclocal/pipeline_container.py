"""The retraining pipeline's steps inside SageMaker's jobs: the very step functions `kycscreen retrain` runs.

SageMaker starts ``python3 /opt/ml/processing/input/code/run_step.py <Step> [options]`` (processing
jobs) or the image's ``train`` command (training jobs, pipelines/image/train); run_step.py unpacks this
release's source (``make retrain-code``) and calls :func:`main`. Each step reads what the previous one
left in S3, mounted by SageMaker under fixed folders, and writes its own outputs beside them:

Process   input/labels/*.csv + input/media/   -> output/dataset/dataset.json, output/crops/crops.npz
Train     input/data/crops/crops.npz          -> model/model.onnx + model/model.json (the reference learner)
Evaluate  dataset, media, candidate model.tar.gz, champion/ -> output/evaluation/report.json
          (+ policy.json and package.json when the gate passes: what the Register step records)

The roots are environment variables so that a test runs a step on this machine exactly as SageMaker
would (``KYC_SM_PROCESSING`` for /opt/ml/processing, ``KYC_SM_TRAINING`` for /opt/ml).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from kyc.domain.dataset import rows_of
from kyclocal.commands.retrain import (
    RetrainRun,
    StepRefused,
    step_evaluate,
    step_gate,
    step_process,
    step_register,
    step_train,
)

STEPS = ("Process", "Train", "Evaluate")


def processing_root() -> Path:
    return Path(os.environ.get("KYC_SM_PROCESSING", "/opt/ml/processing"))


def training_root() -> Path:
    return Path(os.environ.get("KYC_SM_TRAINING", "/opt/ml"))


def _namespace(**values: Any) -> argparse.Namespace:
    defaults = {
        "labels": None,
        "media": None,
        "out": None,
        "champion_config": None,
        "champion_policy": None,
        "candidate_config": None,
        "frames": 8,
        "max_apcer": 0.05,
        "max_bpcer": 0.05,
        "max_review_rate": 0.5,
        "split": "0.7,0.15,0.15",
        "timeout": 1800.0,
    }
    return argparse.Namespace(**(defaults | values))


def _one_csv(folder: Path) -> Path:
    found = sorted(folder.glob("*.csv"))
    if len(found) != 1:
        raise StepRefused(
            f"{folder}: expected one labels CSV (LabelsS3Uri names one file), found {len(found)}"
        )
    return found[0]


def process(options: argparse.Namespace) -> None:
    """Process: the dataset manifest and the train split's face crops (kyc.media sampling, server crops)."""
    root = processing_root()
    out = root / "output"
    run = RetrainRun(
        args=_namespace(
            labels=_one_csv(root / "input" / "labels"),
            media=root / "input" / "media",
            out=out / "dataset",
            frames=options.frames,
            split=options.split,
        ),
        now=datetime.now(UTC),
    )
    step_process(run)  # writes output/dataset/dataset.json
    examples = run.examples or []
    crops = out / "crops"
    crops.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        crops / "crops.npz",
        sha256=np.array([sha for sha, _, _ in examples], dtype=str),
        tensors=np.stack([t for _, t, _ in examples]) if examples else np.zeros((0, 3, 32, 32), np.float32),
        labels=np.array([label for _, _, label in examples], dtype=np.int64),
        version=np.array(run.manifest["version"]),
    )
    print(f"Process: {len(examples)} face crops from the train split of {run.manifest['version']}")


def train(_options: argparse.Namespace) -> None:
    """Train: the reference learner on the Process step's crops, written where SageMaker collects it."""
    root = training_root()
    with np.load(root / "input" / "data" / "crops" / "crops.npz") as data:
        examples = list(
            zip(data["sha256"].tolist(), list(data["tensors"]), data["labels"].tolist(), strict=True)
        )
        version = str(data["version"])
    run = RetrainRun(args=_namespace(out=root / "model"), now=datetime.now(UTC))
    run.manifest = {"version": version}
    run.examples = examples
    step_train(run)  # writes candidate/model.onnx + model.json under out
    produced = root / "model" / "candidate"
    for item in produced.iterdir():  # SageMaker tars /opt/ml/model: the model at its top
        shutil.move(str(item), root / "model" / item.name)
    produced.rmdir()
    print(f"Train: {json.dumps(run.report['training'])}")


def _candidate_config(folder: Path, scratch: Path) -> Path:
    """The Train step's model.tar.gz unpacked (SageMaker's output), or a folder that already holds it."""
    if (folder / "model.json").is_file():
        return folder / "model.json"
    archive = folder / "model.tar.gz"
    if not archive.is_file():
        raise StepRefused(f"{folder}: no model.tar.gz and no model.json from the Train step")
    with tarfile.open(archive) as tar:
        tar.extractall(scratch, filter="data")  # the data filter refuses links and paths out of scratch
    return scratch / "model.json"


def evaluate(options: argparse.Namespace) -> None:
    """Evaluate: the same decision-level comparison and gate as locally; the package when it passes."""
    root = processing_root()
    inputs, out = root / "input", root / "output" / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    champion = inputs / "champion"
    champion_config = champion / "model.json"
    champion_policy = champion / "policy.json"
    with tempfile.TemporaryDirectory() as scratch:
        run = RetrainRun(
            args=_namespace(
                out=out,
                frames=options.frames,
                max_apcer=options.max_apcer,
                max_bpcer=options.max_bpcer,
                max_review_rate=options.max_review_rate,
                champion_config=champion_config if champion_config.is_file() else None,
                champion_policy=champion_policy if champion_policy.is_file() else None,
            ),
            now=datetime.now(UTC),
        )
        manifest = json.loads((inputs / "dataset" / "dataset.json").read_text(encoding="utf-8"))
        run.manifest = manifest
        run.splits = {s: rows_of(manifest, s) for s in ("train", "validation", "test")}
        run.report = {"format": "kycscreen-retrain-report-v1", "created": manifest["created"]}
        run.report["dataset"] = {
            "version": manifest["version"],
            "labelled_set_sha256": manifest["labelled_set_sha256"],
        }
        run.candidate_config = _candidate_config(inputs / "candidate", Path(scratch))
        step_evaluate(run)
        if step_gate(run):
            step_register(run)  # policy.json beside the candidate, package.json in out
            policy = run.candidate_config.parent / "policy.json"
            if policy.is_file():
                shutil.copy(policy, out / "policy.json")
    (out / "report.json").write_text(json.dumps(run.report, indent=2) + "\n", encoding="utf-8")
    print(f"Evaluate: gate passed={run.report['gate']['passed']} {run.report['gate'].get('reasons')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--split", default="0.7,0.15,0.15")
    parser.add_argument("--max-apcer", type=float, default=0.05)
    parser.add_argument("--max-bpcer", type=float, default=0.05)
    parser.add_argument("--max-review-rate", type=float, default=0.5)
    options = parser.parse_args(argv)
    try:
        {"Process": process, "Train": train, "Evaluate": evaluate}[options.step](options)
    except StepRefused as exc:
        # a non-zero exit fails the job, the pipeline run and so RetrainPipelineFailedAlarm: say why
        print(f"{options.step}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
