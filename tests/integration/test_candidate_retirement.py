"""Issue 21 retire: a rejected candidate's endpoint stops billing, through the loop's own steps.

Journey on the local stack (moto's server over HTTP, the template's functions): two candidates
registered and approved (each its own shadow endpoint) -> one promoted -> rejecting the one production
serves is refused and its endpoint stays -> rejecting the shadowed one deletes its endpoint and stops its
shadow traffic -> a repeated rejection is a no-op -> roll back -> the first is rejected again and its
endpoint goes too -> a rollback that would point production at a deleted endpoint is refused.

Oracles: SageMaker's DescribeEndpoint/DescribeEndpointConfig (what exists), SSM's parameter history
(what production and the shadow name), the EMF metrics in the functions' logs; never the code's record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kyclocal import loop
from kyclocal.alarms import datapoints_from_emf
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.integration.test_loop_state import FRAMES, _cli, _history, candidate, champion  # noqa: F401

pytestmark = pytest.mark.integration


def _status(stack: LocalStack, endpoint: str) -> str | None:
    """SageMaker's own answer: the endpoint's status, None when there is none."""
    sm = stack.client("sagemaker")
    try:
        return sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    except sm.exceptions.ClientError as exc:
        assert "Could not find endpoint" in str(exc) or "ValidationException" in str(exc), exc
        return None


def _counted(stack: LocalStack, name: str, since: float) -> float:
    return sum(
        p.value for p in datapoints_from_emf(stack.log_lines()) if p.name == name and p.timestamp >= since
    )


def test_a_rejected_candidate_loses_its_endpoint_but_never_the_one_production_serves(
    candidate: Path,  # noqa: F811
    champion: tuple[Path, dict],  # noqa: F811
    capsys,
) -> None:
    settings = LocalStackSettings(
        model="onnx",
        onnx_config=champion[0],
        frame_count=FRAMES,
        policy=champion[1],
        extra_env={"KYC_POLICY_CACHE_SECONDS": "0"},
    )
    with LocalStack(settings) as stack:
        shadow = stack.outputs["ShadowPolicyParameterName"]
        arns, endpoints = [], []
        # the same candidate bytes registered twice: two packages, two endpoints (both registered before
        # either is deployed: a registration re-uploads the model data, which the witness would see change
        # after the first endpoint was deployed)
        for _ in range(2):
            code, registered = _cli(capsys, stack, "register", str(candidate))
            assert code == 0, registered
            arns.append(registered["arn"])
        for arn in arns:
            code, shadowed = _cli(capsys, stack, "approve", arn, "--by", "alice", "--note", "ok")
            assert code == 0 and shadowed["status"] == "SHADOWED", shadowed
            endpoints.append(shadowed["endpoint_name"])
        first, second = arns
        assert [_status(stack, e) for e in endpoints] == ["InService", "InService"]
        code, rescreened = _cli(capsys, stack, "rescreen", first)
        assert code == 0 and rescreened["failed"] == 0, rescreened
        code, promoted = _cli(capsys, stack, "promote", first)
        assert code == 0 and promoted["deployment"]["endpoint_name"] == endpoints[0], promoted
        production = json.loads(_history(stack)[-1]["Value"])
        assert production["deployment"]["endpoint_name"] == endpoints[0]

        # 1. the serving champion is never deleted: refused (exit 1), logged, counted; the endpoint stays
        since = time.time() - 1
        code, said = _cli(capsys, stack, "reject", first, "--by", "bob", "--note", "worse on replays")
        assert code == 1 and "serves production" in str(said), said
        assert _status(stack, endpoints[0]) == "InService"
        assert loop.registry(stack).describe(first).approval_status == "Rejected"
        assert _counted(stack, "CandidateRetireRefused", since) == 1

        # 2. the shadowed candidate: its shadow traffic stops first, then its endpoint is deleted
        assert json.loads(_history(stack, shadow)[-1]["Value"])["deployment"]["model_package_arn"] == second
        shadow_versions = len(_history(stack, shadow))
        code, retired = _cli(capsys, stack, "reject", second, "--by", "bob", "--note", "not needed")
        assert code == 0 and retired["status"] == "RETIRED", retired
        assert _status(stack, endpoints[1]) is None
        sm = stack.client("sagemaker")  # the config and model stay for audit
        assert sm.describe_endpoint_config(EndpointConfigName=endpoints[1])["ProductionVariants"]
        after = _history(stack, shadow)
        assert len(after) == shadow_versions + 1
        assert "deployment" not in json.loads(after[-1]["Value"])
        recorded = loop.registry(stack).describe(second)
        assert recorded.metadata["RetiredEndpoint"] == endpoints[1]
        assert recorded.metadata["RetireOutcome"] == "RETIRED"
        assert recorded.approval_description == "rejected by bob: not needed"

        # 3. a repeated rejection is a no-op: nothing deleted, cleared or recorded again
        code, again = _cli(capsys, stack, "reject", second, "--by", "bob", "--note", "not needed")
        assert code == 0 and again["status"] == "ALREADY_GONE", again
        assert loop.registry(stack).describe(second).metadata == recorded.metadata
        assert len(_history(stack, shadow)) == shadow_versions + 1

        # 4. once production no longer serves it, the first candidate's rejection goes through
        code, back = _cli(capsys, stack, "rollback")
        assert code == 0 and back["deployment"] is None, back
        code, retired = _cli(capsys, stack, "reject", first, "--by", "bob", "--note", "worse on replays")
        assert code == 0 and retired["status"] == "RETIRED", retired
        assert _status(stack, endpoints[0]) is None

        # 5. a rollback to the version that names the deleted endpoint would score nothing: refused
        versions = len(_history(stack))
        code, said = _cli(capsys, stack, "rollback")
        assert code == 1 and "rollback refused" in str(said) and endpoints[0] in str(said), said
        assert len(_history(stack)) == versions
