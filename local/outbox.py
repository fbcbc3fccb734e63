"""The emails the embedded SES accepted, read from moto in this process: the local stack's outbox."""

from __future__ import annotations

import email
from email import policy
from email.utils import parsedate_to_datetime
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends


def sent_emails(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> list[dict[str, Any]]:
    """Every raw email SES has accepted, oldest first: id, to, subject, sent_at and the raw MIME text."""
    emails = []
    for message in ses_backends[account_id][region].sent_messages:
        raw = getattr(message, "raw_data", None)
        if raw is None:
            continue  # only raw sends: Newsdesk sends nothing else
        parsed = email.message_from_string(raw, policy=policy.default)
        date = parsed["Date"]
        emails.append(
            {
                "id": message.id,
                "to": str(parsed["To"] or ""),
                "subject": str(parsed["Subject"] or ""),
                "sent_at": parsedate_to_datetime(str(date)).isoformat() if date else None,
                "raw": raw,
            }
        )
    return emails
