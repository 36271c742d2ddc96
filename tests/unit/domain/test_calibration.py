"""Calibration: thresholds bound to one model version, with provenance that is checked, not trusted."""

from __future__ import annotations

import copy
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kyc.domain.binding import calibration_binding, deciding_fields, sampling_in_force
from kyc.domain.calibration import (
    Calibration,
    MeasuredRate,
    calibration_from_decisions,
    labelled_set_sha256,
)
from kyc.domain.outcomes import Decision
from kyc.domain.policy import (
    DecisionPolicy,
    Effect,
    Finding,
    FrameEvidence,
    PolicyError,
    apply_findings,
    decide_outcome,
)
from kyc.domain.reasons import ReasonCode as R

MODEL = {"name": "acme-detector", "version": "3.1.0", "artefact_sha256": "e" * 64}
# what SageMaker + S3 say the endpoint was created from (kyc.domain.model_witness), honest by default
WITNESS = {"source": "sagemaker+s3", "artefact_sha256": "e" * 64, "unreadable": None}
SAMPLING = sampling_in_force(
    {"frame_count": 32, "max_side": 1024}, face_evidence_source="rekognition", face_check_frames=0
)


def model_binding_findings(
    calibration: Calibration | None, reported: list[dict], contract: str, witness: dict | None = WITNESS
) -> list[Finding]:
    """The binding's findings for the default policy and SAMPLING (what these tests vary is the model);
    every batch's deployment witness is ``witness``."""
    policy = DecisionPolicy()
    if calibration is not None:
        policy = DecisionPolicy(calibration=calibration)
    binding = calibration_binding(
        calibration,
        reported,
        contract,
        policy=policy,
        sampling=SAMPLING,
        deployment=[witness] * len(reported),
    )
    return binding.findings if binding is not None else []


def _calibration(**changes: object) -> dict:
    calibration = calibration_from_decisions(
        model=MODEL,
        contract_version="v1",
        labelled=[("a" * 64, "genuine"), ("b" * 64, "genuine"), ("c" * 64, "attack"), ("d" * 64, "attack")],
        decisions=["PASS", "REVIEW", "REJECT", "PASS"],
        pass_threshold=0.2,
        reject_threshold=0.9,
        aggregator="mean_logit",
        origin="given",
        calibrated_at=datetime(2026, 11, 29, 12, tzinfo=UTC),
        artefact_sha256=MODEL["artefact_sha256"],
        decides=deciding_fields(DecisionPolicy(), SAMPLING),
    )
    document = calibration.to_dict()
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = document
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[leaf]
        else:
            node[leaf] = value
    return document


def test_labelled_set_hash_is_the_documented_shell_recipe(tmp_path: Path) -> None:
    """Oracle: sha256sum each file, write '<hash> <label>' lines, LC_ALL=C sort, sha256sum."""
    labels = {"b.mp4": "attack", "a.mp4": "genuine", "c.webm": "genuine"}
    for i, name in enumerate(labels):
        (tmp_path / name).write_bytes(bytes([i]) * (1000 + i))
    hashes = {
        name: subprocess.run(
            ["sha256sum", str(tmp_path / name)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        for name in labels
    }
    lines = "".join(f"{hashes[n]} {label}\n" for n, label in labels.items())
    ordered = subprocess.run(
        ["sort"], input=lines, capture_output=True, text=True, check=True, env={"LC_ALL": "C"}
    ).stdout
    expected = subprocess.run(
        ["sha256sum"], input=ordered, capture_output=True, text=True, check=True
    ).stdout.split()[0]

    assert labelled_set_sha256([(hashes[n], lab) for n, lab in reversed(labels.items())]) == expected


def test_labelled_set_hash_changes_with_a_label() -> None:
    base = [("a" * 64, "genuine"), ("b" * 64, "attack")]
    flipped = [("a" * 64, "attack"), ("b" * 64, "attack")]
    assert labelled_set_sha256(base) != labelled_set_sha256(flipped)
    assert labelled_set_sha256(base) == labelled_set_sha256(list(reversed(base)))


def test_calibration_round_trips_and_rates_are_the_pipeline_decisions() -> None:
    calibration = Calibration.from_mapping(_calibration())
    assert Calibration.from_mapping(calibration.to_dict()) == calibration
    # attacks: REJECT, PASS -> APCER 1/2; genuine: PASS, REVIEW -> BPCER 0/2; REVIEW 1 of 4
    assert (calibration.apcer.errors, calibration.apcer.total) == (1, 2)
    assert (calibration.bpcer.errors, calibration.bpcer.total) == (0, 2)
    assert (calibration.review_rate.errors, calibration.review_rate.total) == (1, 4)
    # Wilson 0/2 upper bound, by hand: z^2/(n+z^2) with z = 1.959964 -> 3.841459 / 5.841459
    assert calibration.bpcer.ci95[1] == pytest.approx(3.841459 / 5.841459, abs=1e-6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labelled_set__sha256": "A" * 64}, "64 lower-case hex"),
        ({"labelled_set__hash_method": "md5"}, "hash_method"),
        ({"labelled_set__videos": 5}, "!= 5"),
        ({"calibrated_at": "2026-11-29T12:00:00"}, "time zone"),
        ({"calibrated_at": "yesterday"}, "ISO 8601"),
        ({"measured__apcer__value": 0.0}, "Wilson"),
        ({"measured__bpcer__ci95": [0.0, 0.05]}, "Wilson"),
        ({"measured__apcer__errors": 3}, "exceed"),
        ({"measured__review_rate": MeasuredRate.of(1, 5).to_dict()}, "labelled set's count"),
        ({"measured__bpcer": KeyError}, "missing"),
        ({"model__version": ""}, "non-empty"),
        ({"model__name": "reference-spectrum-NOT-A-PRODUCTION-DETECTOR"}, "not a detector"),
        ({"thresholds__origin": KeyError}, "missing"),
        ({"tuned_by": "me"}, "unknown"),
        ({"model__image_digest": "kycserve:latest"}, "image_digest must be sha256"),  # a tag is no digest
        ({"model__image_digest": "sha256:" + "A" * 64}, "image_digest must be sha256"),
    ],
)
def test_malformed_calibration_is_a_policy_error(changes: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        DecisionPolicy.from_mapping({"calibration": _calibration(**changes)})


def test_calibration_of_other_thresholds_does_not_describe_the_policy() -> None:
    with pytest.raises(PolicyError, match="recalibrate"):
        DecisionPolicy.from_mapping({"pass_threshold": 0.3, "calibration": _calibration()})
    with pytest.raises(PolicyError, match="recalibrate"):
        DecisionPolicy.from_mapping({"aggregator": "mean", "calibration": _calibration()})
    with pytest.raises(PolicyError, match="recalibrate"):  # more auto-REJECTs were never measured
        DecisionPolicy.from_mapping({"reject_threshold": 0.6, "calibration": _calibration()})
    # the incident brake: fewer PASSes than measured (runbook 2.1), the calibration still binds
    braked = DecisionPolicy.from_mapping({"pass_threshold": 0.0, "calibration": _calibration()})
    assert braked.calibration is not None and braked.calibration.pass_threshold == 0.2
    policy = DecisionPolicy.from_mapping({"calibration": copy.deepcopy(_calibration())})
    assert policy.calibration is not None and DecisionPolicy.from_mapping(policy.to_dict()) == policy


@pytest.mark.parametrize(
    ("reported", "contract", "finding"),
    [
        ([MODEL], "v1", False),
        ([MODEL, MODEL], "v1", False),
        ([MODEL | {"version": "3.1.1"}], "v1", True),
        ([{"name": "acme-detector-lite", "version": "3.1.0"}], "v1", True),
        ([MODEL, MODEL | {"version": "3.2.0"}], "v1", True),  # a canary variant answered one batch
        ([MODEL], "v2", True),
        ([MODEL | {"artefact_sha256": "f" * 64}], "v1", True),  # same name and version, other weights
        ([{"name": "acme-detector", "version": "3.1.0"}], "v1", True),  # no artefact reported
        ([MODEL | {"deployed_artefact_sha256": "f" * 64}], "v1", True),  # deployment recorded others
        ([MODEL | {"deployed_artefact_sha256": "e" * 64}], "v1", False),  # both agree
        ([{"name": "acme-detector", "version": "3.1.0", "deployed_artefact_sha256": "e" * 64}], "v1", False),
        ([], "v1", False),  # nothing scored: no score to bound
    ],
)
def test_model_binding(reported: list[dict], contract: str, finding: bool) -> None:
    calibration = Calibration.from_mapping(_calibration())
    expected = [Finding(R.MODEL_NOT_CALIBRATED, Effect.REVIEW)] if finding else []
    assert model_binding_findings(calibration, reported, contract) == expected


@pytest.mark.parametrize(
    ("witness", "differs"),
    [
        (WITNESS, []),
        # a lying container: it reports the calibrated hash, SageMaker + S3 say other bytes were deployed
        (WITNESS | {"artefact_sha256": "f" * 64}, ["model.witness.artefact_sha256"]),
        (
            WITNESS | {"artefact_sha256": None, "unreadable": "GetObjectAttributes failed: AccessDenied"},
            ["model.witness.unreadable"],
        ),
        (None, ["model.witness.unreadable"]),  # a batch that recorded no witness
    ],
)
def test_the_deployment_witness_must_name_the_calibrated_bytes(
    witness: dict | None, differs: list[str]
) -> None:
    calibration = Calibration.from_mapping(_calibration())
    policy = DecisionPolicy(calibration=calibration)

    binding = calibration_binding(
        calibration, [MODEL], "v1", policy=policy, sampling=SAMPLING, deployment=[witness]
    )

    assert binding is not None and list(binding.differs) == differs
    said = binding.to_dict()["observed"]["witnesses"]  # which witness said what, for the audit record
    assert said["server"] == ["e" * 64]
    assert said["sagemaker_s3"] == (
        [witness["artefact_sha256"]] if witness and witness["artefact_sha256"] else []
    )
    assert said["sagemaker_s3_unreadable"] == (
        []
        if witness and witness["artefact_sha256"]
        else [(witness or {}).get("unreadable") or "no witness recorded"]
    )


IMAGE, SWAPPED = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.mark.parametrize(
    ("named", "witness", "differs", "image"),
    [
        # a calibration that names the image: SageMaker's digest must be exactly it
        (IMAGE, WITNESS | {"image_digest": IMAGE}, [], {"bound": True, "expected": IMAGE}),
        # an image swapped under the same tag: SageMaker resolved it to another digest
        (
            IMAGE,
            WITNESS | {"image_digest": SWAPPED},
            ["model.witness.image_digest"],
            {"bound": False, "expected": IMAGE},
        ),
        # deployed by a tag nothing resolved: a name is not a binding
        (
            IMAGE,
            WITNESS | {"image_digest": None, "image_unresolved": "image kycserve:1 is a tag"},
            ["model.witness.image_digest"],
            {"bound": False, "expected": IMAGE},
        ),
        # contract v1 calibrations without an image keep today's behaviour, and the record says so
        (None, WITNESS | {"image_digest": SWAPPED}, [], {"bound": False}),
    ],
)
def test_a_calibration_that_names_the_image_binds_it(
    named: str | None, witness: dict, differs: list[str], image: dict
) -> None:
    document = _calibration(**({"model__image_digest": named} if named else {}))
    calibration = Calibration.from_mapping(document)
    assert (
        calibration.model.image_digest == named
        and Calibration.from_mapping(calibration.to_dict()) == calibration
    )
    policy = DecisionPolicy(calibration=calibration)

    binding = calibration_binding(
        calibration, [MODEL], "v1", policy=policy, sampling=SAMPLING, deployment=[witness]
    )

    assert binding is not None and list(binding.differs) == differs
    observed = binding.to_dict()["observed"]
    assert {k: v for k, v in observed["image"].items() if k != "why"} == image
    if named is None:
        assert "not bound" in observed["image"]["why"]
    assert observed["witnesses"]["sagemaker_image"] == (
        [witness["image_digest"]] if witness["image_digest"] else []
    )


def test_no_calibration_binds_nothing() -> None:
    assert model_binding_findings(None, [MODEL], "v1") == [Finding(R.MODEL_NOT_CALIBRATED, Effect.REVIEW)]


@pytest.mark.parametrize("p", [0.02, 0.98])
def test_uncalibrated_model_neither_passes_nor_rejects(p: float) -> None:
    verdict = decide_outcome(
        [FrameEvidence(f"{i:03d}", p, 1) for i in range(8)], frames_sampled=8, policy=DecisionPolicy()
    )
    assert verdict.decision in (Decision.PASS, Decision.REJECT)

    bounded = apply_findings(verdict, model_binding_findings(None, [MODEL], "v1"))

    assert (bounded.decision, bounded.reasons) == (Decision.REVIEW, (R.MODEL_NOT_CALIBRATED,))


@pytest.mark.parametrize(
    ("policy", "sampling", "differs"),
    [
        ({}, {}, []),
        (
            {"min_frames_scored": 1, "min_face_fraction": 0.0},
            {},
            ["decides.min_face_fraction", "decides.min_frames_scored"],
        ),
        ({"require_faces": False}, {}, ["decides.require_faces"]),
        ({"face_gates": {"min_face_side": 0.05}}, {}, ["decides.face_gates.min_face_side"]),
        ({"aggregator_params": {"eps": 0.01}}, {}, ["decides.aggregator_params.eps"]),
        ({}, {"frame_count": 8}, ["decides.sampling.frame_count"]),
        ({}, {"face_check_frames": 4}, ["decides.sampling.face_check_frames"]),
        ({"pass_threshold": 0.1}, {}, []),  # the incident brake: fewer PASSes than measured stays bound
    ],
)
def test_every_deciding_field_and_the_sampling_are_bound(
    policy: dict, sampling: dict, differs: list[str]
) -> None:
    calibration = Calibration.from_mapping(_calibration())
    in_force = DecisionPolicy.from_mapping(policy | {"calibration": _calibration()})

    binding = calibration_binding(
        calibration, [MODEL], "v1", policy=in_force, sampling=SAMPLING | sampling, deployment=[WITNESS]
    )

    assert binding is not None and list(binding.differs) == differs


def test_calibration_without_decides_or_artefact_binds_nothing() -> None:
    older = _calibration(decides=KeyError, model__artefact_sha256=KeyError)
    calibration = Calibration.from_mapping(older)
    policy = DecisionPolicy(calibration=calibration)

    binding = calibration_binding(
        calibration, [MODEL], "v1", policy=policy, sampling=SAMPLING, deployment=[WITNESS]
    )

    assert binding is not None
    assert list(binding.differs) == ["model.artefact_sha256", "model.witness.artefact_sha256", "decides"]


def test_hand_edited_decides_field_with_the_old_hash_is_refused() -> None:
    with pytest.raises(PolicyError, match="not the hash"):
        Calibration.from_mapping(_calibration(decides__fields__min_frames_scored=1))
