"""Newsdesk's events: what happened, as published on the EventBridge bus and delivered to webhooks.

Every event is `{id, type, created_at, data}`. The id is stable: derived from the change itself (an
article's id, creation time and version; a delivery's id; the stream record of a subscriber's change), so
the same change always carries the same id, however often it is published or delivered. `data` holds ids
and public fields; only subscriber events hold an address, and only endpoints that ask for them get them.
"""

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from newsdesk.models.authors import Byline
from newsdesk.models.base import Model

EVENT_SOURCE = "newsdesk"
"""The `source` of every event on the bus."""


class EventType(StrEnum):
    ARTICLE_PUBLISHED = "article.published"
    ARTICLE_UPDATED = "article.updated"
    ARTICLE_UNPUBLISHED = "article.unpublished"
    ARTICLE_DELETED = "article.deleted"
    ARTICLE_SUBMITTED = "article.submitted"
    ARTICLE_APPROVED = "article.approved"
    ARTICLE_CHANGES_REQUESTED = "article.changes_requested"
    ARTICLE_CORRECTED = "article.corrected"
    NEWSLETTER_FINISHED = "newsletter.finished"
    SUBSCRIBER_CONFIRMED = "subscriber.confirmed"
    SUBSCRIBER_UNSUBSCRIBED = "subscriber.unsubscribed"
    SUBSCRIBER_BOUNCED = "subscriber.bounced"
    SUBSCRIBER_COMPLAINED = "subscriber.complained"
    PING = "ping"
    """Sent by `POST /admin/webhooks/{id}/test` only; not on the bus, not subscribable."""


SUBSCRIBABLE = tuple(kind for kind in EventType if kind is not EventType.PING)
SUBSCRIBER_EVENTS = frozenset(
    {
        EventType.SUBSCRIBER_CONFIRMED,
        EventType.SUBSCRIBER_UNSUBSCRIBED,
        EventType.SUBSCRIBER_BOUNCED,
        EventType.SUBSCRIBER_COMPLAINED,
    }
)
"""The only events whose data holds an email address."""


def event_id(*parts: str) -> str:
    """A stable id made of what identifies the change (never an address: parts are ids and versions)."""
    return "evt_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class Event(Model):
    """One event, exactly as it is sent: the webhook body is `body()`, the bus event's detail too."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: EventType
    created_at: datetime
    data: dict[str, Any]

    def body(self) -> str:
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------- the data


class _Data(Model):
    model_config = ConfigDict(extra="forbid")


class ArticleData(_Data):
    """article.published, article.updated and article.unpublished: the article's public fields (for
    unpublished, as they were while it was public)."""

    id: str
    slug: str
    url: str = Field(description="Where readers find it on the site.")
    title: str
    summary: str
    author: str
    authors: list[Byline] = Field(description="Each author; `author` is their names as one line.")
    tags: list[str]
    reading_time_minutes: int
    published_at: datetime | None
    updated_at: datetime
    version: int


class CorrectionData(_Data):
    kind: str = Field(description="`correction`, `clarification` or `update`.")
    text: str
    published_at: datetime


class ArticleCorrectedData(ArticleData):
    """article.corrected: a note was added to a published article (the article as it is now, and the note)."""

    correction: CorrectionData


class ArticleDeletedData(_Data):
    id: str
    slug: str


class ArticleReviewData(_Data):
    """article.submitted, article.approved and article.changes_requested: an article moved in the review. It
    is not public yet: the fields say which article and who moved it, not what it says."""

    id: str
    slug: str
    title: str
    status: str = Field(description="in_review, approved or changes_requested.")
    previous_status: str
    by: str = Field(description="Who moved it: a person's id (`token:<id>` for a token made before people).")
    comment: str | None = Field(description="What an editor asked to change (changes_requested); else null.")
    updated_at: datetime
    version: int


class NewsletterCounts(_Data):
    """Recipients by final state (the delivery ledger's states); they add up to `total`."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    failed: int = 0
    suppressed: int = 0


class NewsletterData(_Data):
    """newsletter.finished: a newsletter or a digest reached every recipient it will reach."""

    delivery_id: str
    kind: str = Field(description="`newsletter` (one article) or `digest`.")
    article_id: str | None = None
    article_ids: list[str] = Field(default_factory=list, description="A digest's articles.")
    total: int
    counts: NewsletterCounts
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SubscriberData(_Data):
    """subscriber.*: who changed, from what to what. Only endpoints that ask for these get them."""

    email: str
    status: str
    previous_status: str | None
    frequency: str


class PingData(_Data):
    webhook_id: str
    message: str = "This is a test event from Newsdesk."


EVENT_DATA: dict[EventType, type[_Data]] = {
    EventType.ARTICLE_PUBLISHED: ArticleData,
    EventType.ARTICLE_UPDATED: ArticleData,
    EventType.ARTICLE_UNPUBLISHED: ArticleData,
    EventType.ARTICLE_DELETED: ArticleDeletedData,
    EventType.ARTICLE_SUBMITTED: ArticleReviewData,
    EventType.ARTICLE_APPROVED: ArticleReviewData,
    EventType.ARTICLE_CHANGES_REQUESTED: ArticleReviewData,
    EventType.ARTICLE_CORRECTED: ArticleCorrectedData,
    EventType.NEWSLETTER_FINISHED: NewsletterData,
    EventType.SUBSCRIBER_CONFIRMED: SubscriberData,
    EventType.SUBSCRIBER_UNSUBSCRIBED: SubscriberData,
    EventType.SUBSCRIBER_BOUNCED: SubscriberData,
    EventType.SUBSCRIBER_COMPLAINED: SubscriberData,
    EventType.PING: PingData,
}
"""The shape of each event's data (the README's samples and events/webhooks/*.json follow these)."""


def make_event(kind: EventType, identity: str, created_at: datetime, data: _Data) -> Event:
    assert isinstance(data, EVENT_DATA[kind])
    return Event(id=event_id(kind.value, identity), type=kind, created_at=created_at,
                 data=data.model_dump(mode="json"))  # fmt: skip
