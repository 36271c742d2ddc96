"""Does the calibration in force describe this decision? (docs/decision-policy.md, "Calibration binding")

Thresholds mean something only for the model bytes, the policy and the sampling they were measured
with. A calibration names all three: the model by name, version, contract and the SHA-256 of its
artefact (which the model server reports, or the deployment records); every policy field that can
change a decision and the sampling settings by value and hash (``Calibration.decides``). At decision
time the same fields are read from what actually happened (the batches' model records, the frame
manifest's sampling parameters, the face stage's document) and compared; any difference, or a
calibration that does not name one of them, is REVIEW ``MODEL_NOT_CALIBRATED`` and the audit record
lists each field that differed. Pure Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kyc.domain.calibration import Calibration, decides_sha256
from kyc.domain.model_witness import witness_differs, witnessed_hashes
from kyc.domain.policy import DecisionPolicy, Effect, Finding
from kyc.domain.reasons import ReasonCode

__all__ = ["Binding", "calibration_binding", "deciding_fields", "sampling_in_force", "witnesses_said"]

# Policy fields that are not bound by value: the label, the calibration itself, and the pass threshold,
# which may only be lowered below the measured one (DecisionPolicy._check_calibration: an incident brake).
_NOT_BOUND = ("version", "calibration", "pass_threshold")


def sampling_in_force(
    frame_params: Mapping[str, Any] | None, *, face_evidence_source: str, face_check_frames: int | None
) -> dict[str, Any]:
    """The sampling settings a decision rests on, as its evidence records them: the frame manifest's
    sampling parameters (frame count, size, image format...) and the face stage's source and
    check-frames setting (None: no face stage document)."""
    return dict(frame_params or {}) | {
        "face_evidence_source": face_evidence_source,
        "face_check_frames": face_check_frames,
    }


def deciding_fields(policy: DecisionPolicy, sampling: Mapping[str, Any]) -> dict[str, Any]:
    """Every policy field that can change a decision (all but ``_NOT_BOUND``) and the sampling settings."""
    values = {k: v for k, v in policy.to_dict().items() if k not in _NOT_BOUND}
    return values | {"sampling": dict(sampling)}


@dataclass(frozen=True)
class Binding:
    """The comparison's outcome: ``differs`` names each field that is not as calibrated."""

    differs: tuple[str, ...]
    observed: Mapping[str, Any]

    @property
    def bound(self) -> bool:
        return not self.differs

    @property
    def findings(self) -> list[Finding]:
        return [] if self.bound else [Finding(ReasonCode.MODEL_NOT_CALIBRATED, Effect.REVIEW)]

    def to_dict(self) -> dict[str, Any]:
        return {"bound": self.bound, "differs": list(self.differs), "observed": dict(self.observed)}


def _diff(prefix: str, expected: Any, actual: Any) -> list[str]:
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        keys = sorted(set(expected) | set(actual), key=str)
        return [d for k in keys for d in _diff(f"{prefix}.{k}", expected.get(k), actual.get(k))]
    return [] if expected == actual else [prefix]


def _artefacts(model: Mapping[str, Any]) -> set[str]:
    """The artefact hashes a batch's model record carries: reported by the server, recorded at deployment."""
    return {str(model[k]) for k in ("artefact_sha256", "deployed_artefact_sha256") if model.get(k)}


def witnesses_said(
    reported: Sequence[Mapping[str, Any]], deployment: Sequence[Mapping[str, Any] | None]
) -> dict[str, list[str]]:
    """What each witness of the model's bytes said over a decision's batches: the server's report,
    the deployment parameter, SageMaker + S3 (``sagemaker_s3``), and why that one could not be read."""
    return {
        "server": sorted({str(m["artefact_sha256"]) for m in reported if m.get("artefact_sha256")}),
        "deployment_parameter": sorted(
            {str(m["deployed_artefact_sha256"]) for m in reported if m.get("deployed_artefact_sha256")}
        ),
        "sagemaker_s3": witnessed_hashes(deployment),
        "sagemaker_s3_unreadable": sorted(
            {str((w or {}).get("unreadable") or "no witness recorded") for w in deployment if not _read(w)}
        ),
        # the serving image by manifest digest (issue 24): SageMaker's, never the container's
        "sagemaker_image": sorted(
            {str(w["image_digest"]) for w in deployment if w and w.get("image_digest")}
        ),
        "sagemaker_image_unresolved": sorted(
            {str(w["image_unresolved"]) for w in deployment if w and w.get("image_unresolved")}
        ),
    }


def _read(witness: Mapping[str, Any] | None) -> bool:
    return bool(witness and witness.get("artefact_sha256") and not witness.get("unreadable"))


_WITNESS_FIELDS = ("model.witness.unreadable", "model.witness.artefact_sha256", "model.witness.image_digest")


def _image_binding(expected: str | None, differs: bool) -> dict[str, Any]:
    """Whether the serving image was bound, for the audit record: a calibration that names no image
    digest trusts whatever container loads the witnessed model data (docs/model-contract.md)."""
    if expected is None:
        return {"bound": False, "why": "the calibration names no image_digest: the image was not bound"}
    return {"bound": not differs, "expected": expected}


def calibration_binding(
    calibration: Calibration | None,
    reported: Sequence[Mapping[str, Any]],
    contract_version: str,
    *,
    policy: DecisionPolicy,
    sampling: Mapping[str, Any],
    deployment: Sequence[Mapping[str, Any] | None] | None = None,
) -> Binding | None:
    """Compare the calibration with what decided this upload. ``reported``: the model record of every
    scored batch; ``deployment``: the deployment witness each batch recorded (``WitnessAccount.to_dict``;
    None for a batch without one, which binds nothing). No scored batch: no score to bound, None."""
    if not reported:
        return None
    deployment = list(deployment) if deployment is not None else [None] * len(reported)
    fields = deciding_fields(policy, sampling)
    said = witnesses_said(reported, deployment)
    artefacts = sorted(set().union(*(_artefacts(m) for m in reported)) | set(said["sagemaker_s3"]))
    observed = {
        "models": list({repr(sorted(m.items())): dict(m) for m in reported}.values()),
        "contract_version": contract_version,
        "artefact_sha256": artefacts,
        "witnesses": said,
        "decides_sha256": decides_sha256(fields),
        "decides": fields,
    }
    if calibration is None:
        return Binding(("calibration",), observed)
    differs: list[str] = []
    model = calibration.model
    for key, expected in (("name", model.name), ("version", model.version)):
        if any(str(m.get(key)) != expected for m in reported):
            differs.append(f"model.{key}")
    if contract_version != model.contract_version:
        differs.append("model.contract_version")
    if model.artefact_sha256 is None or any(_artefacts(m) != {model.artefact_sha256} for m in reported):
        differs.append("model.artefact_sha256")
    # the witness the container does not control: unreadable, naming other bytes or (when the
    # calibration names one) another image, binds nothing; one comparison (kyc.domain.model_witness)
    if len(deployment) != len(reported):
        differs.append("model.witness.unreadable")
    else:
        found = {
            d
            for w in deployment
            for d in witness_differs(
                w, artefact_sha256=model.artefact_sha256, image_digest=model.image_digest
            )
        }
        differs.extend(d for d in _WITNESS_FIELDS if d in found)
    observed["image"] = _image_binding(model.image_digest, "model.witness.image_digest" in differs)
    if calibration.decides is None:
        differs.append("decides")
    elif calibration.decides.sha256 != observed["decides_sha256"]:
        changed = _diff("decides", calibration.decides.fields, fields)
        differs.extend(changed or ["decides"])  # same values, other hash: a type difference (1 vs 1.0)
    return Binding(tuple(differs), observed)
