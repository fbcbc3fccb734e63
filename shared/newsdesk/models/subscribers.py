"""Subscriber shapes: the public sign-up form, the stored record, and the editor's views."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from newsdesk.models.addresses import EmailAddress
from newsdesk.models.types import AuthorName


class Frequency(StrEnum):
    INSTANT = "instant"
    DIGEST = "digest"


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


SUPPRESSED = frozenset({SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED})


Email = EmailAddress
"""Every address a subscriber model takes (see newsdesk.models.addresses for what is accepted)."""


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: AuthorName | None = None
    frequency: Frequency = Frequency.INSTANT


class SubscribeAccepted(BaseModel):
    """The same answer for every address: the public can never learn who is subscribed."""

    status: str = "accepted"
    message: str = "If this address can be subscribed, a confirmation email is on its way."


class Subscriber(BaseModel):
    email: str
    name: str | None = None
    frequency: Frequency = Frequency.INSTANT
    status: SubscriberStatus
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    confirmation_sent_at: datetime | None = None


class SubscriberPage(BaseModel):
    items: list[Subscriber]
    next_cursor: str | None = None


class SubscriberStats(BaseModel):
    pending: int
    confirmed: int
    unsubscribed: int
    bounced: int
    complained: int
    total: int
