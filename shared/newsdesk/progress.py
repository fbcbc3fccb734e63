"""Long work watched from the command line: a newsletter's delivery, a subscriber import.

`watch` polls the editor API and draws a live progress bar with rich in a terminal, or prints one plain
line per change when the output is a file or a pipe (CI logs, `| tee`); both end with the same summary.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

IMPORT_DONE = frozenset({"imported", "rejected"})


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


# API Gateway answers within its 30-second integration timeout, after the authorizer: waiting less gives up on
# a first request that meets two cold starts (on a busy laptop's local stack, about 8 seconds each).
API_TIMEOUT_SECONDS = 45.0


class EditorApi:
    """The editor routes over HTTP with a bearer token (what `curl -H "Authorization: Bearer ..."` does)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = API_TIMEOUT_SECONDS) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"the API address must be http(s)://..., not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def get(self, path: str, **query: str) -> Any:
        url = f"{self.base_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:  # noqa: S310 - http(s) checked
                return json.load(reply)
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _error_message(exc.read())) from exc
        except OSError as exc:
            raise ApiError(0, f"cannot reach {self.base_url} ({exc})") from exc


def _error_message(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:200]
    if isinstance(answer, dict):
        error = answer.get("error")
        if isinstance(error, dict):
            return str(error.get("message"))
        return str(answer.get("message", answer))
    return str(answer)


@dataclass(frozen=True)
class Snapshot:
    """One look at the work: how much of `total` is done, in words and figures."""

    done: int
    total: int | None
    parts: dict[str, int]
    finished: bool
    state: str
    note: str = ""
    details: list[str] = field(default_factory=list)


def delivery_snapshot(progress: dict[str, Any]) -> Snapshot:
    """A delivery's progress (GET /admin/articles/{id}/delivery): sent, failed and suppressed are final."""
    counts = progress.get("counts") or {}
    parts = {"sent": progress["sent"], "failed": progress["failed"], "suppressed": progress["suppressed"]}
    note = ""
    if progress.get("paused_until"):
        note = f"paused until {progress['paused_until']}: {progress.get('paused_reason') or 'SES sends nothing now'}"
    details = []
    if progress["state"] == "done":
        outcome = ", ".join(f"{counts.get(name, 0)} {name}" for name in ("delivered", "bounced", "complained"))
        details.append(f"of the sent: {outcome} so far")
        if progress.get("late_send_events"):
            details.append(f"{progress['late_send_events']} recipients may have two copies (late Send events)")
    return Snapshot(
        done=sum(parts.values()),
        total=progress["total"],
        parts=parts,
        finished=progress["state"] == "done",
        state=progress["state"],
        note=note,
        details=details,
    )


def import_snapshot(upload: dict[str, Any]) -> Snapshot:
    """A subscriber import's record (GET /admin/uploads): every row ends imported, skipped or invalid."""
    parts = {name: int(upload.get(name) or 0) for name in ("imported", "skipped", "invalid")}
    finished = upload["outcome"] in IMPORT_DONE
    details = []
    if upload["outcome"] == "rejected":
        details.append(f"rejected: {upload.get('reason')}")
    for note in (upload.get("invalid_rows") or [])[:5]:
        details.append(f"row {note['row']}: {note['reason']}")
    return Snapshot(
        done=sum(parts.values()),
        total=upload.get("rows"),
        parts=parts,
        finished=finished,
        state=upload["outcome"],
        details=details,
    )


class Rate:
    """Items a second since the first look, and the time left at that pace (None until it is known)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._first: tuple[float, int] | None = None

    def update(self, done: int, total: int | None) -> tuple[float | None, float | None]:
        now = self._clock()
        if self._first is None:
            self._first = (now, done)
            return None, None
        seconds, items = now - self._first[0], done - self._first[1]
        if seconds <= 0 or items <= 0:
            return None, None
        rate = items / seconds
        left = max(0, (total or 0) - done) / rate if total is not None else None
        return rate, left


def describe(snapshot: Snapshot) -> str:
    figures = ", ".join(f"{count:,} {name}" for name, count in snapshot.parts.items())
    total = "?" if snapshot.total is None else f"{snapshot.total:,}"
    return f"{figures} of {total}"


def _pace(rate: float | None, left: float | None) -> str:
    if rate is None:
        return ""
    pace = f"{rate:,.1f}/s"
    return f"{pace}, {_duration(left)} left" if left is not None else pace


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def summary(title: str, snapshot: Snapshot, seconds: float) -> list[str]:
    return [f"{title}: {snapshot.state} - {describe(snapshot)} in {_duration(seconds)}", *snapshot.details]


def watch(
    title: str,
    look: Callable[[], Snapshot],
    *,
    out: TextIO,
    terminal: bool,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Snapshot:
    """Look at the work every `interval` seconds until it is finished; draw it, then print the summary."""
    began = clock()
    rate = Rate(clock)
    if terminal:
        snapshot = _watch_with_rich(title, look, rate, out=out, interval=interval, sleep=sleep)
    else:
        snapshot = _watch_in_lines(title, look, rate, out=out, interval=interval, sleep=sleep)
    for line in summary(title, snapshot, clock() - began):
        print(line, file=out, flush=True)
    return snapshot


def _watch_in_lines(
    title: str,
    look: Callable[[], Snapshot],
    rate: Rate,
    *,
    out: TextIO,
    interval: float,
    sleep: Callable[[float], None],
) -> Snapshot:
    last = ""
    while True:
        snapshot = look()
        pace = _pace(*rate.update(snapshot.done, snapshot.total))
        line = " - ".join(part for part in (f"{title}: {snapshot.state}", describe(snapshot), snapshot.note) if part)
        # One line per change, so a log shows the course of the work without a line per second.
        if line != last:
            print(f"{line} ({pace})" if pace else line, file=out, flush=True)
            last = line
        if snapshot.finished:
            return snapshot
        sleep(interval)


def _watch_with_rich(
    title: str,
    look: Callable[[], Snapshot],
    rate: Rate,
    *,
    out: TextIO,
    interval: float,
    sleep: Callable[[float], None],
) -> Snapshot:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(file=out)
    console.print(title, style="bold", highlight=False)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[figures]}"),
        TextColumn("[dim]{task.fields[pace]}"),
    )
    with Progress(*columns, console=console, auto_refresh=False) as bar:
        task = bar.add_task(title, total=None, figures="", pace="")
        while True:
            snapshot = look()
            pace = _pace(*rate.update(snapshot.done, snapshot.total))
            figures = ", ".join(f"{count:,} {name}" for name, count in snapshot.parts.items())
            bar.update(
                task,
                completed=snapshot.done,
                total=snapshot.total,
                description=snapshot.state,
                figures=" - ".join(part for part in (figures, snapshot.note) if part),
                pace=pace,
            )
            bar.refresh()
            if snapshot.finished:
                return snapshot
            sleep(interval)
