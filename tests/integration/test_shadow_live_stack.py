"""Issue 21 live shadow traffic on the local stack: shadow scores are recorded, never decided on.

The real state machine and handlers on moto's server, the real model server over HTTP, real PyAV
decoding of real clips. The champion is a constant detector the stack deploys (it PASSes every clip);
the candidate is a real ONNX network deployed in SageMaker on its own endpoint ``<EndpointName>-v9``
(the local server serves what SageMaker says the endpoint serves), which scores every frame ~1
(it would REJECT everything). Faults are injected into the candidate's endpoint only.

Oracles: the champion's constant (0.02 < the 0.3 pass threshold: PASS), the candidate network's
weights (sigmoid(10) ~ 1: REJECT), the upload decided before any shadow existed, and the bound the
shadow client documents (2 attempts x (1 s connect + ShadowTimeoutSeconds) + 0.2 s).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kyc.aws.sagemaker_deployment import deploy
from kyc.domain.promotion import pointer_document
from kyclocal import loop
from kyclocal.alarms import TEMPLATE_PATH, parameter_default
from kyclocal.drills import ConstantModel, drill_policy, emf_sum, make_drill_clip, set_model
from kyclocal.policy_file import role_played_policy
from kyclocal.stack import STACK_NAME, LocalStack, LocalStackSettings
from kycserve.faults import Fault, FaultInjector
from tests.unit.serving.helpers import write_onnx_config

pytestmark = pytest.mark.integration

FRAMES = 8
CHAMPION = ConstantModel(0.02, "1", name="champion")
SHADOW_TIMEOUT_S = float(parameter_default(TEMPLATE_PATH, "ShadowTimeoutSeconds"))
BOUND_S = 2 * (1 + SHADOW_TIMEOUT_S) + 0.2


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, FaultInjector, Path]]:
    from moto.moto_api._internal.models import moto_api_backend

    root = tmp_path_factory.mktemp("shadow-live")
    faults = FaultInjector(slow_seconds=SHADOW_TIMEOUT_S + 3)
    moto_api_backend.reset()
    settings = LocalStackSettings(
        frame_count=FRAMES,
        policy=drill_policy(CHAMPION, FRAMES),
        # see the shadow pointer at once (AWS: within 300 s), and the shadow endpoint's witness each
        # batch (AWS: KYC_MODEL_WITNESS_TTL_S, 60 s): a model swapped under the name is seen at once
        extra_env={"KYC_POLICY_CACHE_SECONDS": "0", "KYC_MODEL_WITNESS_TTL_S": "0"},
        endpoint_faults={},
    )
    try:
        with LocalStack(settings) as stack:
            set_model(stack, CHAMPION)
            endpoint = f"{stack.parameters['EndpointName']}-v9"
            settings.endpoint_faults[endpoint] = faults
            yield stack, faults, root
    finally:
        moto_api_backend.reset()


_SHADOWED: dict[int, str] = {}  # id(stack) -> the candidate's SHA-256, once deployed and pointed at


def _shadow_candidate(stack: LocalStack, root: Path) -> str:
    """Deploy the candidate on its own endpoint as the shadow function does, and point the shadow
    pointer at it (its policy bound to the network's SHA-256), once per stack (uploading the model
    data again would postdate the endpoint: the witness then rightly refuses). Returns its SHA-256."""
    if id(stack) in _SHADOWED:
        return _SHADOWED[id(stack)]
    config = write_onnx_config(root, weight_red=0.0, bias=10.0)  # sigmoid(10) = 0.99995 on every frame
    sha = hashlib.sha256((root / "tiny.onnx").read_bytes()).hexdigest()
    url = loop._upload_model_data(stack, config, sha)
    endpoint = f"{stack.parameters['EndpointName']}-v9"
    deploy(
        endpoint_name=endpoint,
        image="kycserve:local",
        model_data_url=url,
        artefact_sha256=sha,
        role_arn="arn:aws:iam::123456789012:role/model",
        kms_key_id=stack.kms_key_id,
        data_bucket=stack.parameters["ModelDataBucket"],  # the deployment witness vouches for it
        data_prefix=stack.parameters.get("ModelDataPrefix", ""),
        sagemaker_client=stack.client("sagemaker"),
        s3_client=stack.client("s3"),
    )
    policy = role_played_policy(
        {"name": "tiny-red", "version": "1.0.0", "artefact_sha256": sha},
        pass_threshold=0.3,
        reject_threshold=0.8,
        frame_count=FRAMES,
    )
    document = pointer_document(
        policy,
        endpoint_name=endpoint,
        variant="AllTraffic",
        artefact_sha256=sha,
        model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/kyc-models/9",
    )
    stack.client("ssm").put_parameter(
        Name=f"/kyc/{STACK_NAME}/shadow-policy",
        Type="SecureString",
        KeyId=stack.kms_key_id,
        Value=json.dumps(document),
        Overwrite=True,
    )
    _SHADOWED[id(stack)] = sha
    return sha


def _screen(stack: LocalStack, root: Path, person: int) -> tuple[dict[str, Any], dict[str, Any]]:
    clip = make_drill_clip(root, f"applicant-{person}.mp4", person=person)
    sid = stack.upload(clip)["submission_id"]
    record = stack.wait_for_decision(sid, timeout_s=240)
    assert record is not None
    artefacts = record["artefacts"]
    raw = stack.client("s3").get_object(Bucket=stack.resources.audit_bucket, Key=artefacts["scores_key"])
    body = raw["Body"].read()
    assert hashlib.sha256(body).hexdigest() == artefacts["scores_sha256"]
    return record, json.loads(body)


def _score_records(stack: LocalStack) -> set[str]:
    """The score stage's StageDuration records so far (EMF lines of the score function's log)."""
    return {
        json.dumps(r, sort_keys=True)
        for r in stack.log_lines()
        if r.get("stage") == "score" and "StageDuration" in r
    }


def _durations_since(stack: LocalStack, seen: set[str]) -> list[float]:
    """StageDuration{stage=score} (ms) of each batch scored since ``seen`` was taken."""
    return [v for line in _score_records(stack) - seen for v in json.loads(line)["StageDuration"]]


def _drain(faults: FaultInjector) -> None:
    while faults.next() is not None:
        pass


def test_live_shadow_is_recorded_and_never_decided_on(shadowed: Any) -> None:
    stack, faults, root = shadowed
    # before any candidate is shadowed: the champion PASSes, nothing shadow is recorded
    seen = _score_records(stack)
    before, before_scores = _screen(stack, root, person=1)
    assert before["decision"] == "PASS" and "shadow" not in before_scores, before
    alone = _durations_since(stack, seen)

    sha = _shadow_candidate(stack, root)

    # 1. a candidate that would REJECT everything: recorded, and the decision is the champion's
    seen = _score_records(stack)
    record, scores = _screen(stack, root, person=2)
    with_shadow = _durations_since(stack, seen)
    assert record["decision"] == "PASS" and record["reasons"] == before["reasons"], record
    assert record["model"]["artefact_sha256"] == CHAMPION.info.artefact_sha256
    live = scores["shadow"]
    assert live["status"] == "COMPARED" and live["decision"] == "REJECT" and live["agrees"] is False, live
    assert live["model"]["artefact_sha256"] == live["artefact_sha256"] == sha
    assert all(f["p_fake"] > 0.999 for f in live["frames"]) and len(live["frames"]) == FRAMES
    assert emf_sum(stack, "ShadowLiveDisagreements") == 1 and emf_sum(stack, "ShadowLiveCompared") == 1
    print(f"\nscore stage per batch (ms): champion only {alone}, with shadow {with_shadow}")

    # 2. the candidate's endpoint answers 500 on every call: PASS, shadow INCOMPLETE, counted
    faults.add(*[Fault.INTERNAL_FAILURE] * 20)
    failures_before = emf_sum(stack, "ShadowFailures")
    record, scores = _screen(stack, root, person=3)
    assert record["decision"] == "PASS" and record["reasons"] == before["reasons"], record
    live = scores["shadow"]
    assert live["status"] == "INCOMPLETE" and live["decision"] is None, live
    assert {b["reason"] for b in live["batches"]} == {"ENDPOINT_UNAVAILABLE"}
    assert emf_sum(stack, "ShadowFailures") - failures_before == len(live["batches"])
    _drain(faults)  # what this upload did not use

    # 3. the candidate hangs (answers 3 s after the timeout): PASS, within the documented bound
    faults.add(*[Fault.SLOW] * 20)
    seen = _score_records(stack)
    record, scores = _screen(stack, root, person=4)
    hung = _durations_since(stack, seen)
    _drain(faults)
    assert record["decision"] == "PASS" and record["reasons"] == before["reasons"], record
    live = scores["shadow"]
    assert {b["reason"] for b in live["batches"]} == {"ENDPOINT_TIMEOUT"}, live
    assert all(2 * SHADOW_TIMEOUT_S * 0.95 <= b["latency_ms"] / 1000 <= BOUND_S for b in live["batches"])
    assert max(hung) / 1000 < max(alone) / 1000 + BOUND_S + 2.0, (hung, alone)
    print(f"score stage per batch with a hanging shadow (ms): {hung}")


def test_a_shadow_the_score_timeout_cannot_cover_is_skipped_and_the_champion_stands(shadowed: Any) -> None:
    """The score function's real context counts down from its configured Timeout (moto's Lambda, set
    here by UpdateFunctionConfiguration to 20 s, below the shadow's worst case); the local Lambda
    answers an invocation that outlasts it with Sandbox.Timedout, as Lambda does. A hanging candidate
    would hold each batch for 2 x (1 + ShadowTimeoutSeconds) = 22 s: without the remaining-time check
    every batch times out and the champion's PASS becomes a failed score."""
    from kyc.aws.shadow_traffic import shadow_time_needed_s

    stack, faults, root = shadowed
    _shadow_candidate(stack, root)
    function = stack.function_names["ScoreFramesFunction"]
    lam = stack.client("lambda")
    configured = lam.get_function_configuration(FunctionName=function)["Timeout"]
    short = 20
    assert short < BOUND_S < shadow_time_needed_s(SHADOW_TIMEOUT_S)  # the shadow cannot fit
    faults.add(*[Fault.SLOW] * 20)  # were the candidate asked, it would hang
    skipped_before = emf_sum(stack, "ShadowSkipped")
    compared_before = emf_sum(stack, "ShadowLiveCompared")
    lam.update_function_configuration(FunctionName=function, Timeout=short)
    stack.router.enforce_timeouts = True
    try:
        record, scores = _screen(stack, root, person=5)
    finally:
        stack.router.enforce_timeouts = False
        lam.update_function_configuration(FunctionName=function, Timeout=configured)
    unused = 0
    while faults.next() is not None:
        unused += 1
    assert record["decision"] == "PASS", record  # the champion's, as with no shadow at all
    live = scores["shadow"]
    assert live["status"] == "INCOMPLETE" and live["decision"] is None, live
    assert {b["status"] for b in live["batches"]} == {"SKIPPED"}, live["batches"]
    assert {b["reason"] for b in live["batches"]} == {"NOT_ENOUGH_TIME"}
    assert unused == 20  # the candidate was never asked
    assert emf_sum(stack, "ShadowSkipped") - skipped_before == len(live["batches"])
    assert emf_sum(stack, "ShadowLiveCompared") == compared_before
    kept = json.loads(
        stack.client("s3")
        .get_object(
            Bucket=stack.resources.work_bucket, Key=f"scores/{record['submission_id']}/shadow-batch-000.json"
        )["Body"]
        .read()
    )
    assert 0 < kept["remaining_s"] < short and kept["needed_s"] == round(
        shadow_time_needed_s(SHADOW_TIMEOUT_S), 3
    )
    print(f"\nskipped with {kept['remaining_s']} s left of {short} s (needed {kept['needed_s']} s)")


def test_a_model_swapped_under_the_shadow_endpoints_name_is_unwitnessed_and_not_counted(
    shadowed: Any,
) -> None:
    """Another model deployed under the shadow endpoint's name (the local server serves what SageMaker
    says, so it answers with the swapped bytes): the deployment witness names them (hashlib's oracle),
    the block is UNWITNESSED and no comparison is counted. Before, the block was COMPARED (REVIEW
    MODEL_NOT_CALIBRATED from the container's report) and counted as a disagreement of the candidate.
    A container that reports the pointer's hash over other bytes is tests/unit/functions/
    test_shadow_live.py's case: there only the witness tells."""
    from tests.integration.test_deployment_witness import _endpoint, _put_model_data

    stack, faults, root = shadowed
    _drain(faults)
    sha = _shadow_candidate(stack, root)
    endpoint = f"{stack.parameters['EndpointName']}-v9"
    (root / "liar").mkdir(exist_ok=True)
    liar = write_onnx_config(root / "liar", weight_red=0.0, bias=-10.0)  # sigmoid(-10) ~ 0: PASSes all
    liar_sha = hashlib.sha256((root / "liar" / "tiny.onnx").read_bytes()).hexdigest()
    assert liar_sha != sha
    sm = stack.client("sagemaker")
    sm.delete_endpoint(EndpointName=endpoint)
    sm.delete_endpoint_config(EndpointConfigName=endpoint)
    sm.delete_model(ModelName=endpoint)
    _endpoint(stack, endpoint, _put_model_data(stack, "liar", liar), {})
    compared = emf_sum(stack, "ShadowLiveCompared")
    disagreed = emf_sum(stack, "ShadowLiveDisagreements")
    unwitnessed = emf_sum(stack, "ShadowLiveUnwitnessed")

    record, scores = _screen(stack, root, person=6)

    assert record["decision"] == "PASS", record
    live = scores["shadow"]
    assert live["artefact_sha256"] == sha  # what the pointer names
    assert live["status"] == "UNWITNESSED" and live["agrees"] is None, live
    assert live["witness_differs"] == ["model.witness.artefact_sha256"]
    assert live["model_witness"]["artefact_sha256"] == liar_sha
    assert all(f["p_fake"] < 0.001 for f in live["frames"])  # the swapped model answered
    assert live["decision"] == "REVIEW" and "MODEL_NOT_CALIBRATED" in live["reasons"]
    assert emf_sum(stack, "ShadowLiveUnwitnessed") - unwitnessed == 1
    assert emf_sum(stack, "ShadowLiveCompared") == compared
    assert emf_sum(stack, "ShadowLiveDisagreements") == disagreed
