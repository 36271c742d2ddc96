"""The screenings still running, from the state machine's own record (a witness no upload controls).

The reuse check asks which submissions received before its own are still being screened
(``kyc.domain.reuse.unsettled_earlier``): ListExecutions (RUNNING) of the state machine that runs
it, then each execution's input (DescribeExecution) for the submission id and receipt time. An
execution's input never changes, so it is read once per warm container.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kyc.aws.clients import client
from kyc.domain.reuse import InFlight

_CACHE_LIMIT = 4096


def state_machine_arn(execution_arn: str) -> str:
    """``arn:<p>:states:<r>:<a>:execution:<machine>:<name>`` -> the machine's ARN."""
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[5] != "execution":
        raise ValueError(f"not an execution ARN: {execution_arn!r}")
    return ":".join([*parts[:5], "stateMachine", parts[6]])


class StepFunctionsInFlight:
    def __init__(self, sfn_client: Any = None, *, max_workers: int = 8) -> None:
        self._sfn = sfn_client or client("stepfunctions")
        self._workers = max_workers
        self._inputs: dict[str, InFlight | None] = {}

    def running(self, own_execution_arn: str) -> list[InFlight]:
        """Every other running screening of this execution's state machine."""
        arns = []
        for page in self._sfn.get_paginator("list_executions").paginate(
            stateMachineArn=state_machine_arn(own_execution_arn), statusFilter="RUNNING"
        ):
            arns.extend(e["executionArn"] for e in page.get("executions", []))
        arns = [a for a in arns if a != own_execution_arn]
        unknown = [a for a in arns if a not in self._inputs]
        if len(self._inputs) + len(unknown) > _CACHE_LIMIT:
            self._inputs.clear()
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            for arn, found in zip(unknown, pool.map(self._describe, unknown), strict=True):
                self._inputs[arn] = found
        return [f for a in arns if (f := self._inputs.get(a)) is not None]

    def _describe(self, execution_arn: str) -> InFlight | None:
        described = self._sfn.describe_execution(executionArn=execution_arn)
        try:
            submission = json.loads(described.get("input") or "{}")["submission"]
            return InFlight(str(submission["submission_id"]), str(submission["received_at"]))
        except (ValueError, KeyError, TypeError):
            return None  # not a screening's input: nothing to wait for
