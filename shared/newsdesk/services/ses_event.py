"""One SES event as SES publishes it (the `detail` of its EventBridge event), read by the feedback and
engagement services alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The message tags each newsletter email carries (set by the mailer); SES's events about it carry them back.
TAG_DELIVERY = "newsdesk-delivery"
TAG_LEDGER_SHARDS = "newsdesk-ledger-shards"
"""How many partitions the delivery's ledger has (absent: one, keyed by the delivery id alone)."""
TAG_RECIPIENT = "newsdesk-recipient"
TAG_ATTEMPT = "newsdesk-attempt"


@dataclass(frozen=True)
class SesEvent:
    """One SES event (the `detail` of its EventBridge event)."""

    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("eventType") or "")

    def tag(self, name: str) -> str | None:
        values = ((self.body.get("mail") or {}).get("tags") or {}).get(name) or []
        return str(values[0]) if values else None

    @property
    def sent_at(self) -> datetime | None:
        """When SES accepted the email (`mail.timestamp`)."""
        value = (self.body.get("mail") or {}).get("timestamp")
        try:
            return datetime.fromisoformat(str(value)) if value else None
        except ValueError:
            return None

    @property
    def message_id(self) -> str | None:
        value = (self.body.get("mail") or {}).get("messageId")
        return str(value) if value else None

    def part(self, name: str) -> dict[str, Any]:
        value = self.body.get(name)
        return value if isinstance(value, dict) else {}
