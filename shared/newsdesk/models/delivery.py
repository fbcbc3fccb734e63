"""Newsletter delivery: queue messages between the functions, and the progress editors see."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from newsdesk.models.subscribers import Email, Frequency


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"


class FanoutTask(BaseModel):
    """Queue one audience shard's subscribers for an article, resuming after `cursor`."""

    delivery_id: str
    frequency: Frequency = Frequency.INSTANT
    shard: int
    number: int = Field(default=0, description="Position in the shard's chain of tasks.")
    cursor: str | None = None
    counted: int = Field(default=0, description="Recipients the chain queued before this task.")


class BatchRecipient(BaseModel):
    email: str
    name: str | None = None


class SendBatch(BaseModel):
    """Up to BATCH_SIZE recipients of one article. `batch_id` is the same for every copy of the batch,
    however many times fan-out queues it, which is what lets the mailer send it once."""

    delivery_id: str
    batch_id: str
    recipients: list[BatchRecipient]


class DeliveryProgress(BaseModel):
    state: DeliveryState
    total: int = Field(description="Recipients queued so far (final once every shard is queued).")
    sent: int
    failed: int
    suppressed: int = Field(description="Skipped: unsubscribed, bounced or complained before their turn.")
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TestEmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Email
