"""The scorer against a real local HTTP model server with injected faults: success or a reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from kyc.aws.sagemaker_frame_scorer import SageMakerFrameScorer, ScoringError
from kyc.domain.reasons import ReasonCode
from kycserve import Fault, FaultInjector, ModelServer, load_model, start_server, stop
from tests.unit.serving.helpers import solid_frame, write_onnx_config

FRAMES = [solid_frame(f"{i:03d}", (0, 0, 255)) for i in range(3)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModelServer, str]]:
    model = load_model("onnx", onnx_config=write_onnx_config(Path(tmp_path_factory.mktemp("onnx"))))
    srv, thread, url = start_server(model, variant="variant-a")
    yield srv, url
    stop(srv, thread)


def _scorer(
    server: tuple[ModelServer, str], faults: list[Fault], *, read_timeout: float = 10, **kw
) -> SageMakerFrameScorer:
    srv, url = server
    srv.faults = FaultInjector(faults, slow_seconds=1.5)
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            read_timeout=read_timeout,
            connect_timeout=2,
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )
    delays: list[float] = []
    return SageMakerFrameScorer("kyc-endpoint", client=client, sleep=delays.append, **kw)


def test_score_healthy_endpoint_returns_contract_scores_and_lineage(server) -> None:
    call = _scorer(server, []).score(FRAMES)
    assert [s.frame_id for s in call.scores] == ["000", "001", "002"]
    assert all(0.0 <= s.p_fake <= 1.0 for s in call.scores)
    assert call.model.name == "tiny-red" and call.invoked_variant == "variant-a"
    assert call.attempts == 1 and call.latency_ms > 0
    assert len(call.request_sha256) == 64 and len(call.response_sha256) == 64


def test_score_throttled_twice_then_ok_returns_scores_after_3_attempts(server) -> None:
    call = _scorer(server, [Fault.THROTTLE, Fault.THROTTLE]).score(FRAMES)
    assert call.attempts == 3 and len(call.scores) == 3


def test_score_throttled_always_raises_endpoint_throttled(server) -> None:
    with pytest.raises(ScoringError) as raised:
        _scorer(server, [Fault.THROTTLE] * 10).score(FRAMES)
    assert raised.value.reason is ReasonCode.ENDPOINT_THROTTLED and raised.value.attempts == 4


@pytest.mark.parametrize("fault", [Fault.SERVICE_UNAVAILABLE, Fault.INTERNAL_FAILURE, Fault.MODEL_NOT_READY])
def test_score_5xx_storm_raises_endpoint_unavailable(server, fault: Fault) -> None:
    with pytest.raises(ScoringError) as raised:
        _scorer(server, [fault] * 10).score(FRAMES)
    assert raised.value.reason is ReasonCode.ENDPOINT_UNAVAILABLE and raised.value.attempts == 4


def test_score_one_503_then_ok_returns_scores(server) -> None:
    assert _scorer(server, [Fault.SERVICE_UNAVAILABLE]).score(FRAMES).attempts == 2


def test_score_container_4xx_raises_model_error_without_retry(server) -> None:
    srv, _ = server
    with pytest.raises(ScoringError) as raised:
        _scorer(server, [Fault.CONTAINER_4XX] * 10).score(FRAMES)
    assert raised.value.reason is ReasonCode.MODEL_ERROR and raised.value.attempts == 1
    assert srv.faults.requests == 1


def test_score_container_5xx_storm_raises_model_error_after_retries(server) -> None:
    with pytest.raises(ScoringError) as raised:
        _scorer(server, [Fault.CONTAINER_5XX] * 10).score(FRAMES)
    assert raised.value.reason is ReasonCode.MODEL_ERROR and raised.value.attempts == 4


def test_score_slow_always_raises_endpoint_timeout(server) -> None:
    with pytest.raises(ScoringError) as raised:
        _scorer(server, [Fault.SLOW] * 2, read_timeout=0.3, max_attempts=2).score(FRAMES)
    assert raised.value.reason is ReasonCode.ENDPOINT_TIMEOUT and raised.value.attempts == 2


def test_score_slow_once_then_ok_returns_scores(server) -> None:
    call = _scorer(server, [Fault.SLOW], read_timeout=0.3).score(FRAMES)
    assert call.attempts == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault.MALFORMED_JSON,
        Fault.DROP_FRAME,
        Fault.EXTRA_FRAME,
        Fault.OUT_OF_RANGE,
        Fault.NAN_SCORE,
        Fault.MISSING_MODEL,
    ],
)
def test_score_off_contract_response_raises_contract_violation_without_retry(server, fault: Fault) -> None:
    with pytest.raises(ScoringError) as raised:
        _scorer(server, [fault]).score(FRAMES)
    assert raised.value.reason is ReasonCode.CONTRACT_VIOLATION and raised.value.attempts == 1


def test_score_unknown_endpoint_port_raises_endpoint_unavailable() -> None:
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 1}
        ),
    )
    with pytest.raises(ScoringError) as raised:
        SageMakerFrameScorer("x", client=client, sleep=lambda _: None, max_attempts=2).score(FRAMES)
    assert raised.value.reason is ReasonCode.ENDPOINT_UNAVAILABLE


def test_score_backoff_delays_are_full_jitter_and_capped(server) -> None:
    delays: list[float] = []
    scorer = _scorer(server, [Fault.THROTTLE] * 3, max_attempts=4, base_delay_s=1.0, max_delay_s=1.5)
    scorer._sleep = delays.append  # observe the waits
    scorer.score(FRAMES)
    assert len(delays) == 3
    assert all(0.0 <= d <= bound for d, bound in zip(delays, [1.0, 1.5, 1.5], strict=True))


def test_default_client_uses_own_retries_and_70s_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    scorer = SageMakerFrameScorer("x")
    config = scorer._client.meta.config
    assert config.read_timeout == 70 and config.connect_timeout == 5
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
