"""The emails the embedded SES accepted, read from moto in this process: the local stack's outbox."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email import policy
from email.parser import HeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class InvalidCursor(ValueError):
    """A cursor that names no email of this outbox."""


@dataclass(frozen=True)
class OutboxFilter:
    """Which emails to list: those whose To and Subject contain these texts (ignoring case; empty: any)."""

    to: str = ""
    subject: str = ""

    def matches(self, summary: dict[str, Any]) -> bool:
        return self.to.lower() in summary["to"].lower() and self.subject.lower() in summary["subject"].lower()


ANY_EMAIL = OutboxFilter()


@dataclass(frozen=True)
class OutboxPage:
    emails: list[dict[str, Any]]
    """Newest first: id, to, subject, sent_at and the raw MIME text."""
    next_cursor: str | None
    """Where the next (older) page starts; None on the last page."""


# An email's headers are parsed once: a page filters every email the stack sent (thousands, after a bench).
_summaries: dict[str, dict[str, Any]] = {}
_summaries_lock = threading.Lock()


def _summary(message_id: str, raw: str) -> dict[str, Any]:
    with _summaries_lock:
        known = _summaries.get(message_id)
    if known is not None:
        return known
    headers = HeaderParser(policy=policy.default).parsestr(raw, headersonly=True)
    date = headers["Date"]
    summary = {
        "id": message_id,
        "to": str(headers["To"] or ""),
        "subject": str(headers["Subject"] or ""),
        "sent_at": parsedate_to_datetime(str(date)).isoformat() if date else None,
    }
    with _summaries_lock:
        _summaries[message_id] = summary
    return summary


def _raw_messages(region: str, account_id: str) -> list[tuple[str, str]]:
    """(id, raw MIME) of every raw email SES accepted, oldest first (Newsdesk sends nothing else)."""
    sent = list(ses_backends[account_id][region].sent_messages)
    return [(message.id, raw) for message in sent if (raw := getattr(message, "raw_data", None)) is not None]


def sent_emails(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> list[dict[str, Any]]:
    """Every raw email SES has accepted, oldest first: id, to, subject, sent_at and the raw MIME text."""
    return [_summary(message_id, raw) | {"raw": raw} for message_id, raw in _raw_messages(region, account_id)]


def sent_count(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> int:
    """How many emails SES has accepted."""
    return len(_raw_messages(region, account_id))


def sent_email(region: str, email_id: str, account_id: str = DEFAULT_ACCOUNT_ID) -> dict[str, Any] | None:
    """One sent email by its id, or None."""
    for message_id, raw in _raw_messages(region, account_id):
        if message_id == email_id:
            return _summary(message_id, raw) | {"raw": raw}
    return None


def emails_page(
    region: str,
    *,
    matching: OutboxFilter = ANY_EMAIL,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> OutboxPage:
    """One page of the emails that match, newest first; `cursor` is the `next_cursor` of the page before
    (the id of its last email, so emails sent meanwhile never shift a page). InvalidCursor if it names none."""
    newest_first = _raw_messages(region, account_id)[::-1]
    start = 0
    if cursor:
        start = next((index + 1 for index, (found, _) in enumerate(newest_first) if found == cursor), -1)
        if start < 0:
            raise InvalidCursor("the cursor names no email of this outbox")
    emails: list[dict[str, Any]] = []
    for message_id, raw in newest_first[start:]:
        summary = _summary(message_id, raw)
        if matching.matches(summary):
            if len(emails) == limit:
                return OutboxPage(emails, emails[-1]["id"])
            emails.append(summary | {"raw": raw})
    return OutboxPage(emails, None)
