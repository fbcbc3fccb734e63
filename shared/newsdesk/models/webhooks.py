"""Webhook shapes: what editors send and get back, the stored endpoint and deliveries, and the queue's tasks."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from newsdesk.models.base import Model
from newsdesk.models.events import SUBSCRIBABLE, EventType
from newsdesk.models.types import Summary
from newsdesk.webhook_targets import MAX_URL_LENGTH

WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)]
SubscribableEvent = Annotated[EventType, Field(description="One of the event types (not `ping`).")]
WEBHOOK_ID_PATTERN = r"^wh_[0-9a-f]{16}$"
EVENT_ID_PATTERN = r"^evt_[0-9a-f]{32}$"


def _subscribable(events: list[EventType] | None) -> list[EventType] | None:
    if events is None:
        return None
    if EventType.PING in events:
        raise ValueError("ping is sent by the test route, not subscribed to")
    unique = list(dict.fromkeys(events))
    # Stored in the list's order, so that an endpoint reads back as it was written.
    return sorted(unique, key=SUBSCRIBABLE.index)


class _Request(Model):
    model_config = ConfigDict(extra="forbid")


class CreateWebhookRequest(_Request):
    url: WebhookUrl = Field(description="https on a public host (the local stack also takes http://127.0.0.1:<port>).")
    events: list[SubscribableEvent] = Field(min_length=1, max_length=len(SUBSCRIBABLE))
    description: Summary | None = Field(default=None, description="What the endpoint is for, for editors.")

    _events = field_validator("events")(_subscribable)


class UpdateWebhookRequest(_Request):
    """Only the fields present change; `enabled: true` turns a disabled endpoint back on."""

    url: WebhookUrl | None = None
    events: list[SubscribableEvent] | None = Field(default=None, min_length=1, max_length=len(SUBSCRIBABLE))
    description: Summary | None = None
    enabled: bool | None = None

    _events = field_validator("events")(_subscribable)


class Webhook(Model):
    """An endpoint as editors see it (never its secret)."""

    id: str
    url: str
    events: list[EventType]
    description: str | None = None
    enabled: bool = True
    disabled_at: datetime | None = Field(default=None, description="When it was disabled (it failed for days).")
    disabled_reason: str | None = None
    failing_since: datetime | None = Field(default=None, description="First failure since its last success.")
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int = Field(
        default=0,
        description="Raised by every write (an editor's, a delivery's outcome, the automatic disable); the `ETag`.",
    )


class WebhookCreated(Webhook):
    secret: str = Field(description="Signs every delivery (Newsdesk-Signature). Shown once: keep it now.")


class WebhookPage(Model):
    items: list[Webhook]
    next_cursor: str | None = None


class DeliveryState(StrEnum):
    PENDING = "pending"
    """Being sent, or waiting for its next retry."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Every attempt failed (or the endpoint was disabled or deleted meanwhile); a replay sends it again."""


class Attempt(Model):
    attempt: int
    at: datetime
    status_code: int | None = Field(default=None, description="The receiver's answer; none if it never answered.")
    error: str | None = None
    duration_ms: int


class WebhookDelivery(Model):
    """One event sent to one endpoint, with its attempts."""

    event_id: str
    type: EventType
    state: DeliveryState
    attempt: int = Field(description="Attempts made so far (every round, replays included).")
    status_code: int | None = Field(default=None, description="The last attempt's answer.")
    error: str | None = None
    next_retry_at: datetime | None = None
    attempts: list[Attempt] = Field(default_factory=list, description="The latest attempts, oldest first.")
    created_at: datetime
    updated_at: datetime


class WebhookDeliveryPage(Model):
    items: list[WebhookDelivery]
    next_cursor: str | None = None


class SendAccepted(Model):
    """A test or a replay is queued; follow it in the endpoint's deliveries."""

    event_id: str


class DeliveryTask(Model):
    """One attempt at one delivery (a message of the WebhookDeliveryQueue)."""

    webhook_id: str
    event_id: str
    round: int = Field(description="Raised by each replay; a task of an older round is dropped.")
    attempt: int = Field(description="The attempt within its round, from 1.")
    due_at: datetime
