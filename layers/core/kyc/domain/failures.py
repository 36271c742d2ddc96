"""How a pipeline failure, as Step Functions reports it, maps to the reason on an ERROR decision."""

from __future__ import annotations

from collections.abc import Mapping

from kyc.domain.reasons import ReasonCode

_BY_ERROR_NAME: Mapping[str, ReasonCode] = {
    "SourceMissingError": ReasonCode.SOURCE_MISSING,
    "SourceChangedError": ReasonCode.SOURCE_CHANGED,
    "ScoringError": ReasonCode.ENDPOINT_UNAVAILABLE,
    "States.Timeout": ReasonCode.PIPELINE_ERROR,
    "Sandbox.Timedout": ReasonCode.PIPELINE_ERROR,
}


def reason_for_failure(error_name: str | None) -> ReasonCode:
    """Known adapter errors keep their own code; anything else is a generic pipeline error."""
    if error_name and error_name in ReasonCode.__members__:
        return ReasonCode(error_name)
    return _BY_ERROR_NAME.get(error_name or "", ReasonCode.PIPELINE_ERROR)
