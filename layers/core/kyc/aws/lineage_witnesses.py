"""Where strict lineage reads its witnesses: the stage functions' own log groups, the stored objects
(by version) and the Step Functions execution the submission id names.

Read-only. The domain (``kyc.domain.lineage.check_lineage``) judges what is read; ``kycscreen
lineage`` and the scheduled verifier (functions/verifier) both read through these classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from kyc.aws.clients import client
from kyc.domain.lineage import LOG_GROUP_FIELD, ExecutionWitness, witness_from_history

# Which function logs each stage (template.yaml logical ids): its log group is the only one trusted.
STAGE_FUNCTIONS = {
    "validate": "ValidateUploadFunction",
    "extract": "ExtractFramesFunction",
    "faces": "DetectFacesFunction",
    "score": "ScoreFramesFunction",
    "reuse": "CheckReuseFunction",
    "decide": "DecideOutcomeFunction",
    "reconcile": "ReconcileExecutionFunction",
    "notify": "NotifyReviewFunction",
    "erase": "EraseSubmissionFunction",
}


class StageLogs:
    """The JSON records naming one submission in each stage function's own log group, found by a
    quoted-term ``FilterLogEvents`` (the id is 64 hex digits: no false friend), each tagged with the
    group it came from. Records from any other group are never read, so never trusted."""

    def __init__(self, stage_groups: Mapping[str, str], logs_client: Any = None) -> None:
        self.stage_groups = dict(stage_groups)
        self._logs = logs_client or client("logs")

    def records(self, submission_id: str, since_ms: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for group in sorted(set(self.stage_groups.values())):
            out.extend(self._group_records(group, submission_id, since_ms))
        return out

    def _group_records(
        self, group: str, submission_id: str, since_ms: int | None
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"logGroupName": group, "filterPattern": f'"{submission_id}"'}
        if since_ms is not None:
            kwargs["startTime"] = since_ms
        try:
            pages = list(self._logs.get_paginator("filter_log_events").paginate(**kwargs))
        except self._logs.exceptions.ResourceNotFoundException:
            return  # a function that never ran has no group yet
        for page in pages:
            for event in page.get("events", []):
                try:
                    record = json.loads(event["message"])
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record | {LOG_GROUP_FIELD: group}


class StoredObjects:
    """Object bytes by key (latest) or by pinned version; None when gone."""

    def __init__(self, s3_client: Any = None) -> None:
        self._s3 = s3_client or client("s3")

    def fetch(self, bucket: str, key: str) -> bytes | None:
        return self.fetch_version(bucket, key, None)

    def fetch_version(self, bucket: str, key: str, version_id: str | None) -> bytes | None:
        kwargs = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
        try:
            return self._s3.get_object(**kwargs)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchVersion", "404", "NoSuchBucket"):
                return None
            raise


class ExecutionHistory:
    """The execution Step Functions ran under the submission id's name (never the ARN a record
    claims): DescribeExecution and its full history, written by the service."""

    def __init__(self, state_machine_arn: str, sfn_client: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._sfn = sfn_client or client("stepfunctions")

    def arn(self, submission_id: str) -> str:
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{submission_id}"

    def witness(self, submission_id: str) -> ExecutionWitness:
        arn = self.arn(submission_id)
        try:
            execution = self._sfn.describe_execution(executionArn=arn)
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return witness_from_history(arn, None, [])
        return witness_from_history(arn, execution, self.history(arn))

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for page in self._sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            events.extend(page["events"])
        return events
