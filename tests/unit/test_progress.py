"""`newsdesk delivery watch` and `newsdesk import status`: what they print, in a terminal and in a log."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from newsdesk.progress import delivery_snapshot, import_snapshot, watch


def progress(state: str, queued: int, pending: int, sent: int, failed: int = 0, suppressed: int = 0) -> dict[str, Any]:
    counts = {"queued": queued, "pending": pending, "sent": sent, "delivered": 0, "bounced": 0, "complained": 0,
              "failed": failed, "suppressed": suppressed}  # fmt: skip
    total = queued + pending + sent + failed + suppressed
    return {"state": state, "total": total, "sent": sent, "failed": failed, "suppressed": suppressed,
            "counts": counts, "paused_until": None, "late_send_events": 0}  # fmt: skip


class FakeTime:
    """A clock that moves on only when the watcher sleeps: no test waits for real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def looks(answers: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from answers
    raise AssertionError("watched past the end")


def test_a_delivery_in_a_log_is_a_line_per_change_then_the_summary() -> None:
    answers = looks([
        progress("sending", 100, 0, 0),
        progress("sending", 50, 10, 40),
        progress("sending", 50, 10, 40),
        progress("sending", 0, 0, 97, failed=1, suppressed=2),
        progress("done", 0, 0, 97, failed=1, suppressed=2),
    ])  # fmt: skip
    out, time = io.StringIO(), FakeTime()

    final = watch("newsletter of a-1", lambda: delivery_snapshot(next(answers)), out=out, terminal=False,
                  interval=2, sleep=time.sleep, clock=time.clock)  # fmt: skip

    lines = out.getvalue().splitlines()
    assert final.finished
    assert lines[0] == "newsletter of a-1: sending - 0 sent, 0 failed, 0 suppressed of 100"
    assert lines[1] == "newsletter of a-1: sending - 40 sent, 0 failed, 0 suppressed of 100 (20.0/s, 3s left)"
    assert len(lines) == 6  # the unchanged look printed nothing
    assert lines[4] == "newsletter of a-1: done - 97 sent, 1 failed, 2 suppressed of 100 in 8s"
    assert lines[5] == "of the sent: 0 delivered, 0 bounced, 0 complained so far"


def test_a_paused_delivery_says_until_when_and_why() -> None:
    reason = "SES refuses to send for this account (SendingPausedException: Sending paused for this account.)"
    paused = progress("sending", 10, 0, 5) | {"paused_until": "2026-05-01T13:00:00Z", "paused_reason": reason}

    assert delivery_snapshot(paused).note == f"paused until 2026-05-01T13:00:00Z: {reason}"


def test_in_a_terminal_a_bar_is_drawn_and_the_summary_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    answers = looks([progress("sending", 5, 0, 5), progress("done", 0, 0, 10)])
    out, time = io.StringIO(), FakeTime()

    watch("newsletter of a-1", lambda: delivery_snapshot(next(answers)), out=out, terminal=True,
          sleep=time.sleep, clock=time.clock)  # fmt: skip

    text = out.getvalue()
    assert text.startswith("newsletter of a-1\n")
    assert "10/10" in text
    assert "━" in text
    assert text.rstrip().splitlines()[-2].startswith("newsletter of a-1: done - 10 sent, 0 failed, 0 suppressed of 10")


def test_an_import_counts_rows_and_shows_the_first_invalid_ones() -> None:
    running = {"key": "subscribers/members.csv", "outcome": "importing", "rows": 1000, "imported": 250,
               "skipped": 0, "invalid": 0}  # fmt: skip
    ended = running | {"outcome": "imported", "imported": 990, "skipped": 9, "invalid": 1,
                       "invalid_rows": [{"row": 7, "reason": "not an email address"}]}  # fmt: skip
    answers = looks([running, ended])
    out, time = io.StringIO(), FakeTime()

    final = watch("import", lambda: import_snapshot(next(answers)), out=out, terminal=False,
                  sleep=time.sleep, clock=time.clock)  # fmt: skip

    assert final.state == "imported"
    assert out.getvalue().splitlines()[-2:] == [
        "import: imported - 990 imported, 9 skipped, 1 invalid of 1,000 in 1s",
        "row 7: not an email address",
    ]


def test_a_rejected_import_says_why() -> None:
    rejected = {"key": "subscribers/x.csv", "outcome": "rejected", "reason": "no email column", "rows": None}

    snapshot = import_snapshot(rejected)

    assert snapshot.finished
    assert snapshot.details == ["rejected: no email column"]
