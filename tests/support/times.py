"""Times for tests, read off the real clock, so that no test depends on the day it runs (invariant 13).

A test that freezes time freezes it at `now()` or at an offset from it, never at a date written in the
code: what runs unfrozen beside the test (the event sources, the embedded AWS, its delays and TTLs) lives on
the real day, and a date written today is in the past next week.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any


def now() -> datetime:
    """The real time in UTC, to the minute: a clock frozen here and left to tick stays in that minute
    for a while, as a test reading times to the minute expects."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def zulu(moment: datetime) -> str:
    """`2026-12-01T06:00:00Z`: how the API shows a time it stores to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at_offset(moment: datetime, hours: int) -> str:
    """The same instant as a client in another time zone writes it: `2026-12-01T07:00:00+01:00`."""
    return moment.astimezone(timezone(timedelta(hours=hours))).isoformat(timespec="seconds")


def naive(moment: datetime) -> str:
    """The instant's UTC wall time with no offset (`2026-12-01T06:00:00`): a time the API must refuse."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def move_on(clock: Any, delta: timedelta) -> None:
    """Move a ticking frozen clock (`freeze_time(..., tick=True)`) `delta` past the time it shows now.
    freezegun's own `tick` moves on from the time the clock was last set, dropping the real time that has
    passed since, so the time it shows can even go back."""
    clock.move_to(datetime.now(UTC) + delta)
