"""Reading an execution back: its input, when the status-change event did not carry it."""

from __future__ import annotations

import json
from typing import Any

from kyc.aws.clients import client


class StepFunctionsExecutions:
    def __init__(self, sfn_client: Any = None) -> None:
        self._sfn = sfn_client

    def input_of(self, execution_arn: str) -> dict[str, Any]:
        """The execution's input. Needs ``states:DescribeExecution`` and, the history being encrypted
        with the stack key, ``kms:Decrypt`` under the state machine's encryption context."""
        if self._sfn is None:
            self._sfn = client("stepfunctions")
        return json.loads(self._sfn.describe_execution(executionArn=execution_arn).get("input") or "{}")
