"""Newsdesk's events, made from the tables' streams and put on the stack's EventBridge bus.

A change's event comes from the write that made the change: the stream of ArticlesTable (an article's
status and version), SubscribersTable (a subscriber's status) and PublicationsTable (a delivery marked
done, with its final counts). Nothing is written twice and no change is left to a second step that could
fail on its own: a change that succeeded is in its stream, and the stream is read until every event of it
is on the bus. Each event's id is derived from the change (see `newsdesk.models.events`), so a stream
batch that is read again puts the same events, with the same ids, again.

The event sources filter the streams (template.yaml), so only changes that make an event invoke the
function: a subscriber's sign-up, confirmation claim or frequency change costs nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from newsdesk.dal.event_bus import PUT_EVENTS_LIMIT, EventBus
from newsdesk.errors import ServiceBusy
from newsdesk.models.articles import byline_of
from newsdesk.models.events import (
    ArticleCorrectedData,
    ArticleData,
    ArticleDeletedData,
    ArticleReviewData,
    CorrectionData,
    Event,
    EventType,
    NewsletterCounts,
    NewsletterData,
    SubscriberData,
    make_event,
)
from newsdesk.observability import logger

PUBLISHED = "published"
_REVIEW_EVENTS = {
    "in_review": EventType.ARTICLE_SUBMITTED,
    "approved": EventType.ARTICLE_APPROVED,
    "changes_requested": EventType.ARTICLE_CHANGES_REQUESTED,
}
_SUBSCRIBER_EVENTS = {
    "confirmed": EventType.SUBSCRIBER_CONFIRMED,
    "unsubscribed": EventType.SUBSCRIBER_UNSUBSCRIBED,
    "bounced": EventType.SUBSCRIBER_BOUNCED,
    "complained": EventType.SUBSCRIBER_COMPLAINED,
}


class ChangeSource(StrEnum):
    ARTICLES = "articles"
    SUBSCRIBERS = "subscribers"
    PUBLICATIONS = "publications"


@dataclass(frozen=True)
class StreamChange:
    """One stream record: the item before and after (plain values), and where it came from."""

    source: ChangeSource
    record_id: str
    sequence: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    at: datetime
    """When the change was made (the stream's approximate time, to the second)."""


def _time(value: Any, fallback: datetime) -> datetime:
    return datetime.fromisoformat(str(value)) if value else fallback


def _article_data(image: dict[str, Any], site_base: str, *, updated: dict[str, Any]) -> ArticleData:
    slug = str(image["slug"])
    return ArticleData(
        id=str(image["id"]),
        slug=slug,
        url=f"{site_base}/articles/{slug}",
        title=str(image["title"]),
        summary=str(image.get("summary", "")),
        author=str(image["author"]),
        authors=image.get("authors") or byline_of(str(image["author"])),
        tags=[str(tag) for tag in image.get("tags") or []],
        reading_time_minutes=int(image.get("reading_time_minutes", 0)),
        published_at=image.get("published_at"),
        updated_at=updated["updated_at"],
        version=int(updated["version"]),
    )


def review_event(change: StreamChange) -> Event | None:
    """submitted, approved, changes_requested: the article moved into that status of the review."""
    old, new = change.old, change.new
    status = str(new.get("status")) if new else None
    previous = str(old.get("status")) if old else "draft"
    if new is None or status not in _REVIEW_EVENTS or status == previous:
        return None
    kind = _REVIEW_EVENTS[status]
    transition = new.get("last_transition") or {}
    data = ArticleReviewData(
        id=str(new["id"]),
        slug=str(new["slug"]),
        title=str(new["title"]),
        status=status,
        previous_status=previous,
        by=str(transition.get("by", "")),
        comment=transition.get("comment"),
        updated_at=new["updated_at"],
        version=int(new["version"]),
    )
    identity = f"{new['id']}|{new['created_at']}|{new['version']}"
    return make_event(kind, identity, _time(new.get("updated_at"), change.at), data)


def _public(image: dict[str, Any] | None) -> bool:
    """Readers can see it: published, and not held by an embargo (a held article has no `published_at`)."""
    return bool(image and image.get("status") == PUBLISHED and image.get("published_at"))


def article_event(change: StreamChange, site_base: str) -> Event | None:
    """published (now public, was not), updated (public, and a new version), corrected (public, and a note
    added), unpublished (was public, now not), deleted (removed, and had been published at some time: a draft
    never was public); or a move in the review (`review_event`). An article held by its embargo makes no event
    until it is public."""
    old, new = change.old, change.new
    if new is not None and new.get("status") in _REVIEW_EVENTS:
        return review_event(change)
    was_public = _public(old)
    if new is None:
        if not old or not old.get("published_at"):
            return None
        identity = f"{old['id']}|{old['created_at']}|{old['version']}|deleted"
        data = ArticleDeletedData(id=str(old["id"]), slug=str(old["slug"]))
        return make_event(EventType.ARTICLE_DELETED, identity, change.at, data)
    is_public = _public(new)
    if is_public and was_public and len(new.get("corrections") or []) > len((old or {}).get("corrections") or []):
        identity = f"{new['id']}|{new['created_at']}|{new['version']}"
        note = CorrectionData.model_validate((new.get("corrections") or [])[-1])
        corrected = ArticleCorrectedData(**_article_data(new, site_base, updated=new).model_dump(), correction=note)
        return make_event(EventType.ARTICLE_CORRECTED, identity, _time(new.get("updated_at"), change.at), corrected)
    if is_public and not was_public:
        kind, image = EventType.ARTICLE_PUBLISHED, new
    elif is_public and old is not None and old.get("version") != new.get("version"):
        kind, image = EventType.ARTICLE_UPDATED, new
    elif was_public and not is_public and old is not None:
        kind, image = EventType.ARTICLE_UNPUBLISHED, old  # the public fields as they were while public
    else:
        return None
    identity = f"{new['id']}|{new['created_at']}|{new['version']}"
    created_at = _time(new.get("updated_at"), change.at)
    return make_event(kind, identity, created_at, _article_data(image, site_base, updated=new))


def subscriber_event(change: StreamChange) -> Event | None:
    """A subscriber's status moved to confirmed, unsubscribed, bounced or complained."""
    old, new = change.old, change.new
    previous = str(old["status"]) if old and "status" in old else None
    status = str(new["status"]) if new and "status" in new else None
    if new is None or status is None or status == previous or status not in _SUBSCRIBER_EVENTS:
        return None
    data = SubscriberData(
        email=str(new["email"]), status=status, previous_status=previous, frequency=str(new.get("frequency", "instant"))
    )
    # The stream record names the change (a subscriber item has no version): its id is the same on every
    # read of the record, and says nothing about the address.
    return make_event(_SUBSCRIBER_EVENTS[status], change.record_id, _time(new.get("updated_at"), change.at), data)


def newsletter_event(change: StreamChange) -> Event | None:
    """A delivery's publication record became `done`; its final counts were written with that state."""
    new = change.new
    if not new or new.get("sk") != "#publication" or new.get("state") != "done":
        return None
    counts = {key: int(value) for key, value in (new.get("final_counts") or {}).items()}
    data = NewsletterData(
        delivery_id=str(new["pk"]),
        kind=str(new.get("kind", "newsletter")),
        article_id=new.get("article_id"),
        article_ids=[str(article_id) for article_id in new.get("article_ids") or []],
        total=int(new.get("total", 0)),
        counts=NewsletterCounts(**{key: counts.get(key, 0) for key in NewsletterCounts.model_fields}),
        started_at=new.get("started_at"),
        finished_at=new.get("finished_at"),
    )
    return make_event(EventType.NEWSLETTER_FINISHED, str(new["pk"]), _time(new.get("finished_at"), change.at), data)


class ChangeEvents:
    """Turns stream changes into events and puts them on the bus, in stream order."""

    def __init__(self, bus: EventBus, *, site_base: str) -> None:
        self._bus = bus
        self._site_base = site_base

    def event_of(self, change: StreamChange) -> Event | None:
        if change.source is ChangeSource.ARTICLES:
            return article_event(change, self._site_base)
        if change.source is ChangeSource.SUBSCRIBERS:
            return subscriber_event(change)
        return newsletter_event(change)

    def publish(self, changes: Sequence[StreamChange]) -> str | None:
        """Put the events of `changes` on the bus; None when all are there, else the sequence number of the
        first change whose event is not (it and every later one are to be read again)."""
        pending = [(change.sequence, event) for change in changes if (event := self.event_of(change)) is not None]
        for start in range(0, len(pending), PUT_EVENTS_LIMIT):
            chunk = pending[start : start + PUT_EVENTS_LIMIT]
            try:
                self._bus.put([event for _, event in chunk])
            except ServiceBusy:
                logger.warning("events not published yet; the stream gives them again", extra={"events": len(chunk)})
                return chunk[0][0]
            for _, event in chunk:
                logger.info("event published", extra={"event_id": event.id, "type": event.type.value})
        return None
