"""The audit trail: the entry of each change, written with the change where the change is one transaction
(articles, people, tokens), right after it otherwise (subscribers, webhooks), and read newest first."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from newsdesk.clock import utc_now
from newsdesk.dal.audit import AuditRepository
from newsdesk.models.audit import AuditDetail, AuditEntry, AuditTarget
from newsdesk.models.people import Actor


class AuditLog:
    def __init__(self, repository: AuditRepository | None, *, clock: Callable[[], datetime] = utc_now) -> None:
        """`repository` None: nothing is recorded (the command-line tool given no audit table, and the local
        stack's own set-up)."""
        self._repo = repository
        self._clock = clock

    def entry(
        self, actor: Actor | None, action: str, target: AuditTarget, target_id: str, **details: AuditDetail
    ) -> AuditEntry | None:
        """The entry to write with a change; None when there is nowhere (or no one) to record it for."""
        if self._repo is None or actor is None:
            return None
        return AuditEntry(
            id=secrets.token_hex(8),
            at=self._clock(),
            actor=actor.id,
            role=actor.role,
            action=action,
            target=target,
            target_id=target_id,
            details={key: value for key, value in details.items() if value is not None},
        )

    def record(self, actor: Actor, action: str, target: AuditTarget, target_id: str, **details: AuditDetail) -> None:
        """Record a change that is already made (one that is no single transaction of ours)."""
        entry = self.entry(actor, action, target, target_id, **details)
        if entry is not None and self._repo is not None:
            self._repo.append(entry)

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[AuditEntry], str | None]:
        if self._repo is None:
            return [], None
        return self._repo.page(limit=limit, cursor=cursor)
