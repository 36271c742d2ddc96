"""Record timestamps: ISO 8601 as the records write them, read back as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_utc(value: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset); a naive one is taken as UTC. Raises ValueError."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
