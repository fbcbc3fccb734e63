"""Where a running `make dev` says it is: a small state file the runner writes and `newsdesk --local` reads.

The file lives in the user's runtime folder ($XDG_RUNTIME_DIR, else a folder of the user's own in the
temporary folder), readable by the user only: it holds the local stack's editor token. NEWSDESK_LOCAL_STATE
names another path (the end-to-end tests give each stack its own, so they never replace a developer's).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_VARIABLE = "NEWSDESK_LOCAL_STATE"


@dataclass(frozen=True)
class LocalStackState:
    api_url: str
    aws_endpoint: str
    region: str
    token: str
    pid: int


def state_path() -> Path:
    explicit = os.environ.get(STATE_VARIABLE)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "newsdesk-local.json"
    return Path(tempfile.gettempdir()) / f"newsdesk-{os.getuid()}" / "local.json"


def write_state(state: LocalStackState) -> Path:
    """Say where this stack is (replacing what an older stack wrote), readable by this user only."""
    path = state_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{state.pid}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(state), file)
    temporary.replace(path)  # whole or not at all: a reader never sees half a file
    return path


def remove_state(pid: int) -> None:
    """Forget the state file when it is this process's (a newer stack may have replaced it)."""
    current = read_state(check_alive=False)
    if current is not None and current.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            state_path().unlink()


def read_state(*, check_alive: bool = True) -> LocalStackState | None:
    """The running local stack's state, or None (no file, an unreadable one, or its process is gone)."""
    try:
        state = LocalStackState(**json.loads(state_path().read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if check_alive and not _alive(state.pid):
        return None
    return state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds that number now
        return False
    return True
