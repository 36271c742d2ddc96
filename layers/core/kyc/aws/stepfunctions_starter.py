"""Starting screenings: one execution per submission, named by its id, with admission control."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from kyc.aws.clients import client


class StartOutcome(StrEnum):
    STARTED = "STARTED"
    DUPLICATE = "DUPLICATE"


class StepFunctionsStarter:
    def __init__(self, state_machine_arn: str, sfn_client: Any = None) -> None:
        self._arn = state_machine_arn
        self._sfn = sfn_client or client("stepfunctions")

    def start(self, name: str, execution_input: dict[str, Any]) -> StartOutcome:
        """Start ``name``; an existing execution of that name means the event was a duplicate."""
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(execution_input))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return StartOutcome.DUPLICATE
            raise
        return StartOutcome.STARTED

    def running_count(self, limit: int) -> int:
        """Running executions, counted up to ``limit`` (reads at most one page)."""
        response = self._sfn.list_executions(
            stateMachineArn=self._arn, statusFilter="RUNNING", maxResults=max(1, min(limit, 1000))
        )
        return len(response.get("executions", []))
