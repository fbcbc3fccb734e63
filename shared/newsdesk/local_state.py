"""Where each running `make dev` says it is: one small entry per stack (by port), which the runner writes when it
starts and removes when it stops, and `newsdesk --local` reads.

The entries live in a folder of the user's own ($XDG_RUNTIME_DIR/newsdesk-local, else newsdesk-<uid> in the
temporary folder), readable by the user only: each holds its stack's editor token. NEWSDESK_LOCAL_STATE
names another folder (the end-to-end tests give each stack its own, so they never meet a developer's).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

STATE_VARIABLE = "NEWSDESK_LOCAL_STATE"
ANSWER_SECONDS = 0.5
"""How long a stack's port may take to accept a connection before its entry is not believed."""


@dataclass(frozen=True)
class LocalStackState:
    api_url: str
    aws_endpoint: str
    region: str
    token: str
    pid: int

    @property
    def port(self) -> int:
        return urlsplit(self.api_url).port or 80


def state_dir() -> Path:
    explicit = os.environ.get(STATE_VARIABLE)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "newsdesk-local"
    return Path(tempfile.gettempdir()) / f"newsdesk-{os.getuid()}"


def _entry(port: int) -> Path:
    return state_dir() / f"{port}.json"


def write_state(state: LocalStackState) -> Path:
    """Say where this stack is, beside any other running stack's entry; readable by this user only."""
    path = _entry(state.port)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{state.pid}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(state), file)
    temporary.replace(path)  # whole or not at all: a reader never sees half a file
    return path


def remove_state(port: int, pid: int) -> None:
    """Remove the entry of the stack on `port` when it is this process's (a stack started on the port since
    may have replaced it)."""
    current = _read(_entry(port))
    if current is not None and current.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            _entry(port).unlink()


def running_stacks() -> list[LocalStackState]:
    """The local stacks that run now, by port. An entry whose process is gone is removed (the stack did not
    stop cleanly); one whose port does not answer is left out (its process number may be someone else's)."""
    stacks = []
    for path in sorted(state_dir().glob("*.json")):
        state = _read(path)
        if state is None or path.name != f"{state.port}.json":
            continue
        if not _alive(state.pid):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        if _answers(state):
            stacks.append(state)
    return sorted(stacks, key=lambda state: state.port)


def _read(path: Path) -> LocalStackState | None:
    try:
        return LocalStackState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds that number now
        return False
    return True


def _answers(state: LocalStackState) -> bool:
    try:
        with socket.create_connection((urlsplit(state.api_url).hostname or "127.0.0.1", state.port), ANSWER_SECONDS):
            return True
    except OSError:
        return False
