"""Erasures: where the erasure of one person stands (the editor polls it), and the queue's steps."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from newsdesk.models.base import Model

ERASURE_ID_PATTERN = r"^[0-9a-f]{32}$"


class ErasureStep(StrEnum):
    """What an erasure does, in this order; each step is safe to repeat, so a retry resumes at the first not
    done. The tombstone (the erasure's own record) is written before any of them."""

    LEDGERS = "ledgers"
    WEBHOOK_BODIES = "webhook_bodies"
    TOPIC_MEMBERSHIPS = "topic_memberships"
    RATE_LIMIT_COUNTERS = "rate_limit_counters"
    CONSENT = "consent"
    SUBSCRIBER = "subscriber"


class ErasureState(StrEnum):
    RUNNING = "running"
    DONE = "done"


class ErasedCounts(Model):
    """What the erasure removed or scrubbed so far."""

    ledger_records: int = 0
    webhook_bodies: int = 0
    topic_memberships: int = 0
    rate_limit_counters: int = 0


class Erasure(Model):
    """One person's erasure, as `GET /admin/erasures/{erasure_id}` shows it (never the address)."""

    id: str = Field(description="A keyed hash of the address as it was stored; it names nobody without the secret.")
    state: ErasureState
    step: ErasureStep | None = Field(default=None, description="The step in progress; null once done.")
    requested_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    erased: ErasedCounts = Field(default_factory=ErasedCounts)


class ErasureTask(Model):
    """A message on the erasure queue: continue the erasure `id`, or the clean-up of the deleted topic `id`."""

    kind: Literal["person", "topic"]
    id: str = Field(min_length=1, max_length=64)
