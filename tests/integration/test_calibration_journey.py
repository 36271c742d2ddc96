"""The calibration journey a customer walks before going live, end to end through the local stack:
evaluate a labelled set -> write the policy -> screen with it -> PASS and REJECT appear; the same policy
with another model version, or the reference scorer, gives REVIEW MODEL_NOT_CALIBRATED.

The model and labelled set are kyclocal.calibration_demo's toy (a red colour cast on the face crop).
The expected outcomes come from scoring every decoded frame of each clip directly (PyAV, then the
model, no pipeline): genuine 0.009, 0.035, 0.13, 0.21, 0.53, 0.71; attacks 0.65, 0.89, 0.96, 0.99,
0.995, each within 0.002 over its frames; with thresholds 0.3 / 0.8 no clip is within 0.09 of one.
Those figures predate the per-clip scenes (kyclocal.samples.side_panels, added so reuse detection does
not match the set's clips to each other); the panels reach the edge of the face crop, and the pipeline
now scores genuine-neutral 0.108, genuine-warmer 0.457, attack-cast-90 0.995: same decisions.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import pytest

from kyclocal.calibration_demo import MODEL_NAME, build_labelled_set, write_demo_model
from kyclocal.commands import evaluate, run

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _cli(module: object, argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers(required=True))  # type: ignore[attr-defined]
    args = parser.parse_args(argv)
    out = io.StringIO()
    return args.command(args, out=out), out.getvalue()


def _run(files: list[Path], *extra: str) -> list[dict]:
    code, out = _cli(run, ["run", *map(str, files), "--json", "--no-state", "--frames", "8", *extra])
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_calibration_journey_evaluate_write_policy_then_pass_and_reject(tmp_path: Path) -> None:
    model = write_demo_model(tmp_path)
    labels = build_labelled_set(tmp_path)
    policy_path = tmp_path / "policy.json"

    code, out = _cli(
        evaluate,
        [
            *("evaluate", str(labels), "--json", "--model", "onnx", "--onnx-config", str(model)),
            *("--frames", "8", "--pass-threshold", "0.3", "--reject-threshold", "0.8"),
            *("--write-policy", str(policy_path)),
        ],
    )

    assert code == 0
    result = json.loads(out)
    # No calibration was in force while measuring: the run recorded REVIEW MODEL_NOT_CALIBRATED for
    # every scored clip, and the rates are what these thresholds decide once bound to the model.
    assert result["not_calibrated_as_run"] == 11
    by_file = {Path(f["file"]).name: f["decision"] for f in result["files"]}
    assert by_file == {
        "genuine-cool.mp4": "PASS",
        "genuine-pale.mp4": "PASS",
        "genuine-neutral.mp4": "PASS",
        "genuine-warm.mp4": "PASS",
        "genuine-warmer.mp4": "REVIEW",
        "genuine-sunlit.mp4": "REVIEW",
        "attack-faint-cast.mp4": "REVIEW",
        "attack-cast-45.mp4": "REJECT",
        "attack-cast-60.mp4": "REJECT",
        "attack-cast-75.mp4": "REJECT",
        "attack-cast-90.mp4": "REJECT",
    }
    document = json.loads(policy_path.read_text())
    assert len(policy_path.read_text()) < 4096  # fits a standard SSM parameter
    calibration = document["calibration"]
    assert calibration["model"] == {
        "name": MODEL_NAME,
        "version": "1.0.0",
        "contract_version": "v1",
        "artefact_sha256": hashlib.sha256((tmp_path / "tiny.onnx").read_bytes()).hexdigest(),
    }
    decides = calibration["decides"]  # every deciding field and the sampling the run used, hashed
    assert decides["fields"]["sampling"]["frame_count"] == 8
    assert decides["fields"]["min_frames_scored"] == 8 and decides["fields"]["reject_threshold"] == 0.8
    canonical = json.dumps(decides["fields"], sort_keys=True, separators=(",", ":")).encode()
    assert decides["sha256"] == hashlib.sha256(canonical).hexdigest()
    assert (document["pass_threshold"], document["reject_threshold"]) == (0.3, 0.8)
    measured = calibration["measured"]
    assert (measured["apcer"]["errors"], measured["apcer"]["total"]) == (0, 5)
    assert (measured["bpcer"]["errors"], measured["bpcer"]["total"]) == (0, 6)
    assert (measured["review_rate"]["errors"], measured["review_rate"]["total"]) == (3, 11)
    lines = sorted(
        f"{hashlib.sha256((tmp_path / f['file']).read_bytes()).hexdigest()} {f['label']}\n"
        for f in ({"file": Path(r["file"]).name, "label": r["label"]} for r in result["files"])
    )
    assert calibration["labelled_set"]["sha256"] == hashlib.sha256("".join(lines).encode()).hexdigest()

    genuine, attack = tmp_path / "genuine-neutral.mp4", tmp_path / "attack-cast-90.mp4"
    onnx = ("--model", "onnx", "--onnx-config")
    calibrated = _run([genuine, attack], *onnx, str(model), "--policy", str(policy_path))
    assert [(r["decision"], r["reasons"]) for r in calibrated] == [
        ("PASS", ["LOW_FAKE_SCORE"]),
        ("REJECT", ["HIGH_FAKE_SCORE"]),
    ]
    assert {r["policy_version"] for r in calibrated} == {document["version"]}

    # The same weights under a new version label: the thresholds were never measured for it.
    bumped = write_demo_model(tmp_path, version="1.1.0")
    other = _run([genuine, attack], *onnx, str(bumped), "--policy", str(policy_path))
    assert [(r["decision"], r["reasons"]) for r in other] == [("REVIEW", ["MODEL_NOT_CALIBRATED"])] * 2

    # The same name and version with other weights: a constant near 0 (would PASS everything) and the
    # score inverted (would PASS the attack and REJECT the genuine clip). Bound by its bytes: REVIEW.
    for name, weight, bias in (("constant", 0.0, -10.0), ("inverted", -25.0, 16.5)):
        swapped = write_demo_model(tmp_path / name, weight_red=weight, bias=bias)
        held = _run([genuine, attack], *onnx, str(swapped), "--policy", str(policy_path))
        assert [(r["decision"], r["reasons"]) for r in held] == [("REVIEW", ["MODEL_NOT_CALIBRATED"])] * 2, (
            name
        )

    # A lying container: the constant-near-0 weights deployed under the same name and version (SageMaker
    # and S3 know those bytes), the server reporting the calibrated hash. Its own report cannot catch it;
    # the deployment witness, which the container does not write, does.
    liar_config = write_demo_model(tmp_path / "liar", weight_red=0.0, bias=-10.0)
    lying = _run_lying_container([genuine, attack], liar_config, calibration["model"], document)
    assert [(r["decision"], r["reasons"]) for r, _ in lying] == [("REVIEW", ["MODEL_NOT_CALIBRATED"])] * 2
    deployed = hashlib.sha256((tmp_path / "liar" / "tiny.onnx").read_bytes()).hexdigest()  # hashlib oracle
    for _, binding in lying:
        assert binding["differs"] == ["model.witness.artefact_sha256"]  # the witness, not the server
        assert binding["witnesses"]["server"] == [calibration["model"]["artefact_sha256"]]
        assert binding["witnesses"]["sagemaker_s3"] == [deployed]

    # The same model sampling 16 frames, not the 8 it was calibrated at.
    denser = _run([genuine], *onnx, str(model), "--policy", str(policy_path), "--frames", "16")
    assert [(r["decision"], r["reasons"]) for r in denser] == [("REVIEW", ["MODEL_NOT_CALIBRATED"])]

    # The reference scorer never decides, with this policy or any other.
    reference = _run([genuine, attack], "--policy", str(policy_path))
    assert [r["decision"] for r in reference] == ["REVIEW", "REVIEW"]
    assert all("MODEL_NOT_CALIBRATED" in r["reasons"] for r in reference)


def _run_lying_container(
    files: list[Path], onnx_config: Path, claims: dict, policy: dict
) -> list[tuple[dict, dict]]:
    """Screen ``files`` on a local stack that deployed ``onnx_config``'s network honestly (model data in
    S3 with its SHA-256, a SageMaker model, config and endpoint) while the container serving it reports
    ``claims`` (name, version, artefact hash) instead. Returns (row, calibration binding) per file."""
    from kyc.domain.contract import ModelInfo
    from kyclocal.commands.run import screen_files
    from kyclocal.stack import LocalStack, LocalStackSettings
    from kycserve.models import load_model

    liar = load_model("onnx", onnx_config=onnx_config)
    liar.info = ModelInfo(claims["name"], claims["version"], claims["artefact_sha256"])
    settings = LocalStackSettings(model="onnx", onnx_config=onnx_config, frame_count=8, policy=policy)
    with LocalStack(settings) as stack:
        stack.serve_model(liar, deploy=False)  # no deployment says so: only the container changed its story
        rows = screen_files(stack, files)
        return [(row, stack.decision(row["submission_id"])["calibration_binding"]) for row in rows]


def test_evaluate_refuses_to_calibrate_the_reference_scorer(tmp_path: Path) -> None:
    build_labelled_set(tmp_path, seconds=1.0)
    labels = tmp_path / "two.csv"
    labels.write_text("file,label\ngenuine-neutral.mp4,genuine\nattack-cast-90.mp4,attack\n")
    policy_path = tmp_path / "policy.json"

    code, _ = _cli(
        evaluate, ["evaluate", str(labels), "--json", "--frames", "8", "--write-policy", str(policy_path)]
    )

    assert code == 2
    assert not policy_path.exists()
