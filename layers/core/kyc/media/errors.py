"""Errors raised while handling untrusted media."""

from __future__ import annotations

from kyc.domain.reasons import ReasonCode


class MediaRefusedError(Exception):
    """The upload cannot be screened; ``reason`` is the stable code recorded with INVALID."""

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
