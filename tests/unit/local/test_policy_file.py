"""`--policy FILE` and `evaluate --write-policy`, without a stack: what is refused, and why."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from kyc.domain.policy import DecisionPolicy
from kyclocal.commands import run
from kyclocal.commands.evaluate import CalibrationRefused, LabelledFile, calibrated_policy
from kyclocal.policy_file import PolicyFileError, read_policy, role_played_policy

MODEL = {"name": "acme", "version": "2.0"}


def _labelled(tmp_path: Path) -> list[LabelledFile]:
    files = []
    for name, label in (("g.mp4", "genuine"), ("a.mp4", "attack")):
        (tmp_path / name).write_bytes(name.encode())
        files.append(LabelledFile(tmp_path / name, label, None))
    return files


def test_read_policy_refuses_what_decide_would_refuse(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(role_played_policy(MODEL, pass_threshold=0.2, reject_threshold=0.9)))
    assert DecisionPolicy.from_mapping(read_policy(good)).calibration is not None
    broken = json.loads(good.read_text())
    broken["calibration"]["measured"]["bpcer"]["errors"] = 5
    for name, text, message in (
        ("bad.json", json.dumps(broken), "Wilson"),
        ("text.json", "{not json", "not JSON"),
        ("edited.json", json.dumps(json.loads(good.read_text()) | {"pass_threshold": 0.25}), "recalibrate"),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(PolicyFileError, match=message):
            read_policy(tmp_path / name)
    with pytest.raises(PolicyFileError, match=r"missing\.json"):
        read_policy(tmp_path / "missing.json")


def test_run_with_a_malformed_policy_exits_2_before_any_stack(tmp_path: Path, capsys) -> None:
    (tmp_path / "p.json").write_text('{"calibration": {"model": {}}}')
    parser = argparse.ArgumentParser()
    run.register(parser.add_subparsers(required=True))
    args = parser.parse_args(["run", str(tmp_path / "x.mp4"), "--policy", str(tmp_path / "p.json")])

    assert args.command(args, out=io.StringIO()) == 2
    assert "calibration" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([{"name": "reference-spectrum-NOT-A-PRODUCTION-DETECTOR", "version": "0.1.0"}], "not a detector"),
        ([MODEL, MODEL | {"version": "2.1"}], "one model"),
        ([], "one model"),
        ([MODEL], "one model artefact"),  # the run's evidence names no artefact hash
    ],
)
def test_write_policy_refuses_what_cannot_be_calibrated(tmp_path: Path, models: list, message: str) -> None:
    with pytest.raises(CalibrationRefused, match=message):
        calibrated_policy(
            _labelled(tmp_path),
            [{"decision": "PASS"}, {"decision": "REJECT"}],
            models,
            pass_threshold=0.2,
            reject_threshold=0.9,
            origin="given",
        )


def _observed(artefact: str, frame_count: int = 32) -> dict:
    """What a decision's scores.json says decided it (calibration_binding.observed)."""
    return {"artefact_sha256": [artefact], "decides": {"sampling": {"frame_count": frame_count}}}


@pytest.mark.parametrize(
    ("observed", "message"),
    [
        ([_observed("a" * 64), _observed("b" * 64)], "one model artefact"),  # weights swapped mid-run
        ([_observed("a" * 64), _observed("a" * 64, 8)], "different settings"),
        ([{"artefact_sha256": [], "decides": {"sampling": {}}}], "one model artefact"),
    ],
)
def test_write_policy_refuses_a_run_of_mixed_artefacts_or_sampling(
    tmp_path: Path, observed: list, message: str
) -> None:
    with pytest.raises(CalibrationRefused, match=message):
        calibrated_policy(
            _labelled(tmp_path),
            [{"decision": "PASS"}, {"decision": "REJECT"}],
            [MODEL],
            pass_threshold=0.2,
            reject_threshold=0.9,
            origin="given",
            observed=observed,
        )


def test_written_policy_is_bound_to_the_model_and_reads_back(tmp_path: Path) -> None:
    document = calibrated_policy(
        _labelled(tmp_path),
        [{"decision": "REVIEW"}, {"decision": "PASS"}],
        [MODEL],
        pass_threshold=0.25,
        reject_threshold=0.85,
        origin="given",
        observed=[_observed("a" * 64), _observed("a" * 64)],
    )
    policy = DecisionPolicy.from_mapping(document)
    assert policy.calibration is not None and policy.calibration.model.artefact_sha256 == "a" * 64
    assert policy.calibration.decides is not None
    assert policy.calibration.decides.fields["sampling"] == {"frame_count": 32}
    assert policy.calibration.decides.fields["reject_threshold"] == 0.85
    assert policy.calibration is not None and policy.calibration.binds("acme", "2.0", "v1")
    assert (policy.calibration.apcer.errors, policy.calibration.review_rate.errors) == (1, 1)  # attack PASSed
    assert document["version"].startswith("cal-")
