"""The embedded local stack: the deployed design, run on a laptop with no AWS account and no Docker.

- ``template.yaml`` itself, translated by aws-sam-translator (``kyclocal.template``), is created in
  moto's CloudFormation over HTTP with the template's parameters: buckets, table, queues, rules, event
  bus, topics, key, roles, functions, layers, the state machine and the event source mapping all come
  from it, and every name the local run uses is read from the stack's Outputs.
- moto's Step Functions engine runs the template's state machine; Lambda tasks run the real handlers
  (``lambda_router``); SageMaker runtime calls, and Rekognition's DetectFaces (the face stage), go to
  the local model server (``kycserve``). The SageMaker control plane is moto's: the model the server
  loaded is deployed there as a customer deploys theirs (model data uploaded to S3 with a SHA-256
  checksum, a model, an endpoint config, the endpoint), so the score function's deployment witness
  (``kyc.aws.sagemaker_model_witness``) runs the same code path as in AWS.
- What moto does not emulate is emulated here, and nothing else: the bucket properties its
  CloudFormation skips (versioning, Object Lock, the intake bucket's EventBridge notification), the SQS event
  source mapping (moto's runs one message per call inside the sender's request and ignores
  ReportBatchItemFailures), the status-change events of the reconcile rule, and the ``KeySpec`` and
  ``KeyUsage`` of KMS keys (``kyclocal.kms``: the HMAC key of the pseudonyms, the ECC key that signs
  the evidence digests, whose local private key the saved state keeps). Resources moto cannot
  create at all (alarms, bucket and queue policies) are listed in the stack's log at start-up.
- A run starts as in AWS: an object lands in the intake bucket, S3 emits ``Object Created`` to
  EventBridge, the rule delivers it to the admission queue, and the queue feeds the start function.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyclocal.endpoints import LOCAL_IMAGE  # issue 24: the model server by digest, never a tag
from kyclocal.lambda_router import LambdaRouter
from kyclocal.pipe import PipeSpec
from kyclocal.template import REPO, function_folders, local_template

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "kyc-local"
POLICY_PARAMETER = "/kyc-local/decision-policy"  # where LocalStackSettings.policy is put (SSM in moto)
# issue 24: where the local deployment keeps model data (the template's ModelDataBucket/ModelDataPrefix)
MODEL_DATA_BUCKET = "kyc-local-model-data"
MODEL_DATA_PREFIX = "models/"
MODEL_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/kyc-local-sagemaker-execution"  # moto checks only its form
DEFAULT_PORT = 4566
LOG = logging.getLogger("kyclocal.stack")
# Loggers of the emulators: their records go to the stack's log file, never to the terminal.
_EMULATOR_LOGGERS = ("moto", "werkzeug", "botocore.credentials", "samtranslator")


def __getattr__(name: str) -> Any:
    if name == "FUNCTIONS":  # logical id -> folder, read from the template's CodeUri (one source)
        return function_folders()
    raise AttributeError(name)


def default_concurrency() -> int:
    """How many screenings a machine runs at once by default: one per CPU (decoding is CPU-bound)."""
    return max(1, os.cpu_count() or 1)


@dataclass
class LocalStackSettings:
    """What a local run may change; everything else follows the template's defaults."""

    model: str = "reference"
    onnx_config: Path | None = None
    upload_prefix: str = "uploads/"
    frame_count: int = 32
    score_max_concurrency: int = 4
    max_running_executions: int | None = None  # None: default_concurrency() (the template says 50)
    # issue 24 item 5: hand new uploads to the start function even while every screening slot is taken
    # (it records and defers them, as the mapping does in AWS). On by default, as in AWS; False: the
    # pump waits for a free slot instead and the function never sees a full gate
    defer_when_full: bool = True
    pass_threshold: float | None = None
    reject_threshold: float | None = None
    face_evidence_source: str | None = None  # FaceEvidenceSource; None: the template's (local)
    extra_env: dict[str, str] = field(default_factory=dict)
    triggers: bool = True  # False: no queue consumer or status rule (kycscreen invoke runs one handler)
    model_faults: Any = None  # a kycserve.faults.FaultInjector: endpoint outages for drills and tests
    # issue 21: faults of one endpoint name only (a shadowed candidate that fails beside a healthy champion)
    endpoint_faults: dict[str, Any] = field(default_factory=dict)
    # --- lineage/state hooks (kyclocal.state): restored on start, saved on stop; None = in memory only
    state_dir: Path | None = None
    port: int | None = None  # None: a free port (kycscreen up uses a fixed one)
    log_path: Path | None = None  # the stack's log (moto, start-up notes); None: beside the state, or temp
    # --- issue 20: serve the API (kyclocal.api_gateway) on this port (0: a free one); None: do not serve
    api_port: int | None = None
    static_root: Path | None = None  # a folder the API's server also serves at / (the workbench)
    # --- calibration: a decision-policy document (e.g. `kycscreen evaluate --write-policy`), served as the
    # template's SSM override (PolicyParameterName), a SecureString under the stack key as documented
    policy: dict[str, Any] | None = None
    # --- issue 20: the customer's webhook (WebhookUrl: http only to loopback); the queue's visibility
    # timeout locally (None: the template's 90 s), so that a test sees WebhookMaxAttempts retries quickly
    webhook_url: str | None = None
    webhook_max_attempts: int | None = None
    webhook_retry_s: int | None = None

    def parameters(self) -> dict[str, str]:
        """Template parameters the local run overrides; the rest keep their defaults."""
        params = {
            "UploadPrefix": self.upload_prefix,
            "FrameCount": str(self.frame_count),
            "ScoreMaxConcurrency": str(self.score_max_concurrency),
            "MaxRunningExecutions": str(self.max_running_executions or default_concurrency()),
            # CloudFront, its OAC and headers policy and a CLOUDFRONT WAF are beyond moto's CloudFormation:
            # locally kyclocal.workbench serves web/ with the template's headers instead (issue 20).
            "EnableWorkbench": "false",
            "EnableScreeningApi": "true",  # issue 20: the API and the reviewer pool (kyclocal.api_gateway)
            "ModelDataBucket": MODEL_DATA_BUCKET,  # issue 24: the deployment witness reads here
            "ModelDataPrefix": MODEL_DATA_PREFIX,
        }
        if self.pass_threshold is not None:
            params["PassThreshold"] = str(self.pass_threshold)
        if self.reject_threshold is not None:
            params["RejectThreshold"] = str(self.reject_threshold)
        if self.policy is not None:
            params["PolicyParameterName"] = POLICY_PARAMETER
        if self.face_evidence_source is not None:
            params["FaceEvidenceSource"] = self.face_evidence_source
        if self.webhook_url is not None:
            params["WebhookUrl"] = self.webhook_url
        if self.webhook_max_attempts is not None:
            params["WebhookMaxAttempts"] = str(self.webhook_max_attempts)
        return params


@dataclass(frozen=True)
class LocalResources:
    """Names of the created stack's resources, from its Outputs (plus the two local subscriber taps)."""

    intake_bucket: str
    work_bucket: str
    audit_bucket: str
    review_bucket: str
    decisions_table: str
    admission_queue: str
    event_bus: str
    review_topic: str
    state_machine: str
    endpoint_name: str
    key_arn: str
    decision_events_queue: str = "kyc-local-decision-events"  # a subscriber's queue on the bus (local)
    review_queue: str = "kyc-local-review-tap"  # a subscriber's queue on the review topic (local)

    @classmethod
    def from_outputs(cls, outputs: dict[str, str], parameters: dict[str, str]) -> LocalResources:
        return cls(
            intake_bucket=outputs["IntakeBucketName"],
            work_bucket=outputs["WorkBucketName"],
            audit_bucket=outputs["AuditBucketName"],
            review_bucket=outputs["ReviewBucketName"],
            decisions_table=outputs["DecisionsTableName"],
            admission_queue=outputs["AdmissionQueueName"],
            event_bus=outputs["DecisionEventBusName"],
            review_topic=outputs["ReviewTopicName"],
            state_machine=outputs["ScreeningStateMachineName"],
            endpoint_name=parameters["EndpointName"],
            key_arn=outputs["ScreeningKeyArn"],
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StackError(RuntimeError):
    """The template could not be created in moto."""


class LocalStack:
    """Start with ``with LocalStack() as stack:``; upload with ``stack.upload(path)``."""

    def __init__(self, settings: LocalStackSettings | None = None) -> None:
        self.settings = settings or LocalStackSettings()
        self.port = self.settings.port or _free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.region = REGION
        self._server: Any = None
        self._model_server: Any = None
        self._deployments = 0  # models deployed in moto's SageMaker (deploy_model)
        self._pump: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._pipe_thread: threading.Thread | None = None
        self._webhook_pump: threading.Thread | None = None
        self._pipe_iterators: list[str] = []
        self.reconciled: set[str] = set()
        # issue 24 item 5: uploads the start function deferred (message id -> receipt handle, object
        # key), in deferral order; keys in held_admissions stay in the queue until a test lets them go
        self.deferred_admissions: dict[str, tuple[str, str]] = {}
        self.held_admissions: set[str] = set()
        self._stop = threading.Event()
        self._moto_config: dict[str, Any] = {}
        self._saved_env: dict[str, str | None] = {}
        self._log_handler: logging.Handler | None = None
        self._saved_loggers: dict[str, tuple[list[logging.Handler], bool, int]] = {}
        self._template = local_template()
        self.pipe = PipeSpec.from_template(self._template.body)
        self.router = LambdaRouter(
            {
                name: REPO / "functions" / folder / "app.py"
                for name, folder in self._template.functions.items()
            },
            log_sink=self._write_logs,
        )
        self.resources: LocalResources | None = None  # type: ignore[assignment]  # set by start()
        self.parameters: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.function_names: dict[str, str] = {}  # logical id -> deployed function name
        self.physical_ids: dict[str, str] = {}  # logical id -> physical id, from ListStackResources
        self.not_emulated: list[tuple[str, str]] = []  # (logical id, type) moto's CloudFormation skipped
        self.kms_key_id = ""
        self.review_topic_arn = ""
        self.state_machine_arn = ""
        self.admission_queue_url = ""
        self.decision_events_queue_url = ""
        self.review_queue_url = ""
        self.model_url = ""
        self.started_s: dict[str, float] = {}
        self.pool: Any = None  # kyclocal.cognito.LocalPool: the template's reviewer pool in moto
        self.api: Any = None  # kyclocal.api_gateway.LocalApiGateway when settings.api_port is set
        self.log_path = self.settings.log_path or _default_log_path(self.settings.state_dir)

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        import copy

        import requests
        from moto.core.config import default_user_config
        from moto.moto_api._internal.models import moto_api_backend
        from moto.server import ThreadedMotoServer

        from kyc.aws.clients import client

        began = time.perf_counter()
        if self.settings.port is not None:
            _require_free(self.settings.port)
        self._route_emulator_logs()
        client.cache_clear()  # clients are per process; a new stack has a new endpoint
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        moto_api_backend.reset()  # moto's state is per process: each stack starts from an empty account
        self._moto_config = copy.deepcopy(default_user_config)  # restored on stop: the config is global too
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self._set_env(
            {
                "MOTO_PORT": str(self.port),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",  # moto accepts any value; nothing real exists here
            }
        )
        requests.post(
            f"{self.endpoint_url}/moto-api/config",
            timeout=10,
            json={"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}},
        )
        self._start_model_server()
        self.started_s["moto_and_model"] = time.perf_counter() - began
        self._create_stack()
        self.started_s["create_stack"] = time.perf_counter() - began
        self._serve_sagemaker_endpoints()
        self._put_policy_override()
        self.deploy_model(self._model_server.model)  # issue 24: SageMaker knows what the endpoint serves
        self._emulate_skipped_properties()
        self._create_out_of_band()
        from kyclocal.kms import apply_key_specs, honour_digest_message_type  # issue 13, issue 23

        apply_key_specs(self._template.body["Resources"], self.physical_ids, ACCOUNT, REGION)
        honour_digest_message_type()
        self._create_subscriber_taps()
        self._set_env(self._function_env())
        self.router.install(self.function_names)
        self._serve_api()
        if self.settings.state_dir is not None:  # --- lineage/state hook: before anything can run
            from kyclocal.state import restore_state

            restore_state(self, self.settings.state_dir)
        # after the restore: restored decisions had their events in the session that made them
        self._start_decision_events_pipe(restored=self.settings.state_dir is not None)
        self._enable_intake_notifications()  # after the restore: a restored upload is never screened again
        if self.settings.state_dir is not None:
            from kyclocal.state import reconcile_unfinished

            reconcile_unfinished(self)
        if self.settings.triggers:
            self._pump = threading.Thread(target=self._pump_admissions, name="admission-pump", daemon=True)
            self._pump.start()
            self._watcher = threading.Thread(target=self._watch_executions, name="status-rule", daemon=True)
            self._watcher.start()
            if self.webhook_mapping:
                self._webhook_pump = threading.Thread(
                    target=self._pump_webhook, name="webhook-pump", daemon=True
                )
                self._webhook_pump.start()
        self.started_s["ready"] = time.perf_counter() - began
        LOG.info("local stack ready in %.2f s (%s)", self.started_s["ready"], self.started_s)

    def stop(self) -> None:
        from moto.core.config import default_user_config

        self._stop.set()
        if self.api is not None:
            self.api.stop()
            self.api = None
        for thread in (self._pump, self._watcher, self._pipe_thread, self._webhook_pump):
            if thread:
                thread.join(timeout=10)
        self._drain_executions()
        if self._model_server is not None:
            from kycserve.server import stop

            stop(self._model_server, self._model_thread)
            self._model_server = None
        if self._server:
            if self.settings.state_dir is not None and self.resources is not None:
                from kyclocal.state import save_state  # --- lineage/state hook: while moto still answers

                save_state(self, self.settings.state_dir)
            self._server.stop()
            self._server = None
            default_user_config.clear()
            default_user_config.update(self._moto_config)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        self._restore_emulator_logs()

    def _drain_executions(self, timeout_s: float = 30.0) -> None:
        """Abort what is still running and wait for moto's execution threads to end.

        moto runs each execution in a thread of this process. One left running would go on calling
        handlers after this stack is gone, with the environment restored, inside whatever runs next
        in the process (another stack, another test): its output and metrics would land there."""
        if self._server is None or not self.state_machine_arn:
            return
        from moto.stepfunctions.parser.utils import TMP_THREADS

        sfn = self.client("stepfunctions")
        with suppress(Exception):  # best effort: the server may already be failing
            running = sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")
            for execution in running["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"], cause="local stack stopped")
        deadline = time.monotonic() + timeout_s
        for thread in list(TMP_THREADS):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        TMP_THREADS[:] = [t for t in TMP_THREADS if t.is_alive()]

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint_url)

    # ----------------------------------------------------------------- set-up
    def _route_emulator_logs(self) -> None:
        """moto's and the HTTP server's records (stack traces of failing states included) go to the
        stack's log file: they describe the emulator, not the screening, and a terminal is for people."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._log_handler = handler
        for name in (*_EMULATOR_LOGGERS, "kyclocal"):
            logger = logging.getLogger(name)
            self._saved_loggers[name] = (list(logger.handlers), logger.propagate, logger.level)
            logger.handlers = [handler]
            logger.propagate = False
            if name in ("werkzeug", "botocore.credentials"):
                logger.setLevel(logging.WARNING)
            elif name != "moto":
                logger.setLevel(logging.INFO)
        logging.captureWarnings(True)
        warnings_logger = logging.getLogger("py.warnings")
        self._saved_loggers["py.warnings"] = (
            list(warnings_logger.handlers),
            warnings_logger.propagate,
            warnings_logger.level,
        )
        warnings_logger.handlers = [handler]
        warnings_logger.propagate = False

    def _restore_emulator_logs(self) -> None:
        for name, (handlers, propagate, level) in self._saved_loggers.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        self._saved_loggers.clear()
        logging.captureWarnings(False)
        if self._log_handler is not None:
            self._log_handler.close()
            self._log_handler = None

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _start_model_server(self) -> None:
        from kycserve.models import load_model
        from kycserve.server import start_server

        model = load_model(self.settings.model, onnx_config=self.settings.onnx_config)
        self._model_server, self._model_thread, self.model_url = start_server(
            model, host="127.0.0.1", port=0, faults=self.settings.model_faults
        )
        self._model_server.endpoint_faults = self.settings.endpoint_faults
        # the same server answers Rekognition's DetectFaces for the face stage (kycserve.rekognition)
        self._set_env(
            {
                "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.model_url,
                "AWS_ENDPOINT_URL_REKOGNITION": self.model_url,
            }
        )

    def serve_model(self, model: Any, *, deploy: bool = True) -> None:
        """Serve ``model`` behind the local endpoint. ``deploy``: as a promotion does, also create its
        model data, model and endpoint config in SageMaker and switch the endpoint to them; False plays
        a container that changed what it runs (or reports) without any deployment saying so."""
        self._model_server.model = model
        if deploy:
            self.deploy_model(model)

    def deploy_model(self, model: Any, *, image: str = LOCAL_IMAGE) -> str:
        """Deploy ``model`` in moto's SageMaker as docs/model-contract.md tells a customer to: its
        artefact (``model.artefact()``, the bytes its ``artefact_sha256`` hashes) uploaded once to
        ModelDataBucket with ``x-amz-checksum-sha256`` (S3 verifies and keeps it), a model whose
        ModelDataSource is that one uncompressed object, an endpoint config, and the template's endpoint
        pointed at it. ``image``: the serving image URI the model names (by digest, as a customer should;
        a test plays a tag or another build). Returns the SageMaker model name (new per deployment)."""
        s3, sagemaker = self.client("s3"), self.client("sagemaker")
        with suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=MODEL_DATA_BUCKET)
        self._deployments += 1
        name = f"kyc-local-model-{self._deployments}"
        key = f"{MODEL_DATA_PREFIX}{name}/model.bin"
        s3.put_object(Bucket=MODEL_DATA_BUCKET, Key=key, Body=model.artefact(), ChecksumAlgorithm="SHA256")
        source = {
            "S3Uri": f"s3://{MODEL_DATA_BUCKET}/{key}",
            "S3DataType": "S3Object",
            "CompressionType": "None",
        }
        sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn=MODEL_ROLE_ARN,
            PrimaryContainer={"Image": image, "ModelDataSource": {"S3DataSource": source}},
        )
        variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.c5.xlarge"}
        sagemaker.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[variant | {"InitialInstanceCount": 1}]
        )
        endpoint = self.resources.endpoint_name
        if self._deployments > 1:  # moto 5.2.5 has no UpdateEndpoint: the switch is delete and create
            sagemaker.delete_endpoint(EndpointName=endpoint)
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
        LOG.info(
            "deployed %s %s as %s (model data s3://%s/%s)",
            model.info.name,
            model.info.version,
            name,
            MODEL_DATA_BUCKET,
            key,
        )
        return name

    def _serve_sagemaker_endpoints(self) -> None:
        """Issue 21: the model server serves what moto's SageMaker says each endpoint serves."""
        from kyclocal.endpoints import LocalEndpoints

        self._model_server.endpoints = LocalEndpoints(
            self.client("sagemaker"), self.client("s3"), self.parameters["EndpointName"]
        )

    def _create_stack(self) -> None:
        """CreateStack with the translated template.yaml and the parameters; names from the Outputs."""
        defaults = {n: str(p["Default"]) for n, p in self._template.parameters.items() if "Default" in p}
        self.parameters = defaults | self.settings.parameters()
        import requests

        # Generated names (buckets, table, queues) come from moto's random source: seeded, the same
        # template gets the same names every start, so saved submission ids stay valid.
        requests.post(f"{self.endpoint_url}/moto-api/seed?a=15", timeout=10)
        cfn = self.client("cloudformation")
        cfn.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(self._template.body),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": v} for k, v in self.settings.parameters().items()
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise StackError(f"template.yaml: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self.resources = LocalResources.from_outputs(self.outputs, self.parameters)
        self.kms_key_id = self.resources.key_arn
        self.review_topic_arn = self.outputs["ReviewTopicArn"]
        self.state_machine_arn = self.outputs["ScreeningStateMachineArn"]
        self._hand_state_machine_to_engine()
        self.admission_queue_url = self.client("sqs").get_queue_url(QueueName=self.resources.admission_queue)[
            "QueueUrl"
        ]
        summaries = [
            r
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME)
            for r in page["StackResourceSummaries"]
        ]
        created = {r["LogicalResourceId"]: r for r in summaries}
        self.physical_ids = {lid: r["PhysicalResourceId"] for lid, r in created.items()}
        for logical_id, resource in self._template.body["Resources"].items():
            summary = created.get(logical_id)
            if "Condition" in resource and summary is None:
                continue  # off by a condition, as in AWS
            if summary is None or not summary.get("ResourceType"):
                self.not_emulated.append((logical_id, resource["Type"]))
        self.function_names = {
            lid: created[lid]["PhysicalResourceId"] for lid in self._template.functions if lid in created
        }
        LOG.info(
            "created %s from template.yaml; not emulated by moto (%d): %s",
            STACK_NAME,
            len(self.not_emulated),
            ", ".join(f"{lid} ({kind})" for lid, kind in sorted(self.not_emulated)),
        )

    def _put_policy_override(self) -> None:
        """The policy document, where the template's decide function reads its override (as a customer puts
        theirs with `aws ssm put-parameter`): a SecureString under the stack's key."""
        if self.settings.policy is None:
            return
        self.client("ssm").put_parameter(
            Name=POLICY_PARAMETER,
            Type="SecureString",
            KeyId=self.kms_key_id,
            Value=json.dumps(self.settings.policy),
            Overwrite=True,
        )

    def _hand_state_machine_to_engine(self) -> None:
        """moto's CloudFormation puts the state machine in its plain Step Functions backend, while the
        API (with execute_state_machine on) serves the one that runs executions: the created machine,
        definition and all, is registered there under the same name and ARN."""
        from moto.stepfunctions.models import stepfunctions_backends

        created = stepfunctions_backends[ACCOUNT][REGION].describe_state_machine(self.state_machine_arn)
        arn = self.client("stepfunctions").create_state_machine(
            name=created.name, definition=created.definition, roleArn=created.roleArn, type="STANDARD"
        )["stateMachineArn"]
        if arn != self.state_machine_arn:
            raise StackError(f"state machine registered as {arn}, the stack says {self.state_machine_arn}")

    def _emulate_skipped_properties(self) -> None:
        """Bucket versioning and Object Lock (moto's CloudFormation skips both), and moto's own SQS
        event source mapping switched off (the pump below reads its settings and runs it as Lambda
        does). Key specs: ``kyclocal.kms``."""
        s3 = self.client("s3")
        for logical_id, resource in self._template.body["Resources"].items():
            if resource.get("Type") != "AWS::S3::Bucket" or logical_id not in self.outputs_by_logical_id():
                continue
            bucket = self.outputs_by_logical_id()[logical_id]
            versioning = resource.get("Properties", {}).get("VersioningConfiguration")
            if versioning:
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=versioning)
            lock = object_lock_configuration(resource.get("Properties", {}), self.parameters)
            if lock:  # on the new, empty bucket, as CloudFormation creates it; moto then enforces it
                s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock)
        lam = self.client("lambda")
        self.admission_mapping: dict[str, Any] = {}
        # issue 20: WebhookQueue -> WebhookFunction, when WebhookUrl is set
        self.webhook_mapping: dict[str, Any] = {}
        webhook_queue = str(self.physical_ids.get("WebhookQueue", "")).rsplit("/", 1)[-1]
        for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
            if mapping["EventSourceArn"].endswith(f":{self.resources.admission_queue}"):
                self.admission_mapping = mapping
            elif webhook_queue and mapping["EventSourceArn"].endswith(f":{webhook_queue}"):
                self.webhook_mapping = mapping
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        if webhook_queue and self.settings.webhook_retry_s is not None:
            self.client("sqs").set_queue_attributes(
                QueueUrl=self.physical_ids["WebhookQueue"],
                Attributes={"VisibilityTimeout": str(self.settings.webhook_retry_s)},
            )
        if not self.admission_mapping:
            raise StackError("template.yaml: no event source mapping on the admission queue")

    def _create_out_of_band(self) -> None:
        """The reviewer user pool, its app client and groups (issue 20), from the template's properties
        (moto's CloudFormation has no Cognito models; ``kyclocal.cognito``), and the secrets (the
        webhook's signing key when WebhookUrl is set; ``kyclocal.secrets``)."""
        from kyclocal.cognito import create_pools
        from kyclocal.secrets import create_secrets

        def key_arn(logical_id: str) -> str:
            from moto.kms.models import kms_backends

            return kms_backends[ACCOUNT][REGION].describe_key(self.physical_ids[logical_id]).arn

        body = self._template.body["Resources"]

        def created(resource: dict[str, Any]) -> bool:
            """Its Condition holds: moto created the stack's other resources under that condition."""
            condition = resource.get("Condition")
            peers = [lid for lid, r in body.items() if condition and r.get("Condition") == condition]
            return not peers or any(lid in self.physical_ids for lid in peers)

        wanted = {lid: r for lid, r in self._template.out_of_band.items() if created(r)}
        self.physical_ids.update(create_secrets(self.client("secretsmanager"), wanted, key_arn=key_arn))

        self.pool = create_pools(
            self.client("cognito-idp"),
            self._template.out_of_band,
            stack_name=STACK_NAME,
            endpoint=self.endpoint_url,
            region=REGION,
        )

    def _serve_api(self) -> None:
        """The template's REST API over local HTTP (``kyclocal.api_gateway``), when asked for."""
        if self.settings.api_port is None or self.pool is None:
            return
        from kyclocal.api_gateway import LocalApiGateway
        from kyclocal.template import read_template

        self.api = LocalApiGateway(
            self.router.invoke,
            read_template(),
            self.pool,
            port=self.settings.api_port,
            static_root=self.settings.static_root,
            cors_origin=self.settings.extra_env.get("KYC_CORS_ORIGIN", ""),  # the workbench's, as in AWS
        ).start()

    def _signing_keys(self) -> dict[str, dict[str, Any]]:
        """The created SIGN_VERIFY keys of the template, by logical id, with their properties."""
        return {
            logical_id: resource["Properties"]
            for logical_id, resource in self._template.body["Resources"].items()
            if resource.get("Type") == "AWS::KMS::Key"
            and resource.get("Properties", {}).get("KeyUsage") == "SIGN_VERIFY"
            and logical_id in self.physical_ids
        }

    def signing_key_pems(self) -> dict[str, bytes]:
        """The LOCAL private keys of the signing keys (PEM), so a saved state keeps verifying with the
        same public key across commands. Only ever for moto's keys: real KMS keys never leave KMS."""
        from cryptography.hazmat.primitives import serialization
        from moto.kms.models import kms_backends

        out = {}
        for logical_id in self._signing_keys():
            key = kms_backends[ACCOUNT][REGION].describe_key(self.physical_ids[logical_id])
            out[logical_id] = key.private_key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        return out

    def load_signing_key_pem(self, logical_id: str, pem: bytes) -> None:
        """Give moto's key the saved local private key (see ``signing_key_pems``)."""
        from cryptography.hazmat.primitives import serialization
        from moto.kms.models import kms_backends

        if logical_id not in self._signing_keys():
            return
        key = kms_backends[ACCOUNT][REGION].describe_key(self.physical_ids[logical_id])
        key.private_key.private_key = serialization.load_pem_private_key(pem, password=None)

    def outputs_by_logical_id(self) -> dict[str, str]:
        """Physical names of the buckets the template declares, by logical id (from the Outputs)."""
        return {
            key.removesuffix("Name"): value
            for key, value in self.outputs.items()
            if key.endswith("BucketName")
        }

    def _enable_intake_notifications(self) -> None:
        """The intake bucket's NotificationConfiguration as the template declares it (moto's
        CloudFormation does not apply EventBridgeConfiguration)."""
        resource = self._template.body["Resources"]["IntakeBucket"]
        config = resource.get("Properties", {}).get("NotificationConfiguration", {})
        notification: dict[str, Any] = {}
        if "EventBridgeConfiguration" in config:
            notification["EventBridgeConfiguration"] = {}
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.resources.intake_bucket, NotificationConfiguration=notification
        )

    def _create_subscriber_taps(self) -> None:
        """Queues standing in for a subscriber of the decision events and of the review topic: not
        part of the service, so not in the template; local tests and clients read them."""
        r = self.resources
        sqs, events, sns = self.client("sqs"), self.client("events"), self.client("sns")
        self.decision_events_queue_url = sqs.create_queue(QueueName=r.decision_events_queue)["QueueUrl"]
        events_queue_arn = _queue_arn(sqs, self.decision_events_queue_url)
        events.put_rule(
            Name="kyc-local-decisions-tap",
            EventBusName=r.event_bus,
            EventPattern=json.dumps({"source": ["kyc.screening"]}),
        )
        events.put_targets(
            Rule="kyc-local-decisions-tap",
            EventBusName=r.event_bus,
            Targets=[{"Id": "tap", "Arn": events_queue_arn}],
        )
        self.review_queue_url = sqs.create_queue(QueueName=r.review_queue)["QueueUrl"]
        sns.subscribe(
            TopicArn=self.review_topic_arn,
            Protocol="sqs",
            Endpoint=_queue_arn(sqs, self.review_queue_url),
            Attributes={"RawMessageDelivery": "true"},
        )

    def _function_env(self) -> dict[str, str]:
        """Every function's environment as the template sets it (moto resolved the parameters and
        references). The handlers share this process, so the variables are merged: a name two
        functions set to different values would make one of them wrong, and is refused."""
        lam = self.client("lambda")
        env: dict[str, str] = {}
        for logical_id, name in self.function_names.items():
            variables = (
                lam.get_function_configuration(FunctionName=name).get("Environment", {}).get("Variables", {})
            )
            for key, raw in variables.items():
                value = str(raw)
                if key in env and env[key] != value:
                    raise StackError(f"{logical_id} sets {key}={value!r}, another function {env[key]!r}")
                env[key] = value
        return (
            env | {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_DEV": "false"} | self.settings.extra_env
        )

    # ----------------------------------------------------------------- the event source mapping
    def _pump_admissions(self) -> None:
        """The SQS event source mapping: batches from the admission queue to the start function.

        While screening slots are free (the stack's MaxRunningExecutions, by default one per CPU) it
        takes no more messages than there are free slots. While they are all taken it waits, or, with
        ``defer_when_full``, still hands every new upload to the start function, as the mapping does
        in AWS: the function writes the upload's admission record (issue 24 item 5) and defers it
        past its gate. A deferred upload
        then waits in the queue, as in AWS, but is made visible again as soon as a slot frees
        (earliest deferred first; none past one a test holds: ``held_admissions``) rather than after
        the queue's 180 s visibility timeout, so local runs are not slowed and files are admitted in
        upload order. One the function held back for receipt order hid itself for ``ORDER_DEFER_S``
        (functions/start/app.py) and is released the same way, or reappears on its own.
        """
        sqs, sfn = self.client("sqs"), self.client("stepfunctions")
        limit = int(self.parameters["MaxRunningExecutions"])
        batch = int(self.admission_mapping.get("BatchSize", 10))
        while not self._stop.is_set():
            try:
                running = len(
                    sfn.list_executions(
                        stateMachineArn=self.state_machine_arn, statusFilter="RUNNING", maxResults=limit
                    )["executions"]
                )
                free = min(batch, limit - running)
                if free > 0 and self._release_deferred(sqs, free):
                    continue  # received next, with the new uploads
                if free <= 0 and not self.settings.defer_when_full:
                    self._stop.wait(0.2)
                    continue
                messages = sqs.receive_message(
                    QueueUrl=self.admission_queue_url,
                    MaxNumberOfMessages=free if free > 0 else batch,
                    WaitTimeSeconds=1 if free > 0 else 0,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                raise
            if messages:
                failed = self._deliver_batch(self.admission_queue_url, "StartScreeningFunction", messages)
                for message in messages:
                    if message["MessageId"] in failed:
                        self.deferred_admissions[message["MessageId"]] = (
                            message["ReceiptHandle"],
                            _object_key(message["Body"]),
                        )
                    else:
                        self.deferred_admissions.pop(message["MessageId"], None)
            elif free <= 0:
                self._stop.wait(0.2)

    def _release_deferred(self, sqs: Any, free: int) -> int:
        """Make up to ``free`` deferred uploads visible again (earliest first); how many were."""
        released = 0
        for message_id, (handle, key) in list(self.deferred_admissions.items()):
            if released >= free:
                break
            if key in self.held_admissions:
                break  # strictly earliest first: the ones behind it wait for their own visibility
            del self.deferred_admissions[message_id]
            with suppress(Exception):  # gone meanwhile (its own visibility timeout ran out and it was taken)
                sqs.change_message_visibility(
                    QueueUrl=self.admission_queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                )
                released += 1
        return released

    def _deliver_batch(self, queue_url: str, function: str, messages: list[dict[str, Any]]) -> set[str]:
        """One SQS batch to a function, as the event source mapping with ReportBatchItemFailures does:
        the messages it did not report failed are deleted; the rest reappear after the visibility
        timeout, and moto's SQS moves one to the queue's dead-letter queue after maxReceiveCount."""
        event = {"Records": [_sqs_record(m, queue_url) for m in messages]}
        payload, errored = self.router.invoke(function, json.dumps(event))
        failed = (
            {m["MessageId"] for m in messages}
            if errored
            else {f["itemIdentifier"] for f in json.loads(payload).get("batchItemFailures", [])}
        )
        sqs = self.client("sqs")
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return failed

    def _pump_webhook(self) -> None:
        """WebhookFunction's event source mapping (issue 20): WebhookQueue batches to the signer."""
        sqs, url = self.client("sqs"), self.physical_ids["WebhookQueue"]
        batch = int(self.webhook_mapping.get("BatchSize", 10))
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(batch, 10),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                raise
            if messages:
                self._deliver_batch(url, "WebhookFunction", messages)

    # ----------------------------------------------------------------- the decision outbox pipe
    def _start_decision_events_pipe(self, *, restored: bool) -> None:
        """DecisionEventsPipe (moto's CloudFormation cannot create pipes): the table's stream from its
        start, or from now on in a restored stack, through the template's filter and enrichment to the bus."""
        streams = self.client("dynamodbstreams")
        table = self.physical_ids[self.pipe.source_table]
        listed = streams.list_streams(TableName=table)["Streams"]
        if not listed:
            raise StackError(
                f"template.yaml: {self.pipe.source_table} has no stream for {self.pipe.logical_id}"
            )
        arn = listed[0]["StreamArn"]
        shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        position = "LATEST" if restored else "TRIM_HORIZON"
        self._pipe_iterators = [
            streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType=position)[
                "ShardIterator"
            ]
            for shard in shards
        ]
        self._pipe_thread = threading.Thread(
            target=self._pump_decision_events, name="decision-pipe", daemon=True
        )
        self._pipe_thread.start()

    def _pump_decision_events(self) -> None:
        streams, events = self.client("dynamodbstreams"), self.client("events")
        while not self._stop.is_set():
            moved = False
            try:
                for index, iterator in enumerate(self._pipe_iterators):
                    response = streams.get_records(ShardIterator=iterator, Limit=self.pipe.batch_size)
                    records = response.get("Records", [])
                    if records:
                        self._deliver_decision_events(records, events)
                        moved = True
                    self._pipe_iterators[index] = response.get("NextShardIterator") or iterator
            except Exception:
                if self._stop.is_set():
                    return
                LOG.exception("decision events pipe")
            if not moved:
                self._stop.wait(0.2)

    def _deliver_decision_events(self, records: list[dict[str, Any]], events: Any) -> None:
        """One batch: filter, enrich (the real function, through the router), put on the bus; a batch
        that keeps failing goes to the dead-letter list after the template's retry count, as in AWS."""
        records = json.loads(json.dumps(records, default=_epoch_seconds))  # as Pipes sends them: JSON
        passed = [r for r in records if self.pipe.passes(r)]
        if not passed:
            return
        attempts = max(self.pipe.maximum_retry_attempts, 0) + 1
        for _ in range(attempts):
            details: Any = passed
            errored = False
            if self.pipe.enrichment:
                payload, errored = self.router.invoke(self.pipe.enrichment, json.dumps(passed))
                details = None if errored else json.loads(payload)
            if not errored:
                entries = self.pipe.entries(details, self.resources.event_bus)
                failed = 0
                for start in range(0, len(entries), 10):
                    failed += events.put_events(Entries=entries[start : start + 10]).get(
                        "FailedEntryCount", 0
                    )
                if not failed:
                    return
            if self._stop.wait(0.1):
                return
        self._dead_letter_decision_events(passed)

    def _dead_letter_decision_events(self, records: list[dict[str, Any]]) -> None:
        """What Pipes writes to the DLQ of a stream source: where the batch was, not the records."""
        if not self.pipe.dead_letter_queue:
            return
        queue = self.physical_ids[self.pipe.dead_letter_queue]
        sqs = self.client("sqs")
        url = queue if queue.startswith("http") else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        arrivals = [r["dynamodb"].get("ApproximateCreationDateTime") for r in records]
        batch = {
            "ddbStreamBatchInfo": {
                "streamArn": records[0].get("eventSourceARN"),
                "startSequenceNumber": numbers[0],
                "endSequenceNumber": numbers[-1],
                "approximateArrivalOfFirstRecord": arrivals[0],
                "approximateArrivalOfLastRecord": arrivals[-1],
                "batchSize": len(records),
            }
        }
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(batch))
        LOG.error("decision events pipe: batch of %d records sent to the dead-letter queue", len(records))

    def _watch_executions(self) -> None:
        """The template's ReconcileExecutionRule: moto emits no Step Functions status-change events,
        so poll for executions that failed, timed out or were aborted and hand each, once, to the
        reconcile function in the shape EventBridge delivers."""
        sfn = self.client("stepfunctions")
        ended = ("FAILED", "TIMED_OUT", "ABORTED")
        # one unfiltered listing a second, statuses read here: each moto listing walks every execution
        # and costs ~12 ms of CPU at 50 executions (issue 25: three filtered ones every 0.5 s were
        # 6 % of a core for the whole run, taken from the screenings on a 2-core machine)
        pages = sfn.get_paginator("list_executions")
        while not self._stop.wait(1.0):
            try:
                for page in pages.paginate(stateMachineArn=self.state_machine_arn):
                    for execution in page["executions"]:
                        if execution["status"] in ended and execution["executionArn"] not in self.reconciled:
                            self.reconciled.add(execution["executionArn"])
                            self._reconcile(sfn.describe_execution(executionArn=execution["executionArn"]))
            except Exception:
                if self._stop.is_set():
                    return
                raise

    def _reconcile(self, execution: dict[str, Any]) -> None:
        event = {
            "version": "0",
            "id": execution["executionArn"].rsplit(":", 1)[-1],
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": ACCOUNT,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": REGION,
            "resources": [execution["executionArn"]],
            "detail": {
                "executionArn": execution["executionArn"],
                "stateMachineArn": self.state_machine_arn,
                "name": execution["name"],
                "status": execution["status"],
                "input": execution.get("input"),
                "output": execution.get("output"),
            },
        }
        self.router.invoke("ReconcileExecutionFunction", json.dumps(event))

    def reconcile_abandoned(self, submission: dict[str, Any]) -> None:
        """An upload whose screening died with its process: the status rule's ABORTED event for it."""
        sid = submission["submission_id"]
        self._reconcile(
            {
                "executionArn": f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{sid}",
                "name": sid,
                "status": "ABORTED",
                "input": json.dumps({"submission": submission}),
            }
        )

    # ----------------------------------------------------------------- logs
    def log_group(self, function: str) -> str:
        """The log group of a function, by logical id (or deployed name), as Lambda names it."""
        return f"/aws/lambda/{self.function_names.get(function, function)}"

    def _write_logs(self, function_name: str, request_id: str, lines: list[str]) -> None:
        """What a Lambda prints lands in its log group, as in AWS; read back by `kycscreen lineage`."""
        if not lines:
            return
        logs = self.client("logs")
        group = self.log_group(function_name)
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{request_id.replace('-', '')}"
        with suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now, "message": line} for line in lines],
        )

    # ----------------------------------------------------------------- using the stack
    def upload(
        self, path: Path, key: str | None = None, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Put a file in the intake bucket as a client would; returns its identity and submission id."""
        from kyc.domain.identity import submission_id

        key = key or f"{self.settings.upload_prefix}{path.name}"
        mac = self.submission_mac()
        s3 = self.client("s3")
        kwargs: dict[str, Any] = {
            "Bucket": self.resources.intake_bucket,
            "Key": key,
            "Body": path.read_bytes(),
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": self.kms_key_id,
        }
        if metadata:
            kwargs["Metadata"] = metadata
        response = s3.put_object(**kwargs)
        version = response.get("VersionId")
        etag = (response.get("ETag") or "").strip('"')
        return {
            "bucket": self.resources.intake_bucket,
            "key": key,
            "version_id": version,
            "etag": etag,
            "submission_id": submission_id(self.resources.intake_bucket, key, version, etag, mac=mac),
        }

    def submission_mac(self) -> Any:
        """The pseudonym key's MAC, as the start function keys submission ids (issue 23): KMS
        GenerateMac under the stack's HMAC key, whose policy lets only the stack's roles call it."""
        from kyc.aws.kms_mac import KmsMac

        return KmsMac(os.environ["KYC_PSEUDONYM_KEY_ARN"], self.client("kms"))

    def drain_admissions(self, timeout_s: float = 60.0) -> bool:
        """Wait until the admission queue holds no message, visible or in flight."""
        sqs = self.client("sqs")
        deadline = time.monotonic() + timeout_s
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        while time.monotonic() < deadline:
            attrs = sqs.get_queue_attributes(QueueUrl=self.admission_queue_url, AttributeNames=names)[
                "Attributes"
            ]
            if all(int(attrs.get(n, "0")) == 0 for n in names):
                return True
            time.sleep(0.2)
        return False

    def decision(self, sid: str) -> dict[str, Any] | None:
        from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore

        return DynamoDBDecisionStore(self.resources.decisions_table, self.client("dynamodb")).get(sid)

    def wait_for_decision(self, sid: str, timeout_s: float = 180.0) -> dict[str, Any] | None:
        """Poll until the decision exists and its execution has ended (None after the deadline)."""
        deadline = time.monotonic() + timeout_s
        sfn = self.client("stepfunctions")
        arn = f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{sid}"
        while time.monotonic() < deadline:
            item = self.decision(sid)
            if item is not None:
                try:
                    status = sfn.describe_execution(executionArn=arn)["status"]
                except sfn.exceptions.ExecutionDoesNotExist:
                    status = "NONE"
                if status != "RUNNING":
                    return item
            time.sleep(0.2)
        return None

    def execution_history(self, sid: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        arn = f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{sid}"
        events: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs = {"executionArn": arn, "maxResults": 1000} | ({"nextToken": token} if token else {})
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def log_lines(self, function_name: str | None = None) -> Iterator[dict[str, Any]]:
        """Every JSON log record the functions wrote, from CloudWatch Logs."""
        logs = self.client("logs")
        groups = (
            [self.log_group(function_name)]
            if function_name
            else [
                g["logGroupName"]
                for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
            ]
        )
        for group in groups:
            for stream in logs.describe_log_streams(logGroupName=group).get("logStreams", []):
                for event in logs.get_log_events(
                    logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
                )["events"]:
                    try:
                        yield json.loads(event["message"])
                    except ValueError:
                        continue


def object_lock_configuration(properties: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """A bucket's ObjectLockConfiguration as the S3 API takes it, parameters resolved; {} when none."""
    config = properties.get("ObjectLockConfiguration")
    if not properties.get("ObjectLockEnabled") or not config:
        return {}

    def resolve(value: Any) -> Any:
        return parameters[value["Ref"]] if isinstance(value, dict) and "Ref" in value else value

    out: dict[str, Any] = {"ObjectLockEnabled": config.get("ObjectLockEnabled", "Enabled")}
    retention = (config.get("Rule") or {}).get("DefaultRetention")
    if retention:
        rule: dict[str, Any] = {"Mode": resolve(retention["Mode"])}
        for unit in ("Days", "Years"):
            if unit in retention:
                rule[unit] = int(resolve(retention[unit]))
        out["Rule"] = {"DefaultRetention": rule}
    return out


def _sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_url.rsplit('/', 1)[-1]}",
        "awsRegion": REGION,
    }


def _object_key(body: str) -> str:
    """The object key of an admission message (an S3 ``Object Created`` event), "" when unreadable."""
    try:
        return str(json.loads(body)["detail"]["object"]["key"])
    except (ValueError, KeyError, TypeError):
        return ""


def _require_free(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StackError(
                f"port {port} is in use (another `kycscreen up`?); choose one with --port"
            ) from exc


def _epoch_seconds(value: Any) -> float:
    """boto3 parses a stream record's ApproximateCreationDateTime; the wire format is epoch seconds."""
    from datetime import datetime

    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(type(value).__name__)


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _default_log_path(state_dir: Path | None) -> Path:
    if state_dir is not None:
        return state_dir.parent / f"{state_dir.name}.log"
    return Path(tempfile.gettempdir()) / f"kycscreen-{os.getuid()}" / "stack.log"


@contextmanager
def running_stack(settings: LocalStackSettings | None = None) -> Iterator[LocalStack]:
    stack = LocalStack(settings)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
