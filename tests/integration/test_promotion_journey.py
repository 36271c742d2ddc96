"""Issue 21 item 3: promotion that cannot skip a step, as one journey on the local stack.

retrain (a candidate better than a champion that PASSes attacks) -> registered in the Model Registry
-> refused before approval -> approved by a person -> shadowed by the EventBridge-triggered function
(its own endpoint, nothing decided with it) -> refused before a re-screen -> backlog re-screened
(report, recorded decisions untouched) -> promoted in one write -> a new upload decided by the
candidate's bytes under the candidate's policy -> rolled back -> a new upload decided by the champion.

Oracles: the model files' own SHA-256 (hashed here), how each clip was made (a red cast = attack),
SageMaker's DescribeEndpoint/DescribeModel, and SSM's parameter history; never the code's own report.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest

from kyclocal import loop
from kyclocal.alarms import datapoints_from_emf
from kyclocal.cli import main
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import drawn_subject_clip
from tests.integration.test_retrain_journey import _retrain, champion, labelled  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _clip(root: Path, person: int, attack: bool) -> Path:
    path = root / f"backlog-{person}-{'attack' if attack else 'genuine'}.mp4"
    return drawn_subject_clip(path, red_cast=80 if attack else -20, person=person)


def _cli(capsys, stack: LocalStack, *argv: str) -> tuple[int, object]:
    """A `kycscreen` promotion command against the running stack's endpoint, as from another shell."""
    capsys.readouterr()
    code = main([*argv, "--endpoint-url", stack.endpoint_url])
    printed = capsys.readouterr()
    return code, (json.loads(printed.out) if printed.out.strip() else printed.err)


def _hand_mix(decided: list[tuple[str, float]]) -> dict:
    """The drift baseline of these (decision, score) pairs, counted here: shares in percent of
    PASS/REVIEW/REJECT and of scores in [0,.1), [.1,.2), [.2,.5), [.5,.9), [.9,1]."""
    edges = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.5), (0.5, 0.9), (0.9, 1.01)]
    n = len(decided)
    return {
        "outcome_percent": [
            100.0 * sum(d == o for d, _ in decided) / n for o in ("PASS", "REVIEW", "REJECT")
        ],
        "band_percent": [100.0 * sum(lo <= s < hi for _, s in decided) / n for lo, hi in edges],
        "decisions": n,
    }


def _drift_emitted(stack: LocalStack, since: float, decision: str) -> float:
    """The DriftOutcomeDeviation decide emitted for ``decision`` since ``since`` (one decision)."""
    points = [
        p
        for p in datapoints_from_emf(stack.log_lines())
        if p.name == "DriftOutcomeDeviation"
        and p.timestamp >= since
        and ("outcome", decision) in p.dimensions
    ]
    assert len(points) == 1, points
    return points[0].value


def _by_hand(decision: str, percent: float) -> float:
    """(1 - p) / sqrt(max(p (1 - p), 0.05 * 0.95)): the deviation of a decision in its own category."""
    p = percent / 100
    return (1 - p) / max(p * (1 - p), 0.0475) ** 0.5


def _decided(stack: LocalStack, path: Path) -> dict:
    sid = stack.upload(path)["submission_id"]
    record = stack.wait_for_decision(sid, timeout_s=240)
    assert record is not None, path.name
    return record


def _scores(stack: LocalStack, record: dict) -> dict:
    """The decision's scores.json in the audit bucket, checked against the hash the record names."""
    artefacts = record["artefacts"]
    s3 = stack.client("s3")
    raw = s3.get_object(Bucket=stack.resources.audit_bucket, Key=artefacts["scores_key"])["Body"].read()
    assert hashlib.sha256(raw).hexdigest() == artefacts["scores_sha256"]
    return json.loads(raw)


def test_a_better_candidate_goes_through_every_step_and_rolls_back(
    labelled: Path,  # noqa: F811
    champion: tuple[Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys,
) -> None:
    code, report = _retrain(labelled, tmp_path / "run", champion, capsys)
    assert code == 0, report["gate"]
    candidate_sha = _sha(tmp_path / "run" / "candidate" / "model.onnx")
    champion_sha = _sha(champion[0].parent / "champion.onnx")
    champion_policy = json.loads(champion[1].read_text()) | {"version": "champion-1"}
    settings = LocalStackSettings(
        model="onnx",
        onnx_config=champion[0],
        frame_count=8,
        policy=champion_policy,
        extra_env={"KYC_POLICY_CACHE_SECONDS": "0"},  # see the switch at once (AWS: within 300 s)
    )
    with LocalStack(settings) as stack:
        backlog = {_clip(tmp_path, 60 + i, attack=i % 2 == 0): i % 2 == 0 for i in range(4)}
        recorded = {}
        for path, attack in backlog.items():
            record = _decided(stack, path)
            assert record["model"]["artefact_sha256"] == champion_sha
            recorded[record["submission_id"]] = (record, attack)

        # 1. registered, PendingManualApproval, carrying the bytes' hash and S3 pointers under the stack
        code, registered = _cli(capsys, stack, "register", str(tmp_path / "run"))
        assert code == 0, registered
        package = loop.registry(stack).describe(registered["arn"])
        assert package.approval_status == "PendingManualApproval"
        assert package.metadata["ModelSha256"] == candidate_sha
        assert package.metadata["LabelledSetSha256"] == report["dataset"]["labelled_set_sha256"]
        s3 = stack.client("s3")
        data_bucket, _, data_key = package.model_data_url.removeprefix("s3://").partition("/")
        # the model file itself, uncompressed, where the deployment witness reads model data (issue 24),
        # with the SHA-256 S3 verified at upload: the witness's number is the bytes' own
        assert data_bucket == stack.parameters["ModelDataBucket"], package.model_data_url
        model_object = s3.get_object(Bucket=data_bucket, Key=data_key, ChecksumMode="ENABLED")
        onnx_bytes = model_object["Body"].read()
        assert hashlib.sha256(onnx_bytes).hexdigest() == candidate_sha
        assert base64.b64decode(model_object["ChecksumSHA256"]).hex() == candidate_sha
        bucket, _, policy_key = package.metadata["PolicyS3Uri"].removeprefix("s3://").partition("/")
        assert s3.get_object(Bucket=bucket, Key=policy_key)["ServerSideEncryption"] == "aws:kms"

        # 2. nothing can be promoted before a person approves it
        code, refusal = _cli(capsys, stack, "promote", package.arn)
        assert code == 1 and "not Approved" in refusal
        production_before = loop.pointer(stack).current()

        # 3. approval -> EventBridge -> shadow: the candidate's own endpoint, the pointer untouched
        code, shadowed = _cli(capsys, stack, "approve", package.arn, "--by", "analyst", "--note", "read")
        assert code == 0 and shadowed["status"] == "SHADOWED", shadowed
        sm = stack.client("sagemaker")
        endpoint = sm.describe_endpoint(EndpointName=shadowed["endpoint_name"])
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        # the model is created from the package's model data (whose S3 checksum is the bytes' hash, above)
        # and its image by digest; nothing in it declares a hash of its own (issue 24)
        source = model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
        assert source["S3Uri"] == package.model_data_url
        assert "@sha256:" in model["PrimaryContainer"]["Image"]
        assert "Environment" not in model["PrimaryContainer"]
        assert loop.pointer(stack).current() == production_before
        shadow_time = _decided(stack, _clip(tmp_path, 70, attack=True))
        assert shadow_time["model"]["artefact_sha256"] == champion_sha  # shadow scores decide nothing
        # live shadow traffic: the same upload also scored by the candidate's endpoint, its would-be
        # decision under the candidate's policy recorded beside (never as) the decision
        live = _scores(stack, shadow_time)["shadow"]
        assert live["status"] == "COMPARED" and live["endpoint_name"] == shadowed["endpoint_name"], live
        assert live["model"]["artefact_sha256"] == live["artefact_sha256"] == candidate_sha
        assert live["recorded_decision"] == shadow_time["decision"] and live["decision"] != "PASS", live
        assert live["agrees"] == (live["decision"] == shadow_time["decision"])

        # 4. not promotable before the backlog is re-screened
        code, refusal = _cli(capsys, stack, "promote", package.arn)
        assert code == 1 and "re-screened" in refusal
        before = {sid: stack.decision(sid) for sid in recorded}
        code, rescreened = _cli(capsys, stack, "rescreen", package.arn)
        assert code == 0, rescreened
        assert rescreened["failed"] == 0 and rescreened["submissions"] == len(recorded) + 1
        key = rescreened["report_uri"].removeprefix(f"s3://{bucket}/")
        document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        by_sid = {i["submission_id"]: i for i in document["review_queue"]}
        # every recorded PASS on an attack clip would now be REJECT: each one is queued for review
        expected_queue = {
            sid for sid, (record, attack) in recorded.items() if attack and record["decision"] == "PASS"
        }
        assert expected_queue <= set(by_sid)
        assert {sid: stack.decision(sid) for sid in recorded} == before  # recorded decisions never change
        items = {}
        prefix = f"rescreen/{document['run_id']}/items/"
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
            item = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            items[item["submission_id"]] = item
        for sid, (_record, attack) in recorded.items():
            assert items[sid]["model"]["artefact_sha256"] == candidate_sha  # scored by the candidate
            # and SageMaker + S3 say the candidate's endpoint serves those bytes (the witness, not the server)
            assert items[sid]["model_witness"]["artefact_sha256"] == candidate_sha
            assert items[sid]["witness_differs"] == []
            assert items[sid]["candidate"] != ("PASS" if attack else "REJECT"), items[sid]
        # the candidate's mix on the team's own backlog: the drift baseline it will be promoted with
        candidate_mix = _hand_mix([(i["candidate"], i["score"]) for i in items.values()])
        assert "drift_baseline" not in production_before.document  # the template's DriftBaseline* apply

        # 5. promotion: one write of the pointer; SageMaker says the named endpoint serves the bytes
        code, promoted = _cli(capsys, stack, "promote", package.arn)
        assert code == 0 and promoted["pointer_version"] == production_before.version + 1, promoted
        deployment = promoted["deployment"]
        served = sm.describe_model(ModelName=deployment["endpoint_name"])["PrimaryContainer"]
        assert served["ModelDataSource"]["S3DataSource"]["S3Uri"] == package.model_data_url
        assert deployment["artefact_sha256"] == candidate_sha
        candidate_policy = json.loads(
            Path(json.loads((tmp_path / "run" / "package.json").read_text())["policy"]).read_text()
        )
        pointed = loop.pointer(stack).current()
        assert pointed is not None
        assert pointed.document["drift_baseline"] == candidate_mix  # in the same write as the model
        upload_time = time.time()
        after = _decided(stack, _clip(tmp_path, 71, attack=True))
        # decide measured the new decision against the new champion's mix (the alarm knows none)
        share = candidate_mix["outcome_percent"][("PASS", "REVIEW", "REJECT").index(after["decision"])]
        emitted = _drift_emitted(stack, upload_time, after["decision"])
        assert emitted == pytest.approx(_by_hand(after["decision"], share), abs=1e-9)
        assert after["model"]["artefact_sha256"] == candidate_sha
        assert "shadow" not in _scores(stack, after)  # promoted: the candidate is no longer a shadow
        shadow_name = loop.registry(stack).describe(package.arn).metadata["ShadowPolicyParameter"]
        shadow_value = stack.client("ssm").get_parameter(
            Name=shadow_name.rpartition(":")[0], WithDecryption=True
        )["Parameter"]["Value"]
        assert "deployment" not in json.loads(shadow_value)  # cleared as a new version, history kept
        assert after["policy"]["version"] == candidate_policy["version"]
        assert after["decision"] != "PASS" and "MODEL_NOT_CALIBRATED" not in after["reasons"], after

        # 6. rollback: the previous pointer, from SSM's history; the champion decides again
        code, rolled = _cli(capsys, stack, "rollback")
        assert code == 0, rolled
        history = stack.client("ssm").get_parameter_history(
            Name=stack.parameters["PolicyParameterName"], WithDecryption=True
        )
        values = [json.loads(p["Value"]) for p in history["Parameters"]]
        assert rolled["pointer_version"] == promoted["pointer_version"] + 1 and values[-1] == values[-3]
        upload_time = time.time()
        back = _decided(stack, _clip(tmp_path, 72, attack=True))
        assert "drift_baseline" not in values[-1]  # the rollback took the candidate's mix away with it
        # ... so decide measures against the template's fallback mix again: PASS,REVIEW,REJECT 90,8,2 %
        fallback = dict(zip(("PASS", "REVIEW", "REJECT"), (90.0, 8.0, 2.0), strict=True))[back["decision"]]
        emitted = _drift_emitted(stack, upload_time, back["decision"])
        assert emitted == pytest.approx(_by_hand(back["decision"], fallback), abs=1e-9)
        assert back["model"]["artefact_sha256"] == champion_sha
        assert back["policy"]["version"] == "champion-1"
