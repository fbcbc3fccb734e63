"""Least privilege, proved: which grants of each function's role the local stack's calls used, and the check
that every grant was used by some test or is allow-listed with a reason.

A grant is one (action, resource) pair an Allow statement of a function's role names, both as the template
writes them (`dynamodb:Query` on `${ArticlesTable.Arn}/index/by-feed`). Every call the local IAM check
allows marks the grants that allowed it (local.iam.policies); with `NEWSDESK_GRANTS_DIR` set, each process appends
the grants it marks, once each, to a file of its own in that folder: the test processes (pytest-xdist's
workers) and the local stacks they start as child processes alike. After the whole suite, the test run reads
every file and fails on a grant nothing used (tests/conftest.py, tests/iam_allowlist.yaml).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

GRANTS_DIR_VARIABLE = "NEWSDESK_GRANTS_DIR"


@dataclass(frozen=True, order=True)
class Grant:
    """One action on one resource pattern, as a statement of the function's role writes them."""

    function: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource}"


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def written(value: Any) -> str:
    """A resource as the template writes it, intrinsic functions shown rather than resolved: `!GetAtt
    Table.Arn` is `${Table.Arn}`, a `!Sub` its text with its own variables filled in."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"${{{argument}}}"
        if function == "Fn::GetAtt":
            return f"${{{'.'.join(argument) if isinstance(argument, list) else argument}}}"
        if function == "Fn::Sub" and isinstance(argument, str):
            return argument
        if function == "Fn::Sub" and isinstance(argument, list) and len(argument) == 2:
            text, variables = argument
            return _SUB_VARIABLE.sub(
                lambda found: written(variables[found.group(1)]) if found.group(1) in variables else found.group(0),
                str(text),
            )
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            return str(argument[0]).join(written(part) for part in argument[1])
    return json.dumps(value, sort_keys=True)


# ----------------------------------------------------------------------------------------- recording


class GrantRecorder:
    """Appends the grants this process marks to a file of its own in `folder`, each grant once."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{os.getpid()}-{uuid.uuid4().hex}.jsonl"
        self._seen: set[tuple[str, Grant]] = set()
        self._lock = threading.Lock()

    def record(self, template: str, grants: Iterable[Grant]) -> None:
        """`template`: the folder of the template whose roles these are (the project's, or a test fixture's)."""
        with self._lock:
            new = [grant for grant in grants if (template, grant) not in self._seen]
            if not new:
                return
            self._seen.update((template, grant) for grant in new)
            lines = "".join(
                json.dumps({"template": template, "function": g.function, "action": g.action, "resource": g.resource})
                + "\n"
                for g in new
            )
            # One write of whole lines in append mode: files are never shared, but a crash leaves whole lines.
            with self.path.open("a", encoding="utf-8") as file:
                file.write(lines)


@cache
def process_recorder() -> GrantRecorder | None:
    """This process's recorder, when `NEWSDESK_GRANTS_DIR` asks for one (read once: child processes inherit
    the variable, and a run that does not set it pays nothing)."""
    folder = os.environ.get(GRANTS_DIR_VARIABLE)
    return GrantRecorder(Path(folder)) if folder else None


def read_records(folder: Path, template: str) -> set[Grant]:
    """Every grant of `template`'s roles that the processes writing to `folder` marked."""
    used = set()
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if entry["template"] == template:
                used.add(Grant(entry["function"], entry["action"], entry["resource"]))
    return used


# ---------------------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class AllowListEntry:
    """Grants no test can exercise: shell-style patterns (`*`) on the function, action and resource."""

    function: str
    action: str
    resource: str
    why: str

    def covers(self, grant: Grant) -> bool:
        return (
            fnmatch.fnmatchcase(grant.function, self.function)
            and fnmatch.fnmatchcase(grant.action.lower(), self.action.lower())
            and fnmatch.fnmatchcase(grant.resource, self.resource)
        )

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource}"


def load_allow_list(path: Path) -> list[AllowListEntry]:
    """The allow-list file: a list of {function, action, resource, why}; every field is required."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of entries")
    loaded = []
    for number, entry in enumerate(entries, 1):
        missing = [key for key in ("function", "action", "resource", "why") if not str(entry.get(key) or "").strip()]
        if missing:
            raise ValueError(f"{path}: entry {number} lacks {', '.join(missing)}")
        loaded.append(AllowListEntry(str(entry["function"]), str(entry["action"]), str(entry["resource"]),
                                     " ".join(str(entry["why"]).split())))  # fmt: skip
    return loaded


@dataclass(frozen=True)
class LeastPrivilegeReport:
    granted: int
    unused: list[Grant]  # granted, used by no test, and not allow-listed
    stale: list[AllowListEntry]  # allow-list entries that cover no grant of the template
    needless: list[AllowListEntry]  # allow-list entries whose every grant some test used after all

    @property
    def ok(self) -> bool:
        return not (self.unused or self.stale or self.needless)

    def lines(self) -> list[str]:
        found = []
        if self.unused:
            found.append(f"{len(self.unused)} granted (action, resource) pairs that no test used: remove them from")
            found.append("template.yaml, or allow-list them with the reason no test can reach them:")
            found += [f"  {grant}" for grant in self.unused]
        if self.stale:
            found.append("allow-list entries that cover no grant of template.yaml (remove them):")
            found += [f"  {entry}" for entry in self.stale]
        if self.needless:
            found.append("allow-list entries whose grants the tests did use (remove them):")
            found += [f"  {entry}" for entry in self.needless]
        return found


def check_least_privilege(
    granted: Iterable[Grant], used: set[Grant], allow_list: Sequence[AllowListEntry]
) -> LeastPrivilegeReport:
    """Every grant must have been used by a call, or be covered by an allow-list entry; and every entry must
    cover a grant, and one that no call used."""
    granted = sorted(set(granted))
    unused = [grant for grant in granted if grant not in used and not any(e.covers(grant) for e in allow_list)]
    stale, needless = [], []
    for entry in allow_list:
        covered = [grant for grant in granted if entry.covers(grant)]
        if not covered:
            stale.append(entry)
        elif all(grant in used for grant in covered):
            needless.append(entry)
    return LeastPrivilegeReport(len(granted), unused, stale, needless)
