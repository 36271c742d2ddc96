"""Issue 21 live shadow traffic: ScoreFrames also scores on the shadowed candidate, DecideOutcome records
what it would decide, and neither ever changes the decision.

Real parts: the local model server over HTTP (the champion is the tiny-red ONNX network; the shadow
endpoint name is served by a stand-in candidate through the server's own ``endpoints`` hook, as the
local stack serves what SageMaker says), moto for S3/SSM/DynamoDB. The oracle for "never decided on"
is the same upload decided with no shadow at all: decision, reasons, score and policy must be equal.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from kyc.aws.s3_object_store import canonical_json
from kyc.aws.sagemaker_deployment import deploy
from kyc.domain.contract import FrameImage, FrameScore
from kyc.domain.promotion import pointer_document
from kyclocal.drills import ConstantModel
from kyclocal.policy_file import role_played_policy
from kycserve.server import start_server, stop
from tests.unit.functions.handler_loader import FakeContext, load_handler
from tests.unit.functions.test_score_decide import (  # noqa: F401 (fixtures)
    AUDIT,
    SID,
    TABLE,
    WORK,
    _store_frames,
    _submission,
    aws,
    model_config,
)

CHAMPION_ENDPOINT = "kyc-endpoint"
SHADOW_ENDPOINT = "kyc-endpoint-v2"  # a candidate's own endpoint: <EndpointName>-v<package version>
SHADOW_PARAMETER = "/kyc/test/shadow-policy"
BLUE = (250, 0, 0)
TIMEOUT_S = 1.0


class Candidate:
    """The shadowed candidate: a constant detector, or one that fails the way endpoints do."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._model = ConstantModel(0.99, "2", name="candidate")  # REJECTs everything
        self.info = self._model.info
        self.calls = 0

    def describe(self) -> dict[str, str]:
        return self._model.describe()

    def predict(self, frames: Sequence[FrameImage]) -> list[FrameScore]:
        self.calls += 1
        if self.mode == "error":
            raise RuntimeError("candidate bug")  # the container answers 500: ModelError
        if self.mode == "hang":
            time.sleep(4 * TIMEOUT_S)
        scores = self._model.predict(frames)
        return scores[:-1] if self.mode == "garbage" else scores  # a frame missing: contract violation


CHAMPION = ConstantModel(0.02, "1", name="champion")  # PASSes these frames under 0.3 / 0.8
MODEL_BUCKET = "models"


def _deploy_champion(aws: dict[str, Any]) -> None:  # noqa: F811
    """SageMaker (moto) and S3 say the champion endpoint serves CHAMPION's bytes: the deployment
    witness binds the champion's calibration, so the champion decides PASS on its own."""
    aws["s3"].create_bucket(Bucket=MODEL_BUCKET)
    _deploy(aws, CHAMPION_ENDPOINT, CHAMPION, "champion/model.onnx")


def _deploy(aws: dict[str, Any], endpoint: str, model: Any, key: str) -> None:  # noqa: F811
    """``model``'s bytes in S3 (SHA-256 verified by S3) and an endpoint SageMaker says serves them."""
    aws["s3"].put_object(Bucket=MODEL_BUCKET, Key=key, Body=model.artefact(), ChecksumAlgorithm="SHA256")
    deploy(
        endpoint_name=endpoint,
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/kyc:1",
        model_data_url=f"s3://{MODEL_BUCKET}/{key}",
        artefact_sha256=hashlib.sha256(model.artefact()).hexdigest(),
        role_arn="arn:aws:iam::123456789012:role/model",
        kms_key_id="alias/aws/sagemaker",
        data_bucket=MODEL_BUCKET,
        sagemaker_client=boto3.client("sagemaker", region_name="us-east-1"),
        s3_client=aws["s3"],
    )


def _deploy_candidate(aws: dict[str, Any], model: Any) -> None:  # noqa: F811
    """Deploy ``model`` under the shadow endpoint's name (replacing whatever is there), its bytes where
    candidates live (the shadow witness reads ``candidates/`` only)."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    try:
        sm.delete_endpoint(EndpointName=SHADOW_ENDPOINT)
        sm.delete_endpoint_config(EndpointConfigName=SHADOW_ENDPOINT)
        sm.delete_model(ModelName=SHADOW_ENDPOINT)
    except sm.exceptions.ClientError:
        pass  # nothing deployed yet
    sha = hashlib.sha256(model.artefact()).hexdigest()
    _deploy(aws, SHADOW_ENDPOINT, model, f"candidates/{sha}/model.onnx")


@pytest.fixture
def servers(aws: dict[str, Any]) -> Iterator[Any]:  # noqa: F811
    _deploy_champion(aws)
    server, thread, url = start_server(CHAMPION)
    server.candidate = None

    def endpoints(name: str) -> Any:
        if name == SHADOW_ENDPOINT and server.candidate is not None:
            return server.candidate
        if name != CHAMPION_ENDPOINT:
            raise LookupError(name)
        return None

    server.endpoints = endpoints
    yield server, url
    stop(server, thread)


def _champion_policy() -> str:
    document = role_played_policy(
        CHAMPION.info.to_dict(),
        pass_threshold=0.3,
        reject_threshold=0.8,
        min_frames_scored=2,
        face_evidence_source="model",
    )
    return json.dumps(document)


def _shadow_pointer(candidate: Candidate, raw: str | None = None) -> None:
    _deploy_candidate({"s3": boto3.client("s3", region_name="us-east-1")}, candidate._model)
    policy = role_played_policy(
        candidate.info.to_dict(),
        pass_threshold=0.3,
        reject_threshold=0.8,
        min_frames_scored=2,
        face_evidence_source="model",
    )
    document = pointer_document(
        policy,
        endpoint_name=SHADOW_ENDPOINT,
        variant="AllTraffic",
        artefact_sha256=candidate.info.artefact_sha256,
        model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/kyc-models/2",
    )
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=SHADOW_PARAMETER, Type="String", Value=raw or json.dumps(document), Overwrite=True
    )


def _score_and_decide(
    aws: dict[str, Any],  # noqa: F811
    url: str,
    model_config: Path,  # noqa: F811
    batches: int = 2,
    context: Any = FakeContext,
) -> dict[str, Any]:
    """Two batches of blue frames through the real score handler, then the decide handler
    (``context``: makes each invocation's Lambda context)."""
    mp = aws["monkeypatch"]
    mp.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/kyc/test/policy", Type="String", Value=_champion_policy(), Overwrite=True)
    score = load_handler(
        "score",
        {
            "KYC_WORK_BUCKET": WORK,
            "KYC_ENDPOINT_NAME": CHAMPION_ENDPOINT,
            "KYC_SHADOW_POLICY_PARAMETER": SHADOW_PARAMETER,
            "KYC_SHADOW_TIMEOUT_SECONDS": str(TIMEOUT_S),
            "KYC_POLICY_CACHE_SECONDS": "0",
            "KYC_MODEL_DATA_BUCKET": MODEL_BUCKET,
            "KYC_MODEL_WITNESS_TTL_S": "0",
        },
        mp,
    )
    manifest_key = _store_frames(aws, [BLUE] * 2 * batches)
    manifest = json.loads(aws["s3"].get_object(Bucket=WORK, Key=manifest_key)["Body"].read())
    manifest["batches"] = [{"batch_index": b, "frames": [2 * b, 2 * b + 1]} for b in range(batches)]
    aws["s3"].put_object(Bucket=WORK, Key=manifest_key, Body=canonical_json(manifest))
    scoring, elapsed = [], []
    for b in range(batches):
        started = time.perf_counter()
        scoring.append(
            score.lambda_handler(
                {"submission_id": SID, "manifest_key": manifest_key, "batch_index": b},
                context(),
            )
        )
        elapsed.append(time.perf_counter() - started)
    raw = aws["s3"].get_object(Bucket=WORK, Key=manifest_key)["Body"].read()
    state = {
        "submission": _submission(),
        "validation": {"accepted": True, "sha256": "f" * 64, "size": 10, "media": {"codec": "h264"}},
        "extraction": {
            "manifest_key": manifest_key,
            "manifest_sha256": hashlib.sha256(raw).hexdigest(),
            "frames_sampled": 2 * batches,
        },
        "scoring": scoring,
    }
    decide = load_handler(
        "decide",
        {
            "KYC_WORK_BUCKET": WORK,
            "KYC_AUDIT_BUCKET": AUDIT,
            "KYC_DECISIONS_TABLE": TABLE,
            "KYC_FACE_EVIDENCE_SOURCE": "model",
            "KYC_POLICY_PARAMETER": "/kyc/test/policy",
        },
        mp,
    )
    result = decide.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": state}, FakeContext()
    )
    from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore

    item = DynamoDBDecisionStore(TABLE, aws["ddb"]).get(SID)
    scores = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/scores.json")["Body"].read())
    lineage = json.loads(
        aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/lineage.json")["Body"].read()
    )
    return {
        "result": result,
        "item": item,
        "scores": scores,
        "lineage": lineage,
        "scoring": scoring,
        "elapsed": elapsed,
    }


def _reset(aws: dict[str, Any]) -> None:  # noqa: F811
    """Forget the decision and its evidence: the same upload, decided again under other conditions."""
    aws["ddb"].delete_item(TableName=TABLE, Key={"submission_id": {"S": SID}})
    for bucket in (WORK, AUDIT):
        for obj in aws["s3"].list_objects_v2(Bucket=bucket).get("Contents", []):
            aws["s3"].delete_object(Bucket=bucket, Key=obj["Key"])


def _decision(run: dict[str, Any]) -> tuple:
    item = run["item"]
    return item["decision"], item["reasons"], item.get("score"), item["policy"]["version"]


def _emf(out: str, name: str) -> float:
    total = 0.0
    for line in out.splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            document = json.loads(line)
            values = document.get(name)
            if isinstance(values, list) and "_aws" in document:
                total += sum(values)
    return total


def test_a_shadow_that_rejects_everything_is_recorded_and_changes_nothing(
    aws: dict[str, Any],  # noqa: F811
    servers: Any,
    model_config: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, url = servers
    baseline = _score_and_decide(aws, url, model_config)  # no shadow pointer: nothing shadowed
    assert "shadow" not in baseline["scores"] and all(b["shadow"] is None for b in baseline["scoring"])
    assert baseline["item"]["decision"] == "PASS", baseline["item"]  # the champion's 0.02 on every frame
    _reset(aws)
    candidate = Candidate("reject")
    server.candidate = candidate
    _shadow_pointer(candidate)
    capsys.readouterr()

    run = _score_and_decide(aws, url, model_config)

    assert _decision(run) == _decision(baseline)  # the shadow decided nothing
    assert run["result"]["decision"] == "PASS" and candidate.calls == 2
    block = run["scores"]["shadow"]
    assert block["status"] == "COMPARED" and block["decision"] == "REJECT" and block["agrees"] is False, (
        block["reasons"]
    )
    assert block["endpoint_name"] == SHADOW_ENDPOINT
    assert block["artefact_sha256"] == candidate.info.artefact_sha256 == block["model"]["artefact_sha256"]
    assert block["pointer"] == {"parameter": SHADOW_PARAMETER, "parameter_version": 1}
    assert [f["p_fake"] for f in block["frames"]] == [0.99] * 4
    assert run["lineage"]["decision"]["shadow"]["decision"] == "REJECT"
    assert "frames" not in run["lineage"]["decision"]["shadow"]
    kept = json.loads(aws["s3"].get_object(Bucket=WORK, Key=f"scores/{SID}/shadow.json")["Body"].read())
    assert kept == block
    out = capsys.readouterr().out
    assert _emf(out, "ShadowLiveCompared") == 1 and _emf(out, "ShadowLiveDisagreements") == 1
    assert _emf(out, "ShadowFailures") == 0


@pytest.mark.parametrize("mode", ["error", "hang", "garbage", "no-endpoint", "bad-pointer"])
def test_a_failing_shadow_never_turns_the_decision_into_error_nor_delays_it_unbounded(
    aws: dict[str, Any],  # noqa: F811
    servers: Any,
    model_config: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    server, url = servers
    baseline = _score_and_decide(aws, url, model_config)
    _reset(aws)
    candidate = Candidate(mode)
    server.candidate = None if mode == "no-endpoint" else candidate
    _shadow_pointer(candidate, raw="{not json" if mode == "bad-pointer" else None)
    capsys.readouterr()

    run = _score_and_decide(aws, url, model_config)

    assert _decision(run) == _decision(baseline) and run["item"]["decision"] == "PASS"
    assert all(b["status"] == "SCORED" for b in run["scoring"])
    out = capsys.readouterr().out
    assert _emf(out, "ShadowFailures") == 2  # one per batch
    assert _emf(out, "ShadowLiveCompared") == 0
    if mode == "bad-pointer":  # the pointer itself could not be read: nothing written, nothing recorded
        assert "shadow" not in run["scores"]
        return
    block = run["scores"]["shadow"]
    assert block["status"] == "INCOMPLETE" and block["decision"] is None, block
    expected = {
        "error": "MODEL_ERROR",
        "hang": "ENDPOINT_TIMEOUT",
        "garbage": "CONTRACT_VIOLATION",
        "no-endpoint": "ENDPOINT_UNAVAILABLE",
    }[mode]
    assert {b["reason"] for b in block["batches"]} == {expected}
    # the bound (kyc.aws.shadow_traffic): 2 attempts x (1 s connect + TIMEOUT_S read) + 0.2 s backoff,
    # on the shadow call's own clock and on the whole batch's, beyond the champion-only batch
    bound = 2 * (1 + TIMEOUT_S) + 0.2
    assert all(b["latency_ms"] / 1000 <= bound for b in block["batches"]), block["batches"]
    assert max(run["elapsed"]) < max(baseline["elapsed"]) + bound + 1.0, (run["elapsed"], baseline["elapsed"])
    if mode == "hang":  # it did wait for the hanging candidate (twice), then gave up
        assert all(b["latency_ms"] / 1000 >= 2 * TIMEOUT_S * 0.95 for b in block["batches"]), block["batches"]
        assert {b["attempts"] for b in block["batches"]} == {2}


class ShortContext(FakeContext):
    """A Lambda context with ``remaining_s`` left when the handler starts, counting down as Lambda's does."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__()
        self._deadline = time.monotonic() + remaining_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def test_a_shadow_the_remaining_time_cannot_cover_is_skipped_and_the_champion_stands(
    aws: dict[str, Any],  # noqa: F811
    servers: Any,
    model_config: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kyc.aws.shadow_traffic import shadow_time_needed_s

    server, url = servers
    baseline = _score_and_decide(aws, url, model_config)
    _reset(aws)
    candidate = Candidate("hang")  # would take 2 x (1 + TIMEOUT_S) s per batch if it were asked
    server.candidate = candidate
    _shadow_pointer(candidate)
    # the bound by hand (kyc.aws.shadow_traffic's docstring): the pointer's read (1 s + 3 s, one attempt),
    # 2 x (1 s + TIMEOUT_S) + 0.2 s for the call, 4 s witness budget + one witness call (1 s + 3 s),
    # then 5 s of margin
    needed = 4 + 2 * (1 + TIMEOUT_S) + 0.2 + 4 + 4 + 5
    assert shadow_time_needed_s(TIMEOUT_S) == pytest.approx(needed)
    capsys.readouterr()

    run = _score_and_decide(aws, url, model_config, context=lambda: ShortContext(needed - 1.0))

    assert _decision(run) == _decision(baseline) and run["item"]["decision"] == "PASS"
    assert all(b["status"] == "SCORED" for b in run["scoring"])
    assert candidate.calls == 0  # nothing was sent to the candidate
    assert max(run["elapsed"]) < max(baseline["elapsed"]) + 1.0  # no shadow wait at all
    block = run["scores"]["shadow"]
    assert block["status"] == "INCOMPLETE" and block["decision"] is None, block
    assert {b["status"] for b in block["batches"]} == {"SKIPPED"}
    assert {b["reason"] for b in block["batches"]} == {"NOT_ENOUGH_TIME"}
    kept = json.loads(
        aws["s3"].get_object(Bucket=WORK, Key=f"scores/{SID}/shadow-batch-000.json")["Body"].read()
    )
    assert kept["needed_s"] == pytest.approx(needed) and 0 < kept["remaining_s"] < needed
    out = capsys.readouterr().out
    assert _emf(out, "ShadowSkipped") == 2 and _emf(out, "ShadowFailures") == 0
    assert _emf(out, "ShadowLiveCompared") == 0

    # the same upload with time enough: the candidate is asked (and, hanging, fails within its bound);
    # the context starts before the champion scores, which takes seconds on a loaded machine: a minute
    # to spare, or the check rightly skips (3 s to spare failed a full run)
    _reset(aws)
    run = _score_and_decide(aws, url, model_config, context=lambda: ShortContext(needed + 60.0))
    assert candidate.calls == 4 and run["item"]["decision"] == "PASS"
    assert {b["reason"] for b in run["scores"]["shadow"]["batches"]} == {"ENDPOINT_TIMEOUT"}


def test_a_candidate_swapped_under_the_shadow_endpoint_is_unwitnessed_and_not_counted(
    aws: dict[str, Any],  # noqa: F811
    servers: Any,
    model_config: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, url = servers
    candidate = Candidate("reject")
    server.candidate = candidate  # the container keeps answering, and reporting the pointer's hash
    _shadow_pointer(candidate)
    other = ConstantModel(0.5, "3", name="another")  # other bytes, deployed under the shadow's name
    _deploy_candidate(aws, other)
    other_sha = hashlib.sha256(other.artefact()).hexdigest()
    assert other_sha != candidate.info.artefact_sha256
    capsys.readouterr()

    run = _score_and_decide(aws, url, model_config)

    assert run["item"]["decision"] == "PASS"
    block = run["scores"]["shadow"]
    assert block["model"]["artefact_sha256"] == candidate.info.artefact_sha256  # what the container says
    assert block["status"] == "UNWITNESSED" and block["agrees"] is None, block
    assert block["witness_differs"] == ["model.witness.artefact_sha256"]
    assert block["model_witness"]["artefact_sha256"] == other_sha  # hashlib's oracle of the swapped bytes
    assert block["decision"] == "REJECT"  # recorded; REJECT stands as the binding lets it
    assert run["lineage"]["decision"]["shadow"]["status"] == "UNWITNESSED"
    out = capsys.readouterr().out
    assert _emf(out, "ShadowLiveUnwitnessed") == 1
    assert _emf(out, "ShadowLiveCompared") == 0 and _emf(out, "ShadowLiveDisagreements") == 0
