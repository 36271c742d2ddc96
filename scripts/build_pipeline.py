"""Build the retraining pipeline's definition with the SageMaker Python SDK (docs/learning-loop.md).

    .venv-sagemaker/bin/python scripts/build_pipeline.py            # write pipelines/retrain.pipeline.json
    .venv-sagemaker/bin/python scripts/build_pipeline.py --check    # exit 1 if the committed file differs

Runs in ``.venv-sagemaker`` (``make sagemaker``), never in the app's venv: the SDK pins many packages.
The definition is written once here and used twice:

* ``template.yaml`` embeds it as the ``RetrainPipeline``'s ``PipelineDefinitionBody`` through
  ``Fn::Sub``: the ``${...}`` names below are the stack's own resources (roles, bucket, key, images,
  model package group), filled in by CloudFormation;
* ``kycscreen retrain`` reads its step names and order and runs each step in process
  (``kyclocal.pipeline_steps``), so the local run and the AWS run cannot drift apart.

No AWS call is made: the session is given a region and a bucket, and nothing is uploaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

REPO = Path(__file__).resolve().parents[1]
DEFINITION = REPO / "pipelines" / "retrain.pipeline.json"
PIPELINE_NAME = "kyc-retrain"

# Stack values CloudFormation substitutes (Fn::Sub variables in template.yaml's RetrainPipeline).
PROCESSING_IMAGE = "${RetrainProcessingImageUri}"
TRAINING_IMAGE = "${TrainingImage}"
JOB_ROLE = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RetrainJobRole}"
BUCKET = "${LearningBucket}"
KEY = "${ScreeningKeyArn}"
GROUP = "${ModelPackageGroupName}"
CODE = "s3://${LearningBucket}/code"  # run_step.py + kyc-retrain-src.tar.gz (make retrain-code)

# Where a processing container finds its inputs and leaves its outputs.
IN = "/opt/ml/processing/input"
OUT = "/opt/ml/processing/output"


def build() -> dict[str, Any]:
    import boto3
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.step_collections import RegisterModel
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep

    session = PipelineSession(
        boto_session=boto3.Session(region_name="eu-west-1"),  # no call is made: nothing to sign
        default_bucket=BUCKET,
    )
    labels = ParameterString("LabelsS3Uri")  # reviewed verdicts: sha256,label[,attack_type,applicant]
    media = ParameterString("MediaS3Uri")  # the retained media the verdicts name
    champion = ParameterString("ChampionS3Uri")  # the champion's model.json, model file and policy.json
    frames = ParameterInteger("FrameCount", default_value=8)
    max_apcer = ParameterFloat("MaxApcer", default_value=0.05)
    max_bpcer = ParameterFloat("MaxBpcer", default_value=0.05)
    max_review = ParameterFloat("MaxReviewRate", default_value=0.5)
    processing_type = ParameterString("ProcessingInstanceType", default_value="ml.m5.xlarge")
    training_type = ParameterString("TrainingInstanceType", default_value="ml.m5.xlarge")

    def run_uri(prefix: str, name: str) -> Join:
        """s3://<learning bucket>/<prefix>/<execution id>/<name>: one folder per run, under the stack key.

        runs/ (datasets, face crops: personal data) expires after RetrainDataRetentionDays; reports/
        (rates, the calibrated policy a package names) lives as long as the models.
        """
        return Join(
            on="/", values=[f"s3://{BUCKET}/{prefix}", ExecutionVariables.PIPELINE_EXECUTION_ID, name]
        )

    def processor(step: str) -> Processor:
        return Processor(
            role=JOB_ROLE,
            image_uri=PROCESSING_IMAGE,
            instance_count=1,
            instance_type=processing_type,
            entrypoint=["python3", f"{IN}/code/run_step.py", step],
            volume_kms_key=KEY,
            output_kms_key=KEY,
            max_runtime_in_seconds=3 * 3600,
            sagemaker_session=session,
        )

    code = ProcessingInput(source=CODE, destination=f"{IN}/code", input_name="code")
    process = ProcessingStep(
        name="Process",
        description="dataset manifest (grouped stable splits) + frames and face crops by kyc.media",
        processor=processor("Process"),
        inputs=[
            code,
            ProcessingInput(source=labels, destination=f"{IN}/labels", input_name="labels"),
            ProcessingInput(source=media, destination=f"{IN}/media", input_name="media"),
        ],
        outputs=[
            ProcessingOutput(
                output_name="dataset", source=f"{OUT}/dataset", destination=run_uri("runs", "dataset")
            ),
            ProcessingOutput(
                output_name="crops", source=f"{OUT}/crops", destination=run_uri("runs", "crops")
            ),
        ],
        job_arguments=["--frames", frames.to_string()],
    )
    estimator = Estimator(
        image_uri=TRAINING_IMAGE,
        role=JOB_ROLE,
        instance_count=1,
        instance_type=training_type,
        volume_kms_key=KEY,
        output_kms_key=KEY,
        output_path=f"s3://{BUCKET}/models",
        max_run=3 * 3600,
        enable_network_isolation=True,
        sagemaker_session=session,
        disable_profiler=True,
        debugger_hook_config=False,
    )
    train = TrainingStep(
        name="Train",
        description="the training image (bring your own; default: the reference learner) on the train split",
        estimator=estimator,
        inputs={
            "crops": TrainingInput(
                s3_data=process.properties.ProcessingOutputConfig.Outputs["crops"].S3Output.S3Uri
            ),
            # the reference learner's code (the default image's `train` runs run_step.py Train from it);
            # a bring-your-own image may ignore it
            "code": TrainingInput(s3_data=CODE),
        },
    )
    evaluation = PropertyFile(name="EvaluationReport", output_name="evaluation", path="report.json")
    evaluate = ProcessingStep(
        name="Evaluate",
        description="thresholds on validation; candidate and champion decided on the same test split",
        processor=processor("Evaluate"),
        inputs=[
            code,
            ProcessingInput(
                source=process.properties.ProcessingOutputConfig.Outputs["dataset"].S3Output.S3Uri,
                destination=f"{IN}/dataset",
                input_name="dataset",
            ),
            ProcessingInput(source=media, destination=f"{IN}/media", input_name="media"),
            ProcessingInput(
                source=train.properties.ModelArtifacts.S3ModelArtifacts,
                destination=f"{IN}/candidate",
                input_name="candidate",
            ),
            ProcessingInput(source=champion, destination=f"{IN}/champion", input_name="champion"),
        ],
        outputs=[
            ProcessingOutput(
                output_name="evaluation",
                source=f"{OUT}/evaluation",
                destination=run_uri("reports", "evaluation"),
            )
        ],
        job_arguments=[
            "--frames",
            frames.to_string(),
            "--max-apcer",
            max_apcer.to_string(),
            "--max-bpcer",
            max_bpcer.to_string(),
            "--max-review-rate",
            max_review.to_string(),
        ],
        property_files=[evaluation],
    )
    report_uri = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
    register = RegisterModel(
        name="Register",
        estimator=estimator,
        model_data=train.properties.ModelArtifacts.S3ModelArtifacts,
        image_uri=PROCESSING_IMAGE,  # serves the ONNX artefact with kycserve (docs/learning-loop.md)
        content_types=["application/json"],
        response_types=["application/json"],
        inference_instances=["ml.m5.large", "ml.c5.xlarge"],
        model_package_group_name=GROUP,
        approval_status="PendingManualApproval",
        description="candidate measured against the champion and passed the gate; a person approves it",
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[report_uri, "report.json"]),
            ),
        ),
        customer_metadata_properties={
            "artefact_sha256": JsonGet(
                step_name="Evaluate", property_file=evaluation, json_path="package.model_sha256"
            ),
            "contract_version": JsonGet(
                step_name="Evaluate", property_file=evaluation, json_path="package.contract_version"
            ),
            "labelled_set_sha256": JsonGet(
                step_name="Evaluate", property_file=evaluation, json_path="package.labelled_set_sha256"
            ),
            "dataset_version": JsonGet(
                step_name="Evaluate", property_file=evaluation, json_path="package.dataset_version"
            ),
            "policy_s3_uri": Join(on="/", values=[report_uri, "policy.json"]),
            "evaluation_report_s3_uri": Join(on="/", values=[report_uri, "report.json"]),
        },
    )
    gate = ConditionStep(
        name="Gate",
        conditions=[
            ConditionEquals(
                left=JsonGet(step_name="Evaluate", property_file=evaluation, json_path="gate.passed"),
                right=True,
            )
        ],
        if_steps=[register],
        # a refused candidate is a result, not a failure: the run succeeds with its report and nothing
        # else (a Fail step here would page RetrainPipelineFailedAlarm for every refusal)
        else_steps=[],
    )
    pipeline = Pipeline(
        name=PIPELINE_NAME,
        parameters=[
            labels,
            media,
            champion,
            frames,
            max_apcer,
            max_bpcer,
            max_review,
            processing_type,
            training_type,
        ],
        steps=[process, train, evaluate, gate],
        sagemaker_session=session,
    )
    return json.loads(pipeline.definition())


def render(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"


TEMPLATE = REPO / "template.yaml"
BODY_START = "        PipelineDefinitionBody: !Sub\n          - |\n"
BODY_INDENT = " " * 12


def embed(template_text: str, definition_text: str) -> str:
    """template.yaml with RetrainPipeline's PipelineDefinitionBody replaced by ``definition_text``."""
    start = template_text.index(BODY_START) + len(BODY_START)
    end = template_text.index("\n          - ", start) + 1  # the Fn::Sub variable map follows the body
    body = "".join(BODY_INDENT + line + "\n" for line in definition_text.splitlines())
    return template_text[:start] + body + template_text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare with the committed definition")
    parser.add_argument("--out", type=Path, default=DEFINITION)
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        committed = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if json.loads(committed or "null") != json.loads(text):
            print(f"{args.out} is not what the SDK builds: run scripts/build_pipeline.py", file=sys.stderr)
            return 1
        print(f"{args.out} is what the SageMaker SDK builds")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    TEMPLATE.write_text(embed(TEMPLATE.read_text(encoding="utf-8"), text), encoding="utf-8")
    print(f"written to {args.out} and embedded in {TEMPLATE.name} (RetrainPipeline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
