"""The retraining pipeline's jobs, run as SageMaker runs them: from the code bundle, in SageMaker's folders.

``make retrain-code``'s bundle (run_step.py + the source archive) is unpacked by run_step.py and runs
Process, Train and Evaluate with SageMaker's fixed input and output folders (rooted in a temporary
folder), each step reading only what the previous one wrote, as the S3 hand-offs of the pipeline
definition do. The oracles are independent of the code: which videos are in the train split comes from
the split rule applied to the labels here, the model's hash from the bytes in the archive the Train
step produced, and the keys the Register step reads from the committed pipeline definition.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_retrain_journey import SPLIT, TARGETS, champion, labelled  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "pipelines" / "retrain.pipeline.json"


def _run_step(code: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(code / "run_step.py"), *args],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env=os.environ | env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _json_get_paths(definition: dict) -> set[str]:
    """Every property-file path a step of the definition reads (the Gate's and the Register step's)."""
    found = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if "Std:JsonGet" in node:
                found.add(node["Std:JsonGet"]["Path"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition)
    return found


def _at(document: dict, path: str):
    node = document
    for part in path.split("."):
        node = node[part]
    return node


def test_process_train_evaluate_from_the_code_bundle_register_what_evaluate_measured(
    labelled: Path,  # noqa: F811
    champion: tuple[Path, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    code = tmp_path / "code"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_retrain_code.py"), "--out", str(code)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    processing, training = tmp_path / "opt-ml-processing", tmp_path / "opt-ml"
    env = {
        "KYC_SM_PROCESSING": str(processing),
        "KYC_SM_TRAINING": str(training),
        "KYC_SOURCE_DIR": str(tmp_path / "source"),
    }
    # LabelsS3Uri: the reviewed verdicts as the workbench exports them; MediaS3Uri: the retained videos
    (processing / "input" / "labels").mkdir(parents=True)
    media = processing / "input" / "media"
    media.mkdir(parents=True)
    rows = list(csv.DictReader(labelled.open(encoding="utf-8")))
    train_shas = set()
    with (processing / "input" / "labels" / "reviewed.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["sha256", "label", "attack_type", "applicant"])
        writer.writeheader()
        for row in rows:
            data = (labelled.parent / row["file"]).read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            (media / f"{sha}.mp4").write_bytes(data)
            writer.writerow({"sha256": sha} | {k: row[k] for k in ("label", "attack_type", "applicant")})
            if SPLIT.split_of(row["applicant"]) == "train":
                train_shas.add(sha)

    # Process
    _run_step(code, env, "Process", "--frames", "8", "--split", "0.5,0.25,0.25")
    dataset = json.loads((processing / "output" / "dataset" / "dataset.json").read_text(encoding="utf-8"))
    assert {r["sha256"] for r in dataset["rows"] if r["split"] == "train"} == train_shas
    with np.load(processing / "output" / "crops" / "crops.npz") as crops:
        assert crops["tensors"].shape[1:] == (3, 32, 32) and len(crops["tensors"]) >= len(train_shas)
        assert set(crops["sha256"].tolist()) <= train_shas  # the held-out splits never reach training
        assert set(crops["labels"].tolist()) == {0, 1}
        assert str(crops["version"]) == dataset["version"]

    # Train (the training job's channel: the Process step's crops output)
    channel = training / "input" / "data" / "crops"
    channel.mkdir(parents=True)
    shutil.copy(processing / "output" / "crops" / "crops.npz", channel)
    _run_step(code, env, "Train")
    model_dir = training / "model"
    config = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    assert config["name"] == "kyc-reference-learner" and config["version"] == dataset["version"]
    # SageMaker tars /opt/ml/model into model.tar.gz; the Evaluate step receives that archive
    candidate = processing / "input" / "candidate"
    candidate.mkdir(parents=True)
    with tarfile.open(candidate / "model.tar.gz", "w:gz") as tar:
        for item in model_dir.iterdir():
            tar.add(item, arcname=item.name)
    model_sha = hashlib.sha256((model_dir / config["path"]).read_bytes()).hexdigest()

    # Evaluate (the dataset output and the champion as inputs)
    shutil.copytree(processing / "output" / "dataset", processing / "input" / "dataset")
    shutil.copytree(champion[0].parent, processing / "input" / "champion")
    targets = ("--max-apcer", str(TARGETS["max_apcer"]), "--max-bpcer", str(TARGETS["max_bpcer"]))
    _run_step(code, env, "Evaluate", "--frames", "8", *targets)  # the journey's documented targets
    out = processing / "output" / "evaluation"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["gate"]["passed"] is True, report["gate"]
    # every value the Gate and the Register step read from the report exists, and is what was measured
    paths = _json_get_paths(json.loads(DEFINITION.read_text(encoding="utf-8")))
    assert {"gate.passed", "package.model_sha256", "package.labelled_set_sha256"} <= paths
    for path in paths:
        assert _at(report, path) not in (None, ""), path
    assert report["package"]["model_sha256"] == model_sha
    assert report["package"]["labelled_set_sha256"] == dataset["labelled_set_sha256"]
    policy = json.loads((out / "policy.json").read_text(encoding="utf-8"))
    assert policy["calibration"]["model"]["artefact_sha256"] == model_sha
    assert json.loads((out / "package.json").read_text(encoding="utf-8"))["status"] == "PendingManualApproval"
