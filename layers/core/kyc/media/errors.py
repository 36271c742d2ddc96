"""Errors raised while handling untrusted media."""

from __future__ import annotations

from kyc.domain.reasons import ReasonCode


class MediaRefusedError(Exception):
    """The upload cannot be screened; ``reason`` is the stable code recorded with INVALID."""

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def out_of_memory(exc: MemoryError) -> MediaRefusedError:
    """An allocation refused (the sandbox's RLIMIT_AS, or FFmpeg's ENOMEM) is a budget, not corruption.

    ``av.error.MemoryError`` is both an FFmpegError and a MemoryError, so callers test for it
    before their FFmpegError branch.
    """
    refusal = MediaRefusedError(ReasonCode.DECODE_BUDGET_EXCEEDED, "decoding needs more memory than allowed")
    refusal.__cause__ = exc
    return refusal
