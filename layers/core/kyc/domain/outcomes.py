"""The five outcomes a screening can end in."""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    """What the onboarding system reads back; exactly one per upload.

    PASS, REVIEW and REJECT come from scored evidence. INVALID means the media was refused
    before any model saw it (ask the applicant to record again). ERROR means the pipeline
    itself failed: treat as not verified.
    """

    PASS = "PASS"  # noqa: S105 - an outcome, not a password
    REVIEW = "REVIEW"
    REJECT = "REJECT"
    INVALID = "INVALID"
    ERROR = "ERROR"
