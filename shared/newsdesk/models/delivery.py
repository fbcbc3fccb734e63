"""Deliveries (an article's newsletter, a digest): queue messages, the ledger's states, and the editor's views."""

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from newsdesk.models.base import Model
from newsdesk.models.subscribers import Email, Frequency


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"


class DeliveryKind(StrEnum):
    NEWSLETTER = "newsletter"
    DIGEST = "digest"
    BREAKING = "breaking"
    """A breaking-news alert: to the readers who asked for them and whom the article's newsletter does not reach."""


class LedgerState(StrEnum):
    """Where one recipient of one delivery stands; every state but `pending` is final for the sending
    (SES may still report a delivery, bounce or complaint about a `sent` email)."""

    PENDING = "pending"
    """Claimed for sending; SES has not (yet) reported accepting it."""
    SENT = "sent"
    """SES accepted it: its `Send` event arrived, with the message id."""
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"
    """Refused for good (SES rejected the address or the message, or the article was withdrawn)."""
    SUPPRESSED = "suppressed"
    """Skipped: unsubscribed, bounced, complained or erased before their turn."""


ACCEPTED_STATES = frozenset({LedgerState.SENT, LedgerState.DELIVERED, LedgerState.BOUNCED, LedgerState.COMPLAINED})


class FanoutTask(Model):
    """Queue one audience shard's subscribers of a delivery, resuming after `cursor`: the subscribers of
    everything (`topic` None) or the readers of one topic who were not queued for an earlier one."""

    delivery_id: str
    frequency: Frequency = Frequency.INSTANT
    topic: str | None = Field(default=None, description="The topic of this pass; None: subscribers of everything.")
    earlier_topics: list[str] = Field(
        default_factory=list, description="The delivery's topics before this one: their readers are queued there."
    )
    shard: int
    number: int = Field(default=0, description="Position in the shard's chain of tasks.")
    cursor: str | None = None
    counted: int = Field(default=0, description="Recipients the chain queued before this task.")
    breaking: bool = Field(default=False, description="A breaking-news alert's pass: the readers who asked for them.")
    newsletter_topics: list[str] = Field(
        default_factory=list,
        description="For a breaking-news alert: the article newsletter's topics; its instant readers get that instead.",
    )


class BatchRecipient(Model):
    email: str
    name: str | None = None


class SendBatch(Model):
    """Up to BATCH_SIZE recipients of one delivery. `batch_id` is the same for every copy of the batch,
    however many times fan-out queues it, which is what lets the mailer send it once."""

    delivery_id: str
    batch_id: str
    recipients: list[BatchRecipient]


class LedgerCounts(Model):
    """How many recipients are in each state; with `queued` (not yet claimed) they add up to the total."""

    queued: int = Field(default=0, description="Queued by fan-out, not yet taken by a mailer.")
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    failed: int = 0
    suppressed: int = 0


class Engagement(Model):
    """Aggregate opens and clicks of a delivery (only with TrackEngagement); never per person."""

    unique_opens: int = Field(default=0, description="Recipients who opened it, as far as a person did.")
    machine_opens: int = Field(default=0, description="Opens by mail privacy proxies (e.g. Apple Mail), not people.")
    clicks: dict[str, int] = Field(default_factory=dict, description="Human clicks per link.")
    scanner_clicks: int = Field(default=0, description="Clicks by link scanners, counted apart.")


class DeliveryProgress(Model):
    id: str = Field(description="The delivery's id (`article-<article id>` or `digest-<scheduled time>`).")
    kind: DeliveryKind
    article_id: str | None = None
    topics: list[str] = Field(
        default_factory=list,
        description="The topics it is sent for (readers of these, and subscribers of everything); fixed at its start.",
    )
    state: DeliveryState
    total: int = Field(description="Recipients queued so far (final once fan-out has finished).")
    sent: int = Field(description="Emails SES accepted: sent, delivered, bounced and complained together.")
    failed: int
    suppressed: int = Field(description="Skipped: unsubscribed, bounced or complained before their turn.")
    counts: LedgerCounts
    late_send_events: int = Field(
        default=0,
        description="`Send` events that arrived after the email was sent again (the recipient may have two copies).",
    )
    paused_until: datetime | None = Field(
        default=None,
        description="Sending waits until then: SES's daily quota is spent, or SES refuses the account (see why).",
    )
    paused_reason: str | None = Field(default=None, description="Why sending waits, while it does.")
    engagement: Engagement | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class DeliveryPage(Model):
    items: list[DeliveryProgress]
    next_cursor: str | None = None


class LedgerEntry(Model):
    """One recipient of one delivery, as the editor sees it."""

    email: str | None = Field(description="None once the person was erased.")
    state: LedgerState
    message_id: str | None = Field(default=None, description="SES's message id, once SES accepted the email.")
    detail: str | None = Field(default=None, description="Why it failed, bounced or was skipped.")
    updated_at: datetime


class LedgerPage(Model):
    items: list[LedgerEntry]
    next_cursor: str | None = None


class TestEmailRequest(Model):
    model_config = ConfigDict(extra="forbid")

    to: Email
