"""The local saved state keeps the learning loop (issue 21): registry, endpoints and pointer history
survive a stop and a start.

Journey: up (a champion) -> register a pre-built tiny candidate package (a toy ONNX model calibrated by
`kycscreen evaluate --write-policy`, no retrain) -> approve -> (shadow) -> re-screen -> promote -> stop
(the state is saved) -> up again (restored) -> pointer history, registry and endpoint as they were -> a
new upload is decided by the promoted model under its policy -> `kycscreen rollback` goes one step back
-> the champion decides again. And a state saved before the loop was kept (version 2) still loads.

Oracles: SSM's parameter history and SageMaker's Describe* read before the stop (not the saved files),
the model files' own SHA-256 hashed here, and the model data object's bytes hashed here.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from kyclocal import loop
from kyclocal.calibration_demo import write_demo_model
from kyclocal.cli import main
from kyclocal.commands import evaluate
from kyclocal.samples import write_clip
from kyclocal.stack import LocalStack, LocalStackSettings
from kyclocal.state import MARKER, StateError
from tests.fixtures.champions import write_backwards_champion

pytestmark = pytest.mark.integration
FRAMES = 4


def _clip(path: Path, cast: int, person: int) -> Path:
    write_clip(
        path,
        "mp4",
        "libx264",
        {"preset": "ultrafast"},
        width=480,
        height=360,
        fps=10,
        seconds=1.5,
        red_cast=cast,
        person=person,
    )
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pre-built package as `kycscreen retrain` leaves it (package.json, report.json, the model, its
    policy bound to its bytes), calibrated by `kycscreen evaluate` on four clips instead of a retrain."""
    from moto.moto_api._internal.models import moto_api_backend

    root = tmp_path_factory.mktemp("candidate")
    config = write_demo_model(root / "model")
    rows = [("genuine-a.mp4", "genuine", -30), ("genuine-b.mp4", "genuine", 0)]
    rows += [("attack-a.mp4", "attack", 60), ("attack-b.mp4", "attack", 90)]
    for person, (name, _label, cast) in enumerate(rows):
        _clip(root / name, cast, person)
    (root / "labels.csv").write_text(
        "file,label,attack_type\n" + "".join(f"{n},{label},\n" for n, label, _ in rows), encoding="utf-8"
    )
    policy_path = config.parent / "policy.json"
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers(required=True))
    args = parser.parse_args(
        [
            *(
                "evaluate",
                str(root / "labels.csv"),
                "--json",
                "--model",
                "onnx",
                "--onnx-config",
                str(config),
            ),
            *("--frames", str(FRAMES), "--pass-threshold", "0.3", "--reject-threshold", "0.8"),
            *("--write-policy", str(policy_path)),
        ]
    )
    moto_api_backend.reset()
    assert args.command(args, out=io.StringIO()) == 0
    policy = json.loads(policy_path.read_text())
    sha = _sha(config.parent / "tiny.onnx")
    assert policy["calibration"]["model"]["artefact_sha256"] == sha
    package = {
        "status": "PendingManualApproval",
        "model": policy["calibration"]["model"],
        "model_sha256": sha,
        "policy_bound_to_sha256": sha,
        "contract_version": policy["calibration"]["model"]["contract_version"],
        "dataset_version": "ds-test-loop-state",
        "labelled_set_sha256": policy["calibration"]["labelled_set"]["sha256"],
        "policy": str(policy_path),
        "policy_version": policy["version"],
    }
    out = root / "package"
    out.mkdir()
    (out / "package.json").write_text(json.dumps(package), encoding="utf-8")
    (out / "report.json").write_text(json.dumps({"gate": {"passed": True, "reasons": []}}), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A champion that has it backwards (a red cast scores low), without a calibrated policy."""
    model = write_backwards_champion(tmp_path_factory.mktemp("champion"))
    return model, {"pass_threshold": 0.3, "reject_threshold": 0.8, "version": "champion-1"}


def _settings(champion: tuple[Path, dict], state: Path) -> LocalStackSettings:
    return LocalStackSettings(
        model="onnx",
        onnx_config=champion[0],
        frame_count=FRAMES,
        policy=champion[1],
        state_dir=state,
        extra_env={"KYC_POLICY_CACHE_SECONDS": "0"},
    )


def _cli(capsys, stack: LocalStack, *argv: str) -> tuple[int, object]:
    capsys.readouterr()
    code = main([*argv, "--endpoint-url", stack.endpoint_url])
    printed = capsys.readouterr()
    return code, (json.loads(printed.out) if printed.out.strip() else printed.err)


def _decided(stack: LocalStack, path: Path) -> dict:
    sid = stack.upload(path)["submission_id"]
    record = stack.wait_for_decision(sid, timeout_s=240)
    assert record is not None, path.name
    return record


def _history(stack: LocalStack, name: str | None = None) -> list[dict]:
    pages = stack.client("ssm").get_parameter_history(
        Name=name or stack.parameters["PolicyParameterName"], WithDecryption=True
    )["Parameters"]
    return [
        {k: p.get(k) for k in ("Version", "Value", "Labels", "LastModifiedDate", "Type")}
        for p in sorted(pages, key=lambda p: p["Version"])
    ]


def _serves(stack: LocalStack, endpoint: str) -> tuple[tuple[str, str, str], bytes]:
    """What SageMaker and S3 say the endpoint serves (the deployment witness's sources: the model data
    location, the image, S3's verified SHA-256 of the data) and the model data bytes."""
    sm = stack.client("sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    )
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    container = model["PrimaryContainer"]
    url = container.get("ModelDataUrl") or container["ModelDataSource"]["S3DataSource"]["S3Uri"]
    bucket, _, key = url.removeprefix("s3://").partition("/")
    s3 = stack.client("s3")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    checksum = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED").get("ChecksumSHA256", "")
    return (url, container["Image"], checksum), body


def test_registry_endpoint_and_pointer_history_survive_a_restart_and_rollback_still_works(
    candidate: Path, champion: tuple[Path, dict], tmp_path: Path, capsys
) -> None:
    state = tmp_path / "state"
    candidate_sha = json.loads((candidate / "package.json").read_text())["model_sha256"]
    candidate_policy = json.loads(
        Path(json.loads((candidate / "package.json").read_text())["policy"]).read_text()
    )
    champion_sha = _sha(champion[0].parent / "champion.onnx")
    with LocalStack(_settings(champion, state)) as stack:
        code, registered = _cli(capsys, stack, "register", str(candidate))
        assert code == 0, registered
        arn = registered["arn"]
        code, shadowed = _cli(capsys, stack, "approve", arn, "--by", "alice", "--note", "report read")
        assert code == 0 and shadowed["status"] == "SHADOWED", shadowed
        code, rescreened = _cli(capsys, stack, "rescreen", arn)
        assert code == 0 and rescreened["failed"] == 0, rescreened
        code, promoted = _cli(capsys, stack, "promote", arn)
        assert code == 0, promoted
        endpoint = promoted["deployment"]["endpoint_name"]
        before_history = _history(stack)
        before_shadow = _history(stack, stack.outputs["ShadowPolicyParameterName"])
        before_package = loop.registry(stack).describe(arn)
        before_serves = _serves(stack, endpoint)
        assert (
            len(before_history) == 2
            and json.loads(before_history[-1]["Value"])["deployment"]["endpoint_name"] == endpoint
        )
    saved = json.loads((state / MARKER).read_text())
    assert saved["state_version"] == "3" and saved["model_packages"] == 1
    # production 1-2, and the shadow pointer's two: approval's, and promotion's clearing one
    assert saved["pointer_versions"] == 4

    with LocalStack(_settings(champion, state)) as stack:
        # the pointer: every version, value, type and time as SSM had them before the stop
        assert _history(stack) == before_history
        assert _history(stack, stack.outputs["ShadowPolicyParameterName"]) == before_shadow
        # the registry: the same package, Approved, who approved it and why, every step's record
        after = loop.registry(stack).describe(arn)
        assert after == before_package and after.approval_status == "Approved"
        assert "alice" in (after.approval_description or "")
        # the endpoint the pointer names serves the same bytes (hashed here) SageMaker says it does
        declared, body = _serves(stack, endpoint)
        assert (declared, body) == before_serves and hashlib.sha256(body).hexdigest() == candidate_sha
        # a restored stack decides with the promoted model under its policy
        decided = _decided(stack, _clip(tmp_path / "attack-after.mp4", 90, 3))
        assert decided["model"]["artefact_sha256"] == candidate_sha
        assert decided["policy"]["version"] == candidate_policy["version"]
        assert decided["decision"] != "PASS" and "MODEL_NOT_CALIBRATED" not in decided["reasons"], decided
        # rollback: one step back, read from the restored history
        code, rolled = _cli(capsys, stack, "rollback")
        assert code == 0 and rolled["pointer_version"] == 3, rolled
        history = _history(stack)
        assert history[-1]["Value"] == before_history[0]["Value"]
        back = _decided(stack, _clip(tmp_path / "attack-back.mp4", 90, 2))
        assert back["model"]["artefact_sha256"] == champion_sha and back["policy"]["version"] == "champion-1"


def test_a_state_saved_before_the_loop_was_kept_still_loads_and_a_newer_one_is_refused(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with LocalStack(LocalStackSettings(frame_count=FRAMES, triggers=False, state_dir=state)) as stack:
        bucket = stack.resources.audit_bucket
        stack.client("s3").put_object(Bucket=bucket, Key="kept/before.txt", Body=b"kept across versions")
    # make it a version 2 state: no loop/ file, no learning or model data buckets, no checksums
    shutil.rmtree(state / "loop")
    index_path = state / "s3" / "index.json"
    index = [
        {k: v for k, v in e.items() if k != "checksum_sha256"}
        for e in json.loads(index_path.read_text())
        if e.get("bucket_logical_id") not in ("LearningBucket", "ModelDataBucket")
    ]
    index_path.write_text(json.dumps(index))
    marker = json.loads((state / MARKER).read_text())
    (state / MARKER).write_text(json.dumps(marker | {"state_version": "2"}))
    with LocalStack(LocalStackSettings(frame_count=FRAMES, triggers=False, state_dir=state)) as stack:
        body = stack.client("s3").get_object(Bucket=stack.resources.audit_bucket, Key="kept/before.txt")[
            "Body"
        ]
        assert body.read() == b"kept across versions"
        assert loop.registry(stack).packages() == []
    (state / MARKER).write_text(
        json.dumps(json.loads((state / MARKER).read_text()) | {"state_version": "99"})
    )
    refused = LocalStack(LocalStackSettings(frame_count=FRAMES, triggers=False, state_dir=state))
    with pytest.raises(StateError, match="another version"):
        try:
            refused.start()
        finally:
            refused.settings.state_dir = None  # stop the server without saving over the refused state
            refused.stop()
    assert json.loads((state / MARKER).read_text())["state_version"] == "99"  # left as it was


def test_a_pointer_survives_a_command_that_does_not_use_it_with_its_labels(tmp_path: Path) -> None:
    """`kycscreen up --policy` promotes, `kycscreen run` (no --policy) saves, `up --policy` again: the
    pointer's history (versions, values, labels) is still the one SSM had."""
    state = tmp_path / "state"
    champion = {"pass_threshold": 0.3, "reject_threshold": 0.8, "version": "champion-1"}
    with_policy = LocalStackSettings(frame_count=FRAMES, triggers=False, state_dir=state, policy=champion)
    with LocalStack(with_policy) as stack:
        name = stack.parameters["PolicyParameterName"]
        pointer = loop.pointer(stack)
        pointer.put(champion | {"version": "promoted-2"}, expected_version=1)
        stack.client("ssm").label_parameter_version(Name=name, ParameterVersion=1, Labels=["first-champion"])
        before = _history(stack)
    without = LocalStackSettings(frame_count=FRAMES, triggers=False, state_dir=state)
    with LocalStack(without) as stack:
        assert "PolicyParameterName" not in stack.settings.parameters()
    with LocalStack(with_policy) as stack:
        after = _history(stack)
        assert after == before and after[0]["Labels"] == ["first-champion"]
        assert json.loads(after[-1]["Value"])["version"] == "promoted-2"  # not the start's --policy
        assert loop.rollback(stack).document == champion  # one step back, from the restored history


def test_kycscreen_up_stopped_by_sigterm_keeps_registry_and_pointer_and_rollback_goes_one_step_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The user's path: `kycscreen up --policy` in its own process, a package approved and the pointer
    moved from another shell, SIGTERM (the state is saved), `kycscreen up` again, `kycscreen rollback`."""
    from kyc.aws.model_registry import ModelRegistry
    from tests.fixtures.kycscreen_up import read_settings, start_up, stop_up

    state, policy = tmp_path / "state", tmp_path / "champion-policy.json"
    champion = {"pass_threshold": 0.3, "reject_threshold": 0.8, "version": "champion-1"}
    policy.write_text(json.dumps(champion), encoding="utf-8")
    argv = ("--state-dir", str(state), "--policy", str(policy), "--no-workbench")
    up = start_up(*argv)
    try:
        settings = read_settings(up)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            monkeypatch.setenv(name, settings[name])
        remote = loop.RemoteStack(settings["AWS_ENDPOINT_URL"])
        registry = ModelRegistry(remote.outputs["ModelPackageGroupName"], remote.client("sagemaker"))
        registry.ensure_group()
        package = registry.register(
            image="kycserve:local",
            model_data_url="s3://example/model.onnx",
            metadata={"ModelSha256": "ab" * 32, "GatePassed": "true"},
            description="a tiny package",
        )
        registry.approve(package.arn, approver="alice", note="read the report")
        loop.pointer(remote).put(champion | {"version": "promoted-2"}, expected_version=1)
        before = [(v.version, v.document) for v in loop.pointer(remote).history()]
        before_package = registry.describe(package.arn)
    finally:
        code, _seconds = stop_up(up, timeout_s=120)
    assert code == 0
    up = start_up(*argv)
    try:
        settings = read_settings(up)
        remote = loop.RemoteStack(settings["AWS_ENDPOINT_URL"])
        registry = ModelRegistry(remote.outputs["ModelPackageGroupName"], remote.client("sagemaker"))
        assert registry.describe(package.arn) == before_package
        assert before_package.approval_status == "Approved" and "alice" in before_package.approval_description
        assert [(v.version, v.document) for v in loop.pointer(remote).history()] == before
        capsys.readouterr()
        assert main(["rollback", "--endpoint-url", settings["AWS_ENDPOINT_URL"]]) == 0
        assert json.loads(capsys.readouterr().out)["pointer_version"] == 3
        assert loop.pointer(remote).current().document == champion  # one step back
    finally:
        stop_up(up, timeout_s=120)
