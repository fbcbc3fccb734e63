"""Time in one place, so tests can control it and every timestamp has the same shape."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601, so that string order is time order in sort keys."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
