"""Errors of the AWS adapters, mapped from botocore so handlers never parse messages."""

from __future__ import annotations

from kyc.domain.reasons import ReasonCode


class AdapterError(Exception):
    """Base class; ``reason`` is what an ERROR decision records."""

    reason: ReasonCode = ReasonCode.PIPELINE_ERROR


class SourceMissingError(AdapterError):
    reason = ReasonCode.SOURCE_MISSING


class SourceChangedError(AdapterError):
    """The bytes read now are not the bytes validated: never screen something else."""

    reason = ReasonCode.SOURCE_CHANGED


class ObjectTooLargeError(AdapterError):
    reason = ReasonCode.TOO_LARGE
