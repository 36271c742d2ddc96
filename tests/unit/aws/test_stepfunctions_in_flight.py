"""The running screenings, read from Step Functions (moto): every other running execution of the
same state machine with its submission id and receipt time; ended ones and foreign inputs left out."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from kyc.aws.stepfunctions_in_flight import StepFunctionsInFlight, state_machine_arn
from kyc.domain.reuse import InFlight

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def test_state_machine_arn_from_an_execution_arn() -> None:
    arn = "arn:aws:states:eu-west-1:123456789012:execution:kyc-screening:abc"
    assert state_machine_arn(arn) == "arn:aws:states:eu-west-1:123456789012:stateMachine:kyc-screening"
    with pytest.raises(ValueError):
        state_machine_arn("arn:aws:states:eu-west-1:123456789012:stateMachine:kyc-screening")


def test_running_lists_the_other_screenings_with_their_receipt_times() -> None:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="kyc-screening", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        other = sfn.create_state_machine(
            name="kyc-other", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]

        def start(arn: str, name: str, body: dict) -> str:
            return sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(body))["executionArn"]

        def screening(sid: str, at: str) -> dict:
            return {"submission": {"submission_id": sid, "received_at": at}, "config": {}}

        own = start(machine, "B", screening("B", "2026-12-06T20:00:02+00:00"))
        start(machine, "A", screening("A", "2026-12-06T20:00:01+00:00"))
        ended = start(machine, "C", screening("C", "2026-12-06T20:00:00+00:00"))
        sfn.stop_execution(executionArn=ended)
        start(machine, "X", {"not": "a screening"})
        start(other, "D", screening("D", "2026-12-06T20:00:00+00:00"))  # another state machine
        witness = StepFunctionsInFlight(sfn)
        assert witness.running(own) == [InFlight("A", "2026-12-06T20:00:01+00:00")]
        assert witness.running(own) == [InFlight("A", "2026-12-06T20:00:01+00:00")]  # cached inputs
