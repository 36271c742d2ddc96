"""Are the policy's thresholds bound to the model that scored this upload? (docs/decision-policy.md)

A finding for ``apply_findings``: when no calibration exists, or the batches report another model
name, version or contract than the one the thresholds were measured for, the score is read against
thresholds nobody measured for it, so neither a PASS nor a REJECT can rest on it: REVIEW with
``MODEL_NOT_CALIBRATED``. Pure Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kyc.domain.calibration import Calibration
from kyc.domain.policy import Effect, Finding
from kyc.domain.reasons import ReasonCode


def model_binding_findings(
    calibration: Calibration | None,
    reported: Sequence[Mapping[str, str]],
    contract_version: str,
) -> list[Finding]:
    """``reported``: the model of every scored batch (``{"name", "version"}``); ``contract_version``:
    the contract those answers were accepted under. No scored batch: no score to bound, no finding."""
    if not reported:
        return []
    bound = calibration is not None and all(
        calibration.binds(str(m.get("name")), str(m.get("version")), contract_version) for m in reported
    )
    return [] if bound else [Finding(ReasonCode.MODEL_NOT_CALIBRATED, Effect.REVIEW)]
