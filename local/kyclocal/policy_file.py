"""A decision-policy document given on the command line (`--policy FILE`), checked before any stack starts.

The same document a deployment puts in its SSM override parameter (docs/decision-policy.md); the
local stack serves it there, so the decide function reads it exactly as in AWS.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kyc.domain.binding import deciding_fields, sampling_in_force
from kyc.domain.calibration import calibration_from_decisions
from kyc.domain.contract import CONTRACT_VERSION
from kyc.domain.policy import DecisionPolicy, PolicyError
from kyc.media.sampling import SamplingParams


class PolicyFileError(ValueError):
    """The file is unreadable, not JSON, or not a valid policy (a malformed calibration included)."""


def policy_option(path: Path | None, command: str) -> dict[str, Any] | None:
    """The ``--policy`` option of ``kycscreen run`` and ``up``: None when not given. A bad file is
    reported on stderr in the command's name and raises PolicyFileError (the command exits 2)."""
    if path is None:
        return None
    try:
        return read_policy(path)
    except PolicyFileError as exc:
        print(f"kycscreen {command}: {exc}", file=sys.stderr)
        raise


def read_policy(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyFileError(f"{path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise PolicyFileError(f"{path}: not JSON ({exc})") from exc
    try:
        DecisionPolicy.from_mapping(document)
    except PolicyError as exc:
        raise PolicyFileError(f"{path}: {exc}") from exc
    return document


def role_played_policy(
    model: Mapping[str, str],
    *,
    pass_threshold: float,
    reject_threshold: float,
    frame_count: int = 32,
    face_evidence_source: str = "local",  # the template's default FaceEvidenceSource
    face_check_frames: int | None = 0,
    **policy: Any,
) -> dict[str, Any]:
    """A calibrated policy for a stand-in model, as drills and tests need one: they play a customer
    who calibrated "their" model (a constant drill detector, a tiny test network) before going live.

    Nothing was measured: the labelled set is 20 named placeholders per class, declared decided
    correctly, and ``origin`` says so. Real calibrations come from ``kycscreen evaluate --write-policy``.
    The binding is real: ``model`` names the artefact (``artefact_sha256``, e.g. ``artefact_of``) and
    the sampling settings are those of a local stack with ``frame_count`` frames and this face stage
    (``face_check_frames`` None when the face stage writes no document, as with source ``model``).
    """
    genuine = [
        (hashlib.sha256(f"role-played genuine {i}".encode()).hexdigest(), "genuine") for i in range(20)
    ]
    attack = [(hashlib.sha256(f"role-played attack {i}".encode()).hexdigest(), "attack") for i in range(20)]
    base = DecisionPolicy(**policy)
    bound = replace(base, pass_threshold=pass_threshold, reject_threshold=reject_threshold)
    sampling = sampling_in_force(
        asdict(SamplingParams(frame_count=frame_count)),
        face_evidence_source=face_evidence_source,
        face_check_frames=None if face_evidence_source == "model" else face_check_frames,
    )
    calibration = calibration_from_decisions(
        model=model,
        contract_version=CONTRACT_VERSION,
        labelled=genuine + attack,
        decisions=["PASS"] * len(genuine) + ["REJECT"] * len(attack),
        pass_threshold=pass_threshold,
        reject_threshold=reject_threshold,
        aggregator=base.aggregator,
        origin="role-played by a drill or test: not measured",
        calibrated_at=datetime(2026, 11, 1, tzinfo=UTC),
        artefact_sha256=model.get("artefact_sha256"),
        decides=deciding_fields(bound, sampling),
    )
    return replace(bound, calibration=calibration).to_dict()


def artefact_of(onnx_config: Path) -> str:
    """The SHA-256 the `onnx` model server reports for this config: its network file's bytes."""
    config = json.loads(Path(onnx_config).read_text(encoding="utf-8"))
    return hashlib.sha256((Path(onnx_config).parent / config["path"]).read_bytes()).hexdigest()


def _placeholder(name: str) -> str:
    return hashlib.sha256(f"role-played {name}".encode()).hexdigest()
