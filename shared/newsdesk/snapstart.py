"""Lambda SnapStart's runtime hooks: what a function prepares before its snapshot is taken, and what it makes
anew in every execution environment resumed from that snapshot. Registered only where SnapStart initialises
the function (template parameter EnableSnapStart); the hooks' library is part of Lambda's Python runtime.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def initialised_for_snapshot() -> bool:
    """Whether Lambda is running this init to take a snapshot of it (its own variable says so)."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"


def before_snapshot(hook: Callable[[], Any]) -> None:
    """Run `hook` once, at the end of the init the snapshot is taken of."""
    if initialised_for_snapshot():
        from snapshot_restore_py import register_before_snapshot

        register_before_snapshot(hook)


def after_restore(hook: Callable[[], Any]) -> None:
    """Run `hook` in every execution environment resumed from the snapshot, before its first request."""
    if initialised_for_snapshot():
        from snapshot_restore_py import register_after_restore

        register_after_restore(hook)
