"""The retraining pipeline's one definition: the SDK builds it, the template deploys it, retrain runs it.

- pipelines/retrain.pipeline.json is what the SageMaker Python SDK builds (scripts/build_pipeline.py in
  .venv-sagemaker), so the JSON is the SDK's own output, not a hand-written imitation;
- every job and registration step is a valid request of the SageMaker API (botocore's service model);
- template.yaml's RetrainPipeline carries exactly that JSON, and every ``${...}`` in it is filled;
- ``kycscreen retrain`` runs the definition's steps in the order SageMaker would (their data
  dependencies, read here from the JSON independently of the code) and refuses a definition it cannot
  run in full, before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from kyclocal.cli import main
from kyclocal.commands.retrain import DEFINITION, StepRefused, pipeline_steps

ROOT = Path(__file__).resolve().parents[3]
SAGEMAKER_PYTHON = ROOT / ".venv-sagemaker" / "bin" / "python"
PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::StackName"}


def _definition() -> dict[str, Any]:
    return json.loads(DEFINITION.read_text(encoding="utf-8"))


def _references(step: dict[str, Any]) -> set[str]:
    """Steps named in ``step``'s own arguments and property files (not its branches): a plain regex."""
    own = {k: v for k, v in step.get("Arguments", {}).items() if k not in ("IfSteps", "ElseSteps")}
    return set(re.findall(r'"Steps\.([^".\[]+)', json.dumps([own, step.get("PropertyFiles", [])])))


def test_the_committed_definition_is_what_the_sagemaker_sdk_builds() -> None:
    if not SAGEMAKER_PYTHON.exists():
        message = ".venv-sagemaker is absent: `make sagemaker` installs the SageMaker SDK"
        if os.environ.get("CI"):
            pytest.fail(message)  # make test installs it: missing there is a failure
        pytest.skip(message)
    proc = subprocess.run(
        [str(SAGEMAKER_PYTHON), str(ROOT / "scripts" / "build_pipeline.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


def test_the_template_deploys_exactly_the_committed_definition() -> None:
    tpl, matches = decode(str(ROOT / "template.yaml"))
    assert not matches
    pipeline = tpl["Resources"]["RetrainPipeline"]
    assert pipeline["Condition"] == "IsRetrainPipelineEnabled"
    body, variables = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert json.loads(body) == _definition()
    # every ${...} CloudFormation must fill is a pseudo parameter, a parameter, a resource or a variable
    names = set(re.findall(r"\$\{([^}!]+)\}", body))
    unresolved = names - PSEUDO - set(tpl["Parameters"]) - set(tpl["Resources"]) - set(variables)
    assert not unresolved, unresolved
    # the package group the Register step names is the group the stack creates and outputs
    group = tpl["Resources"]["ModelPackageGroup"]["Properties"]["ModelPackageGroupName"]
    assert variables["ModelPackageGroupName"] == group == tpl["Outputs"]["ModelPackageGroupName"]["Value"]
    register = next(s for s in _definition()["Steps"] if s["Type"] == "Condition")["Arguments"]["IfSteps"][0]
    assert register["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"
    assert register["Arguments"]["ModelPackageGroupName"] == "${ModelPackageGroupName}"


def test_every_job_and_output_is_under_the_stack_key() -> None:
    text = json.dumps(_definition())
    jobs = [s for s in _definition()["Steps"] if s["Type"] in ("Processing", "Training")]
    assert len(jobs) == 3
    for step in jobs:
        args = step["Arguments"]
        resources = args.get("ProcessingResources") or args
        cluster = resources.get("ClusterConfig") or resources["ResourceConfig"]
        assert cluster["VolumeKmsKeyId"] == "${ScreeningKeyArn}", step["Name"]
        output = args.get("ProcessingOutputConfig") or args["OutputDataConfig"]
        assert output["KmsKeyId"] == "${ScreeningKeyArn}", step["Name"]
    # every S3 location is the stack's learning bucket or a run parameter
    for uri in re.findall(r'"s3://([^"/]+)', text):
        assert uri == "${LearningBucket}", uri


def test_local_steps_run_in_the_definitions_dependency_order() -> None:
    order = [s["Name"] for s in pipeline_steps(_definition())]
    assert order[:3] == ["Process", "Train", "Evaluate"] and order[-1] == "Gate"
    for i, step in enumerate(pipeline_steps(_definition())):
        assert _references(step) <= set(order[:i]), f"{step['Name']} runs before a step it reads"
    # SageMaker orders by data dependencies, not by the list: a shuffled listing runs the same way
    rng = random.Random(5)
    for _ in range(10):
        shuffled = _definition()
        rng.shuffle(shuffled["Steps"])
        assert [s["Name"] for s in pipeline_steps(shuffled)] == order


def _edited(tmp_path: Path, edit) -> Path:
    definition = _definition()
    edit(definition)
    path = tmp_path / "edited.pipeline.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    return path


def _labelled(tmp_path: Path) -> tuple[Path, Path]:
    media = tmp_path / "media"
    media.mkdir()
    (media / "clip.mp4").write_bytes(b"a retained video")
    sha = hashlib.sha256(b"a retained video").hexdigest()
    labels = tmp_path / "labels.csv"
    labels.write_text(f"sha256,label,attack_type\n{sha},attack,face_swap\n", encoding="utf-8")
    return labels, media


def _retrain(labels: Path, media: Path, out: Path, definition: Path | None = None) -> int:
    extra = [] if definition is None else ["--definition", str(definition)]
    return main(["retrain", str(labels), "--media", str(media), "--out", str(out), *extra])


def test_the_committed_definition_starts_the_local_run(tmp_path: Path, capsys) -> None:
    """The control: with the committed definition the Process step runs (and stops on one applicant)."""
    labels, media = _labelled(tmp_path)
    assert _retrain(labels, media, tmp_path / "out") == 2
    assert "validation and test splits" in capsys.readouterr().err
    assert (tmp_path / "out" / "dataset.json").is_file()


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            lambda d: d["Steps"].insert(2, {"Name": "QualityCheck", "Type": "Processing", "Arguments": {}}),
            "QualityCheck has no local implementation",
        ),
        (
            lambda d: d["Steps"].pop(2),  # Evaluate: the gate would read a report nobody wrote
            "Evaluate is not in the definition",
        ),
        (lambda d: d["Steps"][1].update(Type="Lambda"), "Train is Lambda, not Training"),
        (
            lambda d: d["Steps"][0].update(DependsOn=["Gate"]),  # a cycle: Process waits on the gate
            "wait on steps that never run",
        ),
    ],
    ids=["unknown-step", "missing-step", "retyped-step", "cycle"],
)
def test_a_definition_the_local_run_cannot_follow_is_refused_before_anything_runs(
    tmp_path: Path, capsys, edit, said: str
) -> None:
    labels, media = _labelled(tmp_path)
    assert _retrain(labels, media, tmp_path / "out", _edited(tmp_path, edit)) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_an_unreadable_definition_is_refused(tmp_path: Path, capsys) -> None:
    labels, media = _labelled(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    assert _retrain(labels, media, tmp_path / "out", broken) == 2
    assert "cannot read the pipeline definition" in capsys.readouterr().err
    with pytest.raises(StepRefused, match="no Steps"):
        pipeline_steps({"Version": "2020-12-01"})


# The request each step type makes: SageMaker Pipelines passes a step's Arguments to this API call (the
# job name it adds itself). botocore's model of the API is the schema the SDK's output must meet.
STEP_API = {
    "Processing": ("CreateProcessingJob", {"ProcessingJobName": "pipelines-x-Process"}),
    "Training": ("CreateTrainingJob", {"TrainingJobName": "pipelines-x-Train"}),
    "RegisterModel": ("CreateModelPackage", {}),
}


def _concrete(node: Any) -> Any:
    """Pipeline expressions (a parameter, a step property, a join, a property file) as the strings
    they evaluate to at run time; everything else as written."""
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)) in ("Get", "Std:Join", "Std:JsonGet"):
            return "s3://bucket/evaluated"
        return {k: _concrete(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_concrete(v) for v in node]
    return node


def test_every_step_is_a_valid_request_of_the_sagemaker_api() -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("sagemaker")
    definition = _definition()
    assert definition["Version"] == "2020-12-01"
    steps = list(pipeline_steps(definition))
    steps += [b for s in steps for b in s.get("Arguments", {}).get("IfSteps", [])]
    checked = 0
    for step in steps:
        if step["Type"] not in STEP_API:
            continue
        operation, added = STEP_API[step["Type"]]
        request = _concrete(step["Arguments"]) | added
        report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
        assert not report.has_errors(), f"{step['Name']}: {report.generate_report()}"
        checked += 1
    assert checked == 4  # Process, Train, Evaluate, Register
