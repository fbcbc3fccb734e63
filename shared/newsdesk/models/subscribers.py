"""Subscriber shapes: the public sign-up form, the stored record, and the editor's views."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field

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


def normalize_email(value: object) -> object:
    # Mailbox providers ignore case in practice; one person must not become two subscribers.
    return value.strip().lower() if isinstance(value, str) else value


Email = Annotated[EmailStr, BeforeValidator(normalize_email), Field(max_length=254)]


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
