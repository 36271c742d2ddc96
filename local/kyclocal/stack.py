"""The embedded local stack: the deployed design, run on a laptop with no AWS account and no Docker.

- moto in server mode over HTTP stands in for S3, DynamoDB, SQS, EventBridge, Step Functions,
  KMS, CloudWatch Logs and IAM; every handler talks to it through its normal boto3 clients.
- The state machine is the template's own ``statemachines/screening.asl.json``, with the same
  ``DefinitionSubstitutions``, executed by moto's Step Functions engine.
- Lambda tasks run the real handlers (``lambda_router``); SageMaker runtime calls go to the local
  model server (``kycserve``), which speaks the InvokeEndpoint API.
- A run starts as in AWS: an object lands in the intake bucket, S3 emits ``Object Created`` to
  EventBridge, the rule delivers it to the admission queue, and the queue feeds the start function.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import threading
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import boto3
import requests
import yaml
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from kyc.domain.identity import submission_id
from kyclocal.lambda_router import LambdaRouter

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
DEFAULT_ASL = REPO / "statemachines" / "screening.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"

# Logical id -> (function folder, local function name). Names match the template's logical ids.
FUNCTIONS: dict[str, str] = {
    "EraseSubmissionFunction": "erase",
    "StartScreeningFunction": "start",
    "ValidateUploadFunction": "validate",
    "ExtractFramesFunction": "extract",
    "IssueUploadUrlFunction": "presign",
    "NotifyReviewFunction": "notify",
    "ScoreFramesFunction": "score",
    "DecideOutcomeFunction": "decide",
    "ReconcileExecutionFunction": "reconcile",
}


@dataclass
class LocalStackSettings:
    """What a local run may change; everything else follows the template's defaults."""

    model: str = "reference"
    onnx_config: Path | None = None
    upload_prefix: str = "uploads/"
    frame_count: int = 32
    score_max_concurrency: int = 4
    max_running_executions: int = 50
    pass_threshold: float | None = None
    reject_threshold: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    triggers: bool = True  # False: no queue consumer or status rule (kycscreen invoke runs one handler)
    model_faults: Any = None  # a kycserve.faults.FaultInjector: endpoint outages for drills and tests
    # --- lineage/state hooks (kyclocal.state): restored on start, saved on stop; None = in memory only
    state_dir: Path | None = None


@dataclass(frozen=True)
class LocalResources:
    intake_bucket: str = "kyc-local-intake"
    work_bucket: str = "kyc-local-work"
    audit_bucket: str = "kyc-local-audit"
    decisions_table: str = "kyc-local-decisions"
    admission_queue: str = "kyc-local-admission"
    event_bus: str = "kyc-local-decisions"
    decision_events_queue: str = "kyc-local-decision-events"
    review_topic: str = "kyc-local-review"
    review_queue: str = "kyc-local-review-tap"
    state_machine: str = "kyc-local-screening"
    endpoint_name: str = "kyc-local-endpoint"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _CfnLoader(yaml.SafeLoader):
    """Reads template.yaml with CloudFormation's short tags kept as {"Tag": value} mappings."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {tag_suffix: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def read_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506  # nosec B506 - _CfnLoader is a SafeLoader subclass


def state_machine_definition(path: Path = TEMPLATE) -> tuple[Path, dict[str, Any]]:
    """The ASL file and DefinitionSubstitutions the template deploys (the local run uses the same)."""
    template = read_template(path)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::StateMachine":
            props = resource["Properties"]
            return REPO / props["DefinitionUri"], dict(props.get("DefinitionSubstitutions", {}))
    raise LookupError("template.yaml declares no AWS::Serverless::StateMachine")


def parameter_environment(path: Path = TEMPLATE) -> dict[str, str]:
    """Function variables the template sets from its parameters, at the parameters' defaults.

    The local stack runs with these, so a local decision uses the same thresholds, limits and
    policy version as a deployment with default parameters.
    """
    template = read_template(path)
    parameters = template.get("Parameters", {})
    env: dict[str, str] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            if isinstance(value, dict) and value.get("Ref") in parameters:
                default = parameters[value["Ref"]].get("Default")
                if default is not None and str(default) != "":
                    env[name] = str(default)
    return env


class LocalStack:
    """Start with ``with LocalStack() as stack:``; upload with ``stack.submit(path)``."""

    def __init__(self, settings: LocalStackSettings | None = None) -> None:
        self.settings = settings or LocalStackSettings()
        self.resources = LocalResources()
        self.port = _free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None
        self._model_server: Any = None
        self._pump: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self.reconciled: set[str] = set()
        self._stop = threading.Event()
        self._moto_config: dict[str, Any] = {}
        self._saved_env: dict[str, str | None] = {}
        self.router = LambdaRouter(
            {name: REPO / "functions" / folder / "app.py" for name, folder in FUNCTIONS.items()},
            log_sink=self._write_logs,
        )
        self.kms_key_id = ""
        self.review_topic_arn = ""
        self.state_machine_arn = ""
        self.model_url = ""

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from kyc.aws.clients import client

        client.cache_clear()  # clients are per process; a new stack has a new endpoint
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log is not ours to show
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        from moto.moto_api._internal.models import moto_api_backend

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
        self._create_resources()
        self._set_env(self._function_env())
        if self.settings.state_dir is not None:  # --- lineage/state hook: before anything can run
            from kyclocal.state import restore_state

            restore_state(self, self.settings.state_dir)
        self.router.install()
        if self.settings.triggers:
            self._pump = threading.Thread(target=self._pump_admissions, name="admission-pump", daemon=True)
            self._pump.start()
            self._watcher = threading.Thread(target=self._watch_executions, name="status-rule", daemon=True)
            self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._pump, self._watcher):
            if thread:
                thread.join(timeout=10)
        if self._model_server is not None:
            from kycserve.server import stop

            stop(self._model_server, self._model_thread)
        if self._server:
            if self.settings.state_dir is not None:  # --- lineage/state hook: while moto still answers
                from kyclocal.state import save_state

                save_state(self, self.settings.state_dir)
            self._server.stop()
            default_user_config.clear()
            default_user_config.update(self._moto_config)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint_url)

    # ----------------------------------------------------------------- set-up
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
        self._set_env({"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.model_url})

    def _function_env(self) -> dict[str, str]:
        r, s = self.resources, self.settings
        env = (parameter_environment() if TEMPLATE.exists() else {}) | {
            "POWERTOOLS_SERVICE_NAME": "kyc-screening",
            "POWERTOOLS_METRICS_NAMESPACE": "KycScreening",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
            "KYC_STATE_MACHINE_ARN": self.state_machine_arn,
            "KYC_SCORE_MAX_CONCURRENCY": str(s.score_max_concurrency),
            "KYC_MAX_RUNNING_EXECUTIONS": str(s.max_running_executions),
            "KYC_INTAKE_BUCKET": r.intake_bucket,
            "KYC_UPLOAD_PREFIX": s.upload_prefix,
            "KYC_WORK_BUCKET": r.work_bucket,
            "KYC_AUDIT_BUCKET": r.audit_bucket,
            "KYC_DECISIONS_TABLE": r.decisions_table,
            "KYC_KMS_KEY_ID": self.kms_key_id,
            "KYC_ENDPOINT_NAME": r.endpoint_name,
            "KYC_EVENT_BUS_NAME": r.event_bus,
            "KYC_REVIEW_TOPIC_ARN": self.review_topic_arn,
            "KYC_FRAME_COUNT": str(s.frame_count),
            "KYC_RETENTION_DAYS": "1825",
        }
        if s.pass_threshold is not None:
            env["KYC_PASS_THRESHOLD"] = str(s.pass_threshold)
        if s.reject_threshold is not None:
            env["KYC_REJECT_THRESHOLD"] = str(s.reject_threshold)
        return env | s.extra_env

    def _create_resources(self) -> None:
        r = self.resources
        kms = self.client("kms")
        self.kms_key_id = kms.create_key(Description="kyc-local")["KeyMetadata"]["Arn"]
        s3 = self.client("s3")
        for bucket in (r.intake_bucket, r.work_bucket, r.audit_bucket):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": self.kms_key_id,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
        s3.put_bucket_notification_configuration(
            Bucket=r.intake_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        self._create_table()
        sqs = self.client("sqs")
        queue_url = sqs.create_queue(QueueName=r.admission_queue, Attributes={"VisibilityTimeout": "2"})[
            "QueueUrl"
        ]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events_queue = sqs.create_queue(QueueName=r.decision_events_queue)["QueueUrl"]
        events_queue_arn = sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.admission_queue_url = queue_url
        self.decision_events_queue_url = events_queue
        sns = self.client("sns")
        self.review_topic_arn = sns.create_topic(
            Name=r.review_topic, Attributes={"KmsMasterKeyId": self.kms_key_id}
        )["TopicArn"]
        self.review_queue_url = sqs.create_queue(QueueName=r.review_queue)["QueueUrl"]
        review_queue_arn = sqs.get_queue_attributes(
            QueueUrl=self.review_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=self.review_topic_arn,
            Protocol="sqs",
            Endpoint=review_queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        events = self.client("events")
        events.put_rule(
            Name="kyc-local-intake-object-created",
            EventPattern=json.dumps(
                {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {
                        "bucket": {"name": [r.intake_bucket]},
                        "object": {"key": [{"prefix": self.settings.upload_prefix}]},
                    },
                }
            ),
        )
        events.put_targets(
            Rule="kyc-local-intake-object-created", Targets=[{"Id": "admission", "Arn": queue_arn}]
        )
        events.create_event_bus(Name=r.event_bus)
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
        role = self.client("iam").create_role(
            RoleName="kyc-local-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lam = self.client("lambda")
        arns: dict[str, str] = {}
        for name, folder in FUNCTIONS.items():
            arns[name] = lam.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": _placeholder_zip(folder)},
                Timeout=300,
                MemorySize=1024,
            )["FunctionArn"]
        asl_path, substitutions = self._definition()
        definition = asl_path.read_text(encoding="utf-8")
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", self._resolve(value, arns))
        self.asl_path = asl_path
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=r.state_machine, definition=definition, roleArn=role, type="STANDARD"
        )["stateMachineArn"]

    def _definition(self) -> tuple[Path, dict[str, Any]]:
        if TEMPLATE.exists():
            return state_machine_definition(TEMPLATE)
        return DEFAULT_ASL, {f"{name}Arn": {"GetAtt": [name, "Arn"]} for name in FUNCTIONS} | {
            "DecisionsTableName": {"Ref": "DecisionsTable"}
        }

    def _resolve(self, value: Any, arns: dict[str, str]) -> str:
        """Map the template's !GetAtt/!Ref in DefinitionSubstitutions onto the local resources."""
        if isinstance(value, dict) and "GetAtt" in value:
            return arns[value["GetAtt"][0]]
        if isinstance(value, dict) and "Ref" in value:
            return {"DecisionsTable": self.resources.decisions_table, "AWS::Partition": "aws"}[value["Ref"]]
        return str(value)

    def _create_table(self) -> None:
        r = self.resources
        self.client("dynamodb").create_table(
            TableName=r.decisions_table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": "S"}
                for n in ("submission_id", "decision", "decided_at", "client_reference")
            ],
            KeySchema=[{"AttributeName": "submission_id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "ReviewQueueIndex",
                    "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [
                        {"AttributeName": "decision", "KeyType": "HASH"},
                        {"AttributeName": "decided_at", "KeyType": "RANGE"},
                    ],
                },
                {
                    "IndexName": "ClientReferenceIndex",
                    "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [
                        {"AttributeName": "client_reference", "KeyType": "HASH"},
                        {"AttributeName": "decided_at", "KeyType": "RANGE"},
                    ],
                },
            ],
            SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": self.kms_key_id},
        )

    # ----------------------------------------------------------------- the event source mapping
    def _pump_admissions(self) -> None:
        """The SQS event source mapping: batches from the admission queue to the start function."""
        sqs = self.client("sqs")
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.admission_queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                raise
            if not messages:
                continue
            event = {"Records": [_sqs_record(m, self.admission_queue_url) for m in messages]}
            payload, errored = self.router.invoke("StartScreeningFunction", json.dumps(event))
            failed = (
                set()
                if errored
                else {f["itemIdentifier"] for f in json.loads(payload).get("batchItemFailures", [])}
            )
            if errored:
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(
                        QueueUrl=self.admission_queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )

    def _watch_executions(self) -> None:
        """The template's ReconcileExecutionRule: moto emits no Step Functions status-change events,
        so poll for executions that failed, timed out or were aborted and hand each, once, to the
        reconcile function in the shape EventBridge delivers."""
        sfn = self.client("stepfunctions")
        while not self._stop.wait(0.5):
            try:
                for status in ("FAILED", "TIMED_OUT", "ABORTED"):
                    page = sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter=status)
                    for execution in page["executions"]:
                        if execution["executionArn"] not in self.reconciled:
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

    # ----------------------------------------------------------------- logs
    def _write_logs(self, function_name: str, request_id: str, lines: list[str]) -> None:
        """What a Lambda prints lands in its log group, as in AWS; read back by `kycscreen lineage`."""
        if not lines:
            return
        logs = self.client("logs")
        group = f"/aws/lambda/{function_name}"
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
        key = key or f"{self.settings.upload_prefix}{path.name}"
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
            "submission_id": submission_id(self.resources.intake_bucket, key, version, etag),
        }

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
            [f"/aws/lambda/{function_name}"]
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


def _placeholder_zip(folder: str) -> bytes:
    """moto needs a deployment package to register a function; the router runs the real file."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", (REPO / "functions" / folder / "app.py").read_text(encoding="utf-8"))
    return buffer.getvalue()


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


@contextmanager
def running_stack(settings: LocalStackSettings | None = None) -> Iterator[LocalStack]:
    stack = LocalStack(settings)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
