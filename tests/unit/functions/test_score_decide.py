"""ScoreFrames against a real local model server, DecideOutcome and ReconcileExecution against moto."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.s3_object_store import canonical_json
from kyc.media.sampling import SamplingParams
from kyclocal.policy_file import artefact_of, role_played_policy
from kycserve.faults import Fault, FaultInjector
from kycserve.models import load_model
from kycserve.server import start_server, stop
from tests.unit.functions.handler_loader import FakeContext, expected_pseudonym, load_handler
from tests.unit.serving.helpers import solid_frame, write_onnx_config

WORK, AUDIT, TABLE, BUS = "work", "audit", "decisions", "decisions-bus"
SID = "a" * 64
LOCAL = {"core": {"passthrough": {"urls": [r"http://127\.0\.0\.1:\d+/.*"]}}}


@pytest.fixture(scope="module")
def model_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_onnx_config(tmp_path_factory.mktemp("onnx"), weight_red=20.0, bias=-10.0)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws(config=LOCAL):
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (WORK, AUDIT):
            s3.create_bucket(Bucket=bucket)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "submission_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "submission_id", "KeyType": "HASH"}],
        )
        events = boto3.client("events", region_name="us-east-1")
        events.create_event_bus(Name=BUS)
        sqs = boto3.client("sqs", region_name="us-east-1")
        tap = sqs.create_queue(QueueName="tap")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="tap", EventBusName=BUS, EventPattern=json.dumps({"source": ["kyc.screening"]}))
        events.put_targets(Rule="tap", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": tap_arn}])
        yield {"s3": s3, "ddb": ddb, "sqs": sqs, "tap": tap, "monkeypatch": monkeypatch}


def _store_frames(
    aws: dict[str, Any], colours: list[tuple[int, int, int]], params: SamplingParams | None = None
) -> str:
    prefix = f"frames/{SID}/"
    entries = []
    for index, bgr in enumerate(colours):
        frame = solid_frame(f"{index:03d}", bgr)
        name = f"{index:03d}.png"
        aws["s3"].put_object(Bucket=WORK, Key=prefix + name, Body=frame.data)
        entries.append(
            {
                "index": index,
                "file": name,
                "content_type": "image/png",
                "sha256": hashlib.sha256(frame.data).hexdigest(),
            }
        )
    manifest = {
        "params": asdict(params or SamplingParams()),  # the template's sampling: what calibrations bind
        "prefix": prefix,
        "frames": entries,
        "batches": [{"batch_index": 0, "frames": list(range(len(colours)))}],
    }
    aws["s3"].put_object(Bucket=WORK, Key=prefix + "manifest.json", Body=canonical_json(manifest))
    return prefix + "manifest.json"


@pytest.fixture
def model_server(model_config: Path) -> Iterator[tuple[str, FaultInjector]]:
    faults = FaultInjector()
    server, thread, url = start_server(load_model("onnx", onnx_config=model_config), faults=faults)
    yield url, faults
    stop(server, thread)


def _score(aws: dict[str, Any], url: str) -> Any:
    aws["monkeypatch"].setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
    return load_handler(
        "score", {"KYC_WORK_BUCKET": WORK, "KYC_ENDPOINT_NAME": "kyc-endpoint"}, aws["monkeypatch"]
    )


def test_score_batch_scored_result_stored_and_pointer_returned(
    aws: dict[str, Any], model_server: tuple, model_config: Path
) -> None:
    url, _ = model_server
    manifest_key = _store_frames(aws, [(0, 0, 250), (0, 0, 250)])  # BGR: red channel high
    app = _score(aws, url)

    result = app.lambda_handler(
        {"submission_id": SID, "manifest_key": manifest_key, "batch_index": 0}, FakeContext()
    )

    assert result == {
        "batch_index": 0,
        "status": "SCORED",
        "result_key": f"scores/{SID}/batch-000.json",
        "frames_scored": 2,
        "reason": None,
        "shadow": None,  # no candidate shadowed (tests/unit/functions/test_shadow_live.py)
    }
    doc = json.loads(aws["s3"].get_object(Bucket=WORK, Key=result["result_key"])["Body"].read())
    # the server reports the SHA-256 of the network file it loaded (hashed here from the file itself)
    assert doc["model"] == {
        "name": "tiny-red",
        "version": "1.0.0",
        "artefact_sha256": artefact_of(model_config),
    }
    assert [f["frame_id"] for f in doc["frames"]] == ["000", "001"]
    assert all(f["p_fake"] > 0.99 for f in doc["frames"])
    assert doc["invoked_variant"] == "AllTraffic" and len(doc["request_sha256"]) == 64


def test_score_records_what_sagemaker_and_s3_say_the_endpoint_serves(
    aws: dict[str, Any], model_server: tuple, model_config: Path
) -> None:
    """The deployment witness beside the container's report: the endpoint, its config and model in
    SageMaker, the model data in S3 with its checksum; the hash is recomputed here from the file."""
    url, _ = model_server
    network = json.loads(model_config.read_text())["path"]
    data = (model_config.parent / network).read_bytes()
    aws["s3"].create_bucket(Bucket="model-data")
    aws["s3"].put_object(Bucket="model-data", Key="m/tiny.onnx", Body=data, ChecksumAlgorithm="SHA256")
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    source = {"S3Uri": "s3://model-data/m/tiny.onnx", "S3DataType": "S3Object", "CompressionType": "None"}
    sagemaker.create_model(
        ModelName="tiny-red-1",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        PrimaryContainer={"Image": "kycserve:1", "ModelDataSource": {"S3DataSource": source}},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "tiny-red-1", "InstanceType": "ml.c5.xlarge"}
    sagemaker.create_endpoint_config(
        EndpointConfigName="tiny-red-1", ProductionVariants=[variant | {"InitialInstanceCount": 1}]
    )
    sagemaker.create_endpoint(EndpointName="kyc-endpoint", EndpointConfigName="tiny-red-1")
    aws["monkeypatch"].setenv("KYC_MODEL_DATA_BUCKET", "model-data")
    manifest_key = _store_frames(aws, [(0, 0, 250)])
    app = _score(aws, url)

    result = app.lambda_handler(
        {"submission_id": SID, "manifest_key": manifest_key, "batch_index": 0}, FakeContext()
    )

    doc = json.loads(aws["s3"].get_object(Bucket=WORK, Key=result["result_key"])["Body"].read())
    witness = doc["model_witness"]
    assert witness["artefact_sha256"] == hashlib.sha256(data).hexdigest() == doc["model"]["artefact_sha256"]
    assert (witness["unreadable"], witness["endpoint_config"]) == (None, "tiny-red-1")
    assert witness["models"][0]["model_data"] == "s3://model-data/m/tiny.onnx"


def test_score_endpoint_outage_reports_failed_batch_not_exception(
    aws: dict[str, Any], model_server: tuple
) -> None:
    url, faults = model_server
    faults.add(*[Fault.SERVICE_UNAVAILABLE] * 10)
    manifest_key = _store_frames(aws, [(0, 0, 10)])
    app = _score(aws, url)
    app.SCORERS[app.RESOURCES.endpoint_name]._sleep = lambda _s: None  # no real backoff in a unit test

    result = app.lambda_handler(
        {"submission_id": SID, "manifest_key": manifest_key, "batch_index": 0}, FakeContext()
    )

    assert (result["status"], result["reason"], result["frames_scored"]) == (
        "FAILED",
        "ENDPOINT_UNAVAILABLE",
        0,
    )


def test_score_tampered_frame_is_refused_before_scoring(aws: dict[str, Any], model_server: tuple) -> None:
    url, faults = model_server
    manifest_key = _store_frames(aws, [(0, 0, 10)])
    aws["s3"].put_object(Bucket=WORK, Key=f"frames/{SID}/000.png", Body=b"swapped")
    app = _score(aws, url)

    with pytest.raises(app.FrameIntegrityError):
        app.lambda_handler(
            {"submission_id": SID, "manifest_key": manifest_key, "batch_index": 0}, FakeContext()
        )
    assert faults.requests == 0


def _store_batch_objects(aws: dict[str, Any], colours: list[tuple[int, int, int]]) -> tuple[str, dict]:
    """Frames as extract stores them since issue 25: one object per scoring batch (kyc.media.framestore)."""
    from kyc.media.framestore import batch_objects, frame_manifest
    from kyc.media.sampling import SampledFrame, SampleSet, SamplingParams

    frames = tuple(
        SampledFrame(
            index=i,
            pts_s=i / 10,
            keyframe=i == 0,
            width=64,
            height=64,
            content_type="image/png",
            data=(data := solid_frame(f"{i:03d}", bgr).data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        for i, bgr in enumerate(colours)
    )
    sample = SampleSet(
        frames=frames,
        requested=len(frames),
        duration_s=1.0,
        start_s=0.0,
        header_duration_s=1.0,
        short_clip=False,
        decoded_frames=len(frames),
        params=SamplingParams(frame_count=len(frames)),
        rotation=0,
    )
    prefix = f"frames/{SID}/"
    manifest = frame_manifest(sample, source_sha256="s" * 64, prefix=prefix)
    for name, body in batch_objects(sample, manifest):
        aws["s3"].put_object(Bucket=WORK, Key=prefix + name, Body=body)
    aws["s3"].put_object(Bucket=WORK, Key=prefix + "manifest.json", Body=canonical_json(manifest))
    return prefix + "manifest.json", manifest


def test_score_reads_its_batch_from_one_object_and_refuses_a_changed_byte(
    aws: dict[str, Any], model_server: tuple
) -> None:
    url, faults = model_server
    colours = [(0, 0, 250)] * 3 + [(0, 0, 10)] * 9  # 12 frames: batches of 8 and 4
    manifest_key, manifest = _store_batch_objects(aws, colours)
    assert [len(b["frames"]) for b in manifest["batches"]] == [8, 4]
    app = _score(aws, url)
    gets: list[str] = []
    real_get = app.STORE.get_bytes
    app.STORE.get_bytes = lambda bucket, key: gets.append(key) or real_get(bucket, key)

    result = app.lambda_handler(
        {"submission_id": SID, "manifest_key": manifest_key, "batch_index": 1}, FakeContext()
    )

    assert (result["status"], result["frames_scored"]) == ("SCORED", 4)
    assert gets == [manifest_key, f"frames/{SID}/batch-001.bin"]  # the manifest and one object
    doc = json.loads(aws["s3"].get_object(Bucket=WORK, Key=result["result_key"])["Body"].read())
    assert [f["frame_id"] for f in doc["frames"]] == ["008", "009", "010", "011"]
    assert all(f["p_fake"] < 0.01 for f in doc["frames"])  # the blue-ish frames, not the red ones
    body = bytearray(aws["s3"].get_object(Bucket=WORK, Key=f"frames/{SID}/batch-000.bin")["Body"].read())
    body[manifest["frames"][5]["offset"] + 40] ^= 0x01  # one byte inside frame 5
    aws["s3"].put_object(Bucket=WORK, Key=f"frames/{SID}/batch-000.bin", Body=bytes(body))
    before = faults.requests
    with pytest.raises(app.FrameIntegrityError, match="frame 5 "):
        app.lambda_handler(
            {"submission_id": SID, "manifest_key": manifest_key, "batch_index": 0}, FakeContext()
        )
    assert faults.requests == before  # nothing sent to the endpoint


# --------------------------------------------------------------------------- decide
# the model every scored batch below reports, with the SHA-256 of the artefact it loaded
MODEL = {"name": "m", "version": "1", "artefact_sha256": hashlib.sha256(b"weights of m 1").hexdigest()}


def witness_of(artefact: str | None, unreadable: str | None = None) -> dict[str, Any]:
    """What the score function records of SageMaker + S3 (kyc.domain.model_witness.WitnessAccount)."""
    return {"source": "sagemaker+s3", "artefact_sha256": artefact, "unreadable": unreadable, "models": []}


WITNESS = witness_of(MODEL["artefact_sha256"])


def _calibrated(
    pass_threshold: float = 0.3,
    reject_threshold: float = 0.8,
    face_source: str = "model",
    face_check_frames: int = 0,
    **policy: Any,
) -> str:
    """A policy document whose thresholds are bound to MODEL (as the template's 0.3/0.8 below)."""
    document = role_played_policy(
        MODEL,
        pass_threshold=pass_threshold,
        reject_threshold=reject_threshold,
        min_frames_scored=2,
        face_evidence_source=face_source,
        face_check_frames=face_check_frames,
        **policy,
    )
    return json.dumps(document)


def _decide(aws: dict[str, Any], *, calibrated: bool = True, **env: str) -> Any:
    """The decide handler with the template's thresholds; ``calibrated``: an SSM override binds them to
    MODEL, as a deployment that went live does (without one every scored decision is REVIEW)."""
    base = {
        "KYC_WORK_BUCKET": WORK,
        "KYC_AUDIT_BUCKET": AUDIT,
        "KYC_DECISIONS_TABLE": TABLE,
        "KYC_PASS_THRESHOLD": "0.3",
        "KYC_REJECT_THRESHOLD": "0.8",
        "KYC_MIN_FRAMES_SCORED": "2",
        # these tests are about the model's evidence; the face stage's is in test_decide_faces.py
        "KYC_FACE_EVIDENCE_SOURCE": "model",
    }
    if calibrated and "KYC_POLICY_PARAMETER" not in env:
        face_source = env.get("KYC_FACE_EVIDENCE_SOURCE", base["KYC_FACE_EVIDENCE_SOURCE"])
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/kyc/calibrated", Type="String", Value=_calibrated(face_source=face_source), Overwrite=True
        )
        base["KYC_POLICY_PARAMETER"] = "/kyc/calibrated"
    return load_handler("decide", base | env, aws["monkeypatch"])


def _submission() -> dict[str, Any]:
    return {
        "submission_id": SID,
        "bucket": "intake",
        "key": "uploads/ref-7/selfie.mp4",
        "version_id": "v1",
        "etag": "e",
        "size": 10,
        "client_reference": "ref-7",
    }


def _scored_state(
    aws: dict[str, Any],
    scores: list[float | None],
    *,
    failed: int = 0,
    faces: bool = True,
    model: dict[str, str] = MODEL,
    params: SamplingParams | None = None,
    witness: dict[str, Any] | None = WITNESS,
) -> dict[str, Any]:
    """A scored batch; ``faces`` False: a whole-frame model that reports no face boxes; ``model``:
    what the batch says scored it; ``params``: the sampling the frame manifest records; ``witness``:
    what SageMaker + S3 said the endpoint serves (None: the batch recorded none)."""
    manifest_key = _store_frames(aws, [(0, 0, 0)] * len(scores), params)

    def face(p: float | None) -> list[dict[str, Any]]:
        return [{"box": [0.3, 0.2, 0.4, 0.5], "confidence": 0.99, "p_fake": p}] if faces else []

    doc = {
        "batch_index": 0,
        "status": "SCORED",
        "model": model,
        **({"model_witness": witness} if witness is not None else {}),
        "frames": [
            {"frame_id": f"{i:03d}", "p_fake": p, "faces": face(p), "quality": []}
            for i, p in enumerate(scores)
        ],
    }
    aws["s3"].put_object(Bucket=WORK, Key=f"scores/{SID}/batch-000.json", Body=canonical_json(doc))
    scoring = [
        {
            "batch_index": 0,
            "status": "SCORED",
            "result_key": f"scores/{SID}/batch-000.json",
            "frames_scored": len(scores),
            "reason": None,
        }
    ]
    scoring += [
        {
            "batch_index": i + 1,
            "status": "FAILED",
            "result_key": None,
            "frames_scored": 0,
            "reason": "ENDPOINT_THROTTLED",
        }
        for i in range(failed)
    ]
    validation = {"accepted": True, "sha256": "f" * 64, "size": 10, "media": {"codec": "h264"}}
    extraction = {
        "manifest_key": manifest_key,
        "manifest_sha256": hashlib.sha256(
            aws["s3"].get_object(Bucket=WORK, Key=manifest_key)["Body"].read()
        ).hexdigest(),
        "frames_sampled": len(scores) + 4 * failed,
    }
    return {
        "submission": _submission(),
        "validation": validation,
        "extraction": extraction,
        "scoring": scoring,
    }


def _events(aws: dict[str, Any]) -> list[dict[str, Any]]:
    messages = aws["sqs"].receive_message(QueueUrl=aws["tap"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["detail"] for m in messages]


def _item(aws: dict[str, Any]) -> dict[str, Any]:
    from kyc.aws.dynamodb_decision_store import DynamoDBDecisionStore

    return DynamoDBDecisionStore(TABLE, aws["ddb"]).get(SID)


@pytest.mark.parametrize(
    ("scores", "decision"), [([0.05] * 4, "PASS"), ([0.95] * 4, "REJECT"), ([0.5] * 4, "REVIEW")]
)
def test_decide_scored_evidence_maps_to_policy_band(
    aws: dict[str, Any], scores: list[float], decision: str
) -> None:
    app = _decide(aws)

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, scores)}, FakeContext()
    )

    assert result["decision"] == decision
    item = _item(aws)
    assert item["decision"] == decision and item["policy"]["pass_threshold"] == 0.3
    assert item["source"]["sha256"] == "f" * 64 and item["client_reference"] == "ref-7"
    assert item["expires_at"] > 0 and "event_published" not in item
    assert _events(aws) == []  # no function publishes: the table's stream does (test_decision_event.py)


def test_decide_failed_batch_never_passes(aws: dict[str, Any]) -> None:
    app = _decide(aws)

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, [0.01] * 8, failed=1)},
        FakeContext(),
    )

    assert result["decision"] != "PASS"
    assert "PARTIAL_SCORING" in result["reasons"]


def test_decide_replay_returns_first_decision(aws: dict[str, Any]) -> None:
    app = _decide(aws)
    first = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:1", "state": _scored_state(aws, [0.05] * 4)}, FakeContext()
    )
    error_state = {"submission": _submission(), "failure": {"Error": "States.Timeout"}}

    again = app.lambda_handler(
        {"mode": "error", "execution_arn": "arn:2", "state": error_state}, FakeContext()
    )

    assert again["decision"] == first["decision"] == "PASS"
    assert _item(aws)["execution_arn"] == "arn:1"


def _audit_object(aws: dict[str, Any], name: str) -> bytes:
    return aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/{name}")["Body"].read()


def test_decide_losing_writer_leaves_the_winners_evidence(aws: dict[str, Any]) -> None:
    """Two runs race on one submission with different evidence: both read "no decision yet", the
    second loses the conditional put, and must not replace the winner's scores or lineage."""
    app = _decide(aws)
    winner_state = _scored_state(aws, [0.05] * 4)
    real_get = app.DECISIONS.get
    calls = {"n": 0}

    def stale_first_read(sid: str) -> Any:  # the loser's first read happens before the winner's put
        calls["n"] += 1
        return None if calls["n"] == 1 else real_get(sid)

    app.lambda_handler({"mode": "decide", "execution_arn": "arn:1", "state": winner_state}, FakeContext())
    winner = {name: _audit_object(aws, name) for name in ("scores.json", "lineage.json")}
    loser_state = _scored_state(aws, [0.95] * 4)  # other scores, other hashes
    aws["monkeypatch"].setattr(app.DECISIONS, "get", stale_first_read)

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:2", "state": loser_state}, FakeContext()
    )

    assert result["decision"] == "PASS" and calls["n"] == 2
    item = _item(aws)
    for name in ("scores", "lineage"):  # the objects are the bytes the record names, hash for hash
        data = _audit_object(aws, f"{name}.json")
        assert data == winner[f"{name}.json"]
        assert hashlib.sha256(data).hexdigest() == item["artefacts"][f"{name}_sha256"]
    assert all(f["p_fake"] == 0.05 for f in json.loads(winner["scores.json"])["frames"])


def _crash_after_the_decision_put(aws: dict[str, Any], app: Any) -> dict[str, Any]:
    """Decide a PASS whose function dies after the conditional put, before any audit object;
    returns the event, for the retry."""
    event = {"mode": "decide", "execution_arn": "arn:1", "state": _scored_state(aws, [0.05] * 4)}

    def crash(*_: Any) -> bool:
        raise RuntimeError("killed")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app.STORE, "put_new", crash)
        with pytest.raises(RuntimeError):
            app.lambda_handler(event, FakeContext())
    return event


def test_decide_replay_after_a_crash_restores_the_evidence_its_record_names(aws: dict[str, Any]) -> None:
    """The put won, then the function died before the audit objects: the retry of the same
    execution writes exactly the bytes whose hashes the record holds, and logs its lineage once."""
    app = _decide(aws)
    event = _crash_after_the_decision_put(aws, app)
    assert _item(aws)["decision"] == "PASS"
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=AUDIT)

    app.lambda_handler(event, FakeContext())

    item = _item(aws)
    for name in ("scores", "lineage"):
        assert (
            hashlib.sha256(_audit_object(aws, f"{name}.json")).hexdigest()
            == item["artefacts"][f"{name}_sha256"]
        )


def test_decide_another_executions_replay_never_writes_evidence(aws: dict[str, Any]) -> None:
    """A decision whose evidence is gone is not refilled by a different execution's inputs."""
    app = _decide(aws)
    app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:1", "state": _scored_state(aws, [0.05] * 4)}, FakeContext()
    )
    for name in ("scores.json", "lineage.json"):
        aws["s3"].delete_object(Bucket=AUDIT, Key=f"decisions/{SID}/{name}")

    app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:2", "state": _scored_state(aws, [0.95] * 4)}, FakeContext()
    )

    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=AUDIT)


def test_decide_whole_frame_model_low_score_is_review_not_pass(aws: dict[str, Any]) -> None:
    app = _decide(aws)
    state = _scored_state(aws, [0.05] * 4, faces=False)

    result = app.lambda_handler({"mode": "decide", "execution_arn": "arn:x", "state": state}, FakeContext())

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["NO_FACE_EVIDENCE"])


def test_decide_error_mode_records_mapped_reason(aws: dict[str, Any]) -> None:
    app = _decide(aws)
    state = {"submission": _submission(), "failure": {"Error": "SourceMissingError", "Cause": "{}"}}

    result = app.lambda_handler({"mode": "error", "execution_arn": "arn:x", "state": state}, FakeContext())

    assert (result["decision"], result["reasons"]) == ("ERROR", ["SOURCE_MISSING"])


def test_decide_refused_upload_is_invalid_with_lineage(aws: dict[str, Any]) -> None:
    app = _decide(aws)
    state = {
        "submission": _submission(),
        "validation": {"accepted": False, "reason": "PLAYLIST_OR_SCRIPT", "sha256": "b" * 64, "size": 5},
    }

    result = app.lambda_handler({"mode": "decide", "execution_arn": "arn:x", "state": state}, FakeContext())

    assert (result["decision"], result["reasons"]) == ("INVALID", ["PLAYLIST_OR_SCRIPT"])
    lineage = json.loads(
        aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/lineage.json")["Body"].read()
    )
    assert lineage["source"]["sha256"] == "b" * 64
    assert "ref-7/selfie.mp4" not in json.dumps(lineage)  # the key is pseudonymised in the audit trail
    assert "ref-7" not in json.dumps(lineage)
    assert lineage["source"]["key"] == expected_pseudonym("uploads/ref-7/selfie.mp4")


def test_decide_policy_override_from_ssm(aws: dict[str, Any]) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(
        Name="/kyc/policy",
        Type="String",
        Value=_calibrated(0.01, 0.02, version="strict-1"),
    )
    app = _decide(aws, KYC_POLICY_PARAMETER="/kyc/policy")

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, [0.05] * 4)}, FakeContext()
    )

    assert result["decision"] == "REJECT"
    assert result["policy_version"] == "strict-1"


def test_decide_securestring_override_is_decrypted_and_its_version_recorded(aws: dict[str, Any]) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    for version in ("strict-1", "strict-2"):  # the second put makes parameter version 2
        ssm.put_parameter(
            Name="/kyc/policy",
            Type="SecureString",
            KeyId=key_id,
            Overwrite=True,
            Value=_calibrated(0.01, 0.02, version=version),
        )
    app = _decide(aws, KYC_POLICY_PARAMETER="/kyc/policy")

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, [0.05] * 4)}, FakeContext()
    )

    assert (result["decision"], result["policy_version"]) == ("REJECT", "strict-2")
    override = _item(aws)["policy"]["override"]
    assert override == {"parameter": "/kyc/policy", "parameter_version": 2, "parameter_type": "SecureString"}
    lineage = json.loads(
        aws["s3"].get_object(Bucket=AUDIT, Key=f"decisions/{SID}/lineage.json")["Body"].read()
    )
    assert lineage["decision"]["policy"]["override"]["parameter_version"] == 2


@pytest.mark.parametrize("mode", ["error", "invalid"])
def test_decide_invalid_and_error_records_name_the_policy_in_force(aws: dict[str, Any], mode: str) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/kyc/policy", Type="String", Value=json.dumps({"version": "bank-a-r3"})
    )
    app = _decide(aws, KYC_POLICY_PARAMETER="/kyc/policy")
    state: dict[str, Any] = {"submission": _submission()}
    if mode == "error":
        state["failure"] = {"Error": "SourceMissingError", "Cause": "{}"}
    else:
        state["validation"] = {"accepted": False, "reason": "PLAYLIST_OR_SCRIPT", "sha256": "b" * 64}

    result = app.lambda_handler(
        {"mode": "error" if mode == "error" else "decide", "execution_arn": "arn:x", "state": state},
        FakeContext(),
    )

    assert result["decision"] == mode.upper()
    assert result["policy_version"] == "bank-a-r3"
    assert _item(aws)["policy"]["override"]["parameter"] == "/kyc/policy"


def test_decide_error_record_survives_a_broken_override(aws: dict[str, Any]) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/kyc/policy", Type="String", Value="{not json"
    )
    app = _decide(aws, KYC_POLICY_PARAMETER="/kyc/policy")
    state = {"submission": _submission(), "failure": {"Error": "SourceMissingError", "Cause": "{}"}}

    result = app.lambda_handler({"mode": "error", "execution_arn": "arn:x", "state": state}, FakeContext())

    assert (result["decision"], result["reasons"]) == ("ERROR", ["SOURCE_MISSING"])
    assert _item(aws)["policy"]["version"] is None
    assert "not JSON" in _item(aws)["policy"]["unavailable"]


@pytest.mark.parametrize(("scores", "bound"), [([0.05] * 4, "PASS"), ([0.95] * 4, "REJECT")])
def test_decide_uncalibrated_model_is_review_model_not_calibrated(
    aws: dict[str, Any], scores: list[float], bound: str
) -> None:
    """No calibration in force: the template's thresholds were never measured for MODEL, so neither its
    low nor its high score decides; scores.json keeps what the thresholds would decide once bound."""
    app = _decide(aws, calibrated=False)

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, scores)}, FakeContext()
    )

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["MODEL_NOT_CALIBRATED"])
    assert _item(aws)["policy"]["calibration"] is None
    scores_doc = json.loads(_audit_object(aws, "scores.json"))
    assert scores_doc["decision_if_calibrated"]["decision"] == bound


def test_decide_policy_calibrated_for_another_version_is_review(aws: dict[str, Any]) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    other = role_played_policy(
        MODEL | {"version": "2"},
        pass_threshold=0.3,
        reject_threshold=0.8,
        min_frames_scored=2,
        face_evidence_source="model",
    )
    ssm.put_parameter(Name="/kyc/policy", Type="String", Value=json.dumps(other))
    app = _decide(aws, KYC_POLICY_PARAMETER="/kyc/policy")

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, [0.95] * 4)}, FakeContext()
    )

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["MODEL_NOT_CALIBRATED"])
    assert _item(aws)["policy"]["calibration"]["model"]["version"] == "2"


def test_decide_calibrated_model_decides_and_records_its_calibration(aws: dict[str, Any]) -> None:
    app = _decide(aws)

    app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, [0.95] * 4)}, FakeContext()
    )

    item = _item(aws)
    assert (item["decision"], item["reasons"]) == ("REJECT", ["HIGH_FAKE_SCORE"])
    assert item["policy"]["calibration"]["model"] == MODEL | {"contract_version": "v1"}
    assert item["calibration_binding"]["bound"] is True
    assert "decision_if_calibrated" not in json.loads(_audit_object(aws, "scores.json"))


def test_decide_malformed_calibration_fails_the_decision(aws: dict[str, Any]) -> None:
    """A calibration whose interval was edited by hand is not one: the override is refused loudly (the
    workflow records ERROR), never read as uncalibrated or as calibrated."""
    document = json.loads(_calibrated())
    document["calibration"]["measured"]["apcer"]["ci95"] = [0.0, 0.01]
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/kyc/policy", Type="String", Value=json.dumps(document)
    )
    app = _decide(aws, KYC_POLICY_PARAMETER="/kyc/policy")

    with pytest.raises(Exception, match="Wilson interval"):
        app.lambda_handler(
            {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, [0.05] * 4)},
            FakeContext(),
        )
    assert _item(aws) is None


# --------------------------------------------------------------------------- reconcile
def _reconcile_event(status: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-28T17:05:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "executionArn": "arn:exec",
            "status": status,
            "input": json.dumps({"submission": _submission()}),
        },
    }


def test_reconcile_failed_execution_without_decision_records_error(aws: dict[str, Any]) -> None:
    app = load_handler("reconcile", {"KYC_DECISIONS_TABLE": TABLE}, aws["monkeypatch"])

    result = app.lambda_handler(_reconcile_event("TIMED_OUT"), FakeContext())

    assert result == {"recorded": True, "decision": "ERROR"}
    assert _item(aws)["reasons"] == ["EXECUTION_FAILED"]
    assert _events(aws) == []  # its event comes from the table's stream, like every decision's


def test_reconcile_reads_the_input_back_when_the_event_leaves_it_out(aws: dict[str, Any]) -> None:
    """Step Functions may send the status change without the input (``inputDetails.included: false``):
    the submission is then read from the execution itself, and the upload still gets its ERROR."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(
        name="kyc-screening",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(
        stateMachineArn=machine, name=SID, input=json.dumps({"submission": _submission()})
    )["executionArn"]
    event = _reconcile_event("FAILED")
    event["detail"] = {"executionArn": execution, "status": "FAILED", "inputDetails": {"included": False}}
    app = load_handler(
        "reconcile", {"KYC_DECISIONS_TABLE": TABLE, "KYC_EVENT_BUS_NAME": BUS}, aws["monkeypatch"]
    )

    result = app.lambda_handler(event, FakeContext())

    assert result == {"recorded": True, "decision": "ERROR"}
    assert _item(aws)["submission_id"] == SID and _item(aws)["reasons"] == ["EXECUTION_FAILED"]
    assert _item(aws)["execution_arn"] == execution


def test_reconcile_keeps_an_existing_decision(aws: dict[str, Any]) -> None:
    _decide(aws).lambda_handler(
        {"mode": "decide", "execution_arn": "arn:1", "state": _scored_state(aws, [0.05] * 4)}, FakeContext()
    )
    app = load_handler("reconcile", {"KYC_DECISIONS_TABLE": TABLE}, aws["monkeypatch"])

    result = app.lambda_handler(_reconcile_event("ABORTED"), FakeContext())

    assert result == {"recorded": False, "decision": "PASS"}
    assert _item(aws)["execution_arn"] == "arn:1"


def test_decide_replay_after_a_crash_restores_the_staged_bytes_even_when_inputs_changed(
    aws: dict[str, Any],
) -> None:
    """Between the crash and the retry the recomputed evidence changes (here the batch result; in
    production a refreshed policy cache or a new code version): the retry still writes the bytes
    the record's hashes name, kept in the work bucket before the put, never a recomputation."""
    app = _decide(aws)
    event = _crash_after_the_decision_put(aws, app)
    _scored_state(aws, [0.06] * 4)  # the same result key now holds other scores

    app.lambda_handler(event, FakeContext())

    item = _item(aws)
    for name in ("scores", "lineage"):
        data = _audit_object(aws, f"{name}.json")
        assert hashlib.sha256(data).hexdigest() == item["artefacts"][f"{name}_sha256"]
    assert {f["p_fake"] for f in json.loads(_audit_object(aws, "scores.json"))["frames"]} == {0.05}


# --------------------------------------------------------------------------- calibration binding
OTHER_WEIGHTS = hashlib.sha256(b"other weights, same name and version").hexdigest()


OTHER_WITNESS = witness_of(OTHER_WEIGHTS)  # SageMaker + S3 say the endpoint was created from other bytes


@pytest.mark.parametrize(
    ("scores", "model", "policy", "params", "differs", "witness"),
    [
        # the same name and version with other weights: a constant near 0, or the scores inverted
        (
            [0.01] * 4,
            MODEL | {"artefact_sha256": OTHER_WEIGHTS},
            {},
            None,
            ["model.artefact_sha256"],
            WITNESS,
        ),
        (
            [0.02, 0.03, 0.01, 0.02],
            MODEL | {"artefact_sha256": OTHER_WEIGHTS},
            {},
            None,
            ["model.artefact_sha256", "model.witness.artefact_sha256"],
            OTHER_WITNESS,
        ),
        # a model that reports no artefact at all is trusted by its name no more
        ([0.01] * 4, {"name": "m", "version": "1"}, {}, None, ["model.artefact_sha256"], WITNESS),
        # the deployment recorded other model data than the endpoint reports
        (
            [0.01] * 4,
            MODEL | {"deployed_artefact_sha256": OTHER_WEIGHTS},
            {},
            None,
            ["model.artefact_sha256"],
            WITNESS,
        ),
        # a lying container: it reports the calibrated hash, SageMaker + S3 say other bytes were deployed
        ([0.01] * 4, MODEL, {}, None, ["model.witness.artefact_sha256"], OTHER_WITNESS),
        # the witness could not be read (no grant, no checksum, a multipart upload...), or was not recorded
        (
            [0.01] * 4,
            MODEL,
            {},
            None,
            ["model.witness.unreadable"],
            witness_of(None, "DescribeEndpoint failed"),
        ),
        ([0.01] * 4, MODEL, {}, None, ["model.witness.unreadable"], None),
        # a deciding policy field changed under the same calibration
        ([0.01] * 4, MODEL, {"min_face_fraction": 0.0}, None, ["decides.min_face_fraction"], WITNESS),
        (
            [0.01] * 4,
            MODEL,
            {"allow_pass_on_partial": True},
            None,
            ["decides.allow_pass_on_partial"],
            WITNESS,
        ),
        # calibrated at 32 frames, applied at 8
        ([0.01] * 4, MODEL, {}, SamplingParams(frame_count=8), ["decides.sampling.frame_count"], WITNESS),
    ],
)
def test_decide_anything_not_as_calibrated_is_review_naming_the_field(
    aws: dict[str, Any],
    scores: list[float],
    model: dict[str, str],
    policy: dict[str, Any],
    params: SamplingParams | None,
    differs: list[str],
    witness: dict[str, Any] | None,
) -> None:
    """Low scores that PASS once bound are REVIEW MODEL_NOT_CALIBRATED when the model bytes, a deciding
    policy field or the sampling differ from the calibration's; the record names the field."""
    document = json.loads(_calibrated()) | policy  # the override edits a field, keeps the calibration
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/kyc/edited", Type="String", Value=json.dumps(document)
    )
    app = _decide(aws, KYC_POLICY_PARAMETER="/kyc/edited")

    state = _scored_state(aws, scores, model=model, params=params, witness=witness)
    result = app.lambda_handler({"mode": "decide", "execution_arn": "arn:x", "state": state}, FakeContext())

    assert (result["decision"], result["reasons"]) == ("REVIEW", ["MODEL_NOT_CALIBRATED"])
    item = _item(aws)
    assert item["calibration_binding"]["bound"] is False
    assert item["calibration_binding"]["differs"] == differs
    lineage = json.loads(_audit_object(aws, "lineage.json"))
    assert lineage["decision"]["calibration_binding"]["differs"] == differs
    scores_doc = json.loads(_audit_object(aws, "scores.json"))
    assert scores_doc["decision_if_calibrated"]["decision"] == "PASS"  # what it would have been


def test_decide_same_clip_passes_when_everything_is_as_calibrated(aws: dict[str, Any]) -> None:
    """The control for the test above: the unedited calibration and its model's bytes PASS."""
    app = _decide(aws)

    result = app.lambda_handler(
        {"mode": "decide", "execution_arn": "arn:x", "state": _scored_state(aws, [0.01] * 4)}, FakeContext()
    )

    assert result["decision"] == "PASS"
    binding = _item(aws)["calibration_binding"]
    assert binding == {
        "bound": True,
        "differs": [],
        "artefact_sha256": [MODEL["artefact_sha256"]],
        "witnesses": {  # each witness of the model's bytes, and what it said
            "server": [MODEL["artefact_sha256"]],
            "deployment_parameter": [],
            "sagemaker_s3": [MODEL["artefact_sha256"]],
            "sagemaker_s3_unreadable": [],
            "sagemaker_image": [],
            "sagemaker_image_unresolved": [],
        },
        "decides_sha256": json.loads(_calibrated())["calibration"]["decides"]["sha256"],
        # issue 24: the calibration names no image digest, and the audit record says what that means
        "image": {"bound": False, "why": "the calibration names no image_digest: the image was not bound"},
    }


def test_calibration_decides_hash_is_sha256_of_its_canonical_fields() -> None:
    """Recomputed here with hashlib over json.dumps, as docs/decision-policy.md tells an auditor to."""
    decides = json.loads(_calibrated())["calibration"]["decides"]
    body = json.dumps(decides["fields"], sort_keys=True, separators=(",", ":")).encode()
    assert decides["sha256"] == hashlib.sha256(body).hexdigest()
    assert decides["fields"]["sampling"]["frame_count"] == 32
    assert {"min_frames_scored", "min_face_fraction", "allow_pass_on_partial", "require_faces"} <= set(
        decides["fields"]
    )
