"""Newsdesk's events on the EventBridge bus: each change that succeeded puts exactly its event there, from
the write that made it (the tables' streams), with an id that stays the same however often it is read."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.models.events import EVENT_DATA, EventType
from newsdesk.models.subscribers import Frequency
from tests.integration.conftest import BusTap, Stack
from tests.integration.test_ledger import _confirm
from tests.integration.test_newsletter import ARTICLE, add_subscribers, editor, publish_new_article
from tests.integration.test_subscribers import confirmed, subscribe
from tests.support.events import sample_event

SIMULATOR = "simulator.amazonses.com"
NEWSLETTER_FUNCTIONS = ("FanoutFunction", "MailerFunction", "SesEventsFunction", "TallyFunction", "WebhooksFunction")


def types(envelopes: list[dict[str, Any]]) -> list[str]:
    return [envelope["detail-type"] for envelope in envelopes]


def test_an_articles_life_puts_one_event_per_public_change_on_the_bus(stack: Stack, bus: BusTap) -> None:
    article = editor(stack, "editor-create-article", body=ARTICLE).json()
    path = {"article_id": article["id"]}
    stack.drain()
    assert bus() == []  # a draft is nobody's business

    assert editor(stack, "editor-publish-article", path=path).status == 200
    assert editor(stack, "editor-update-article", path=path, body={"title": "Harbour reopens at dawn"},
                  headers={"if-match": "*"}).status == 200  # fmt: skip
    assert editor(stack, "editor-unpublish-article", path=path).status == 200
    assert editor(stack, "editor-publish-article", path=path).status == 200
    assert editor(stack, "editor-delete-article", path=path, headers={"if-match": "*"}).status == 204
    stack.drain()

    # (Its newsletter, to nobody, finished too: that event has a test of its own.)
    envelopes = [envelope for envelope in bus() if envelope["detail-type"].startswith("article.")]
    assert types(envelopes) == [
        "article.published",
        "article.updated",
        "article.unpublished",
        "article.published",
        "article.deleted",
    ]
    details = [envelope["detail"] for envelope in envelopes]
    assert all(envelope["source"] == "newsdesk" for envelope in envelopes)
    assert all(detail["type"] == envelope["detail-type"] for detail, envelope in zip(details, envelopes, strict=True))
    assert len({detail["id"] for detail in details}) == 5  # published twice: two changes, two ids
    assert details[1]["data"]["title"] == "Harbour reopens at dawn"
    assert details[2]["data"]["title"] == "Harbour reopens at dawn"  # as it was while public
    assert details[4]["data"] == {"id": article["id"], "slug": article["slug"]}
    for detail in details:
        assert set(detail) == {"id", "type", "created_at", "data"}
        assert set(detail["data"]) == set(EVENT_DATA[EventType(detail["type"])].model_fields)


def test_a_draft_deleted_before_it_was_ever_published_makes_no_event(stack: Stack, bus: BusTap) -> None:
    article = editor(stack, "editor-create-article", body=ARTICLE).json()
    editor(
        stack,
        "editor-update-article",
        path={"article_id": article["id"]},
        body={"title": "Other"},
        headers={"if-match": "*"},
    )
    editor(stack, "editor-delete-article", path={"article_id": article["id"]}, headers={"if-match": "*"})
    stack.drain()

    assert bus() == []


def test_a_stream_batch_read_twice_puts_the_same_events_with_the_same_ids(stack: Stack, bus: BusTap) -> None:
    # The stream hands a batch again when the function failed part-way: the events must be the same ones.
    record = sample_event("stream-article-published")

    stack.invoke("EventsFunction", record)
    stack.invoke("EventsFunction", record)

    first, second = bus()
    assert first["detail"] == second["detail"]
    assert first["detail"]["type"] == "article.published"


def test_publishing_100_articles_concurrently_puts_exactly_100_published_events_on_the_bus(
    stack: Stack, bus: BusTap
) -> None:
    drafts = [
        editor(stack, "editor-create-article", body={**ARTICLE, "title": f"Story {n}"}).json() for n in range(100)
    ]
    stack.drain()
    bus()

    def publish(article_id: str) -> int:
        return int(
            stack.invoke("EditorFunction", sample_event("editor-publish-article", path={"article_id": article_id}))[
                "statusCode"
            ]
        )

    # Every article published twice at once (an editor's double click, a schedule racing an editor).
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(publish, [draft["id"] for draft in [*drafts, *drafts]]))
    # The newsletters (to nobody) are not what this counts: only the events are read from the streams.
    stack.drain(skip=NEWSLETTER_FUNCTIONS)

    assert statuses == [200] * 200
    envelopes = [envelope for envelope in bus() if envelope["detail-type"] == "article.published"]
    counted = Counter(envelope["detail"]["data"]["id"] for envelope in envelopes)
    assert len(envelopes) == 100
    assert set(counted) == {draft["id"] for draft in drafts}
    assert len({envelope["detail"]["id"] for envelope in envelopes}) == 100


def test_subscriber_status_changes_put_their_events_and_nothing_else_does(stack: Stack, bus: BusTap) -> None:
    subscribe(stack, "pending@example.org")  # a sign-up: pending, no event
    confirmed(stack, "reader@example.org")
    subscribe(stack, "reader@example.org")  # signing up again changes nothing
    repository = dependencies.container().subscriber_repository

    # Not a status change:
    assert repository.set_preferences(
        "reader@example.org", frequency=Frequency.DIGEST, topics=None, keep_topics=True, now=utc_now()
    )
    assert repository.unsubscribe("reader@example.org", utc_now())
    stack.drain()

    envelopes = bus()
    assert types(envelopes) == ["subscriber.confirmed", "subscriber.unsubscribed"]
    assert envelopes[0]["detail"]["data"] == {
        "email": "reader@example.org",
        "status": "confirmed",
        "previous_status": "pending",
        "frequency": "instant",
    }
    assert envelopes[1]["detail"]["data"]["previous_status"] == "confirmed"


def test_a_finished_newsletter_reports_its_counts_and_bounces_and_complaints_their_subscribers(
    stack: Stack, bus: BusTap
) -> None:
    add_subscribers(3)
    _confirm([f"bounce@{SIMULATOR}", f"complaint@{SIMULATOR}"])
    stack.drain()
    bus()

    article = publish_new_article(stack)
    stack.drain()

    envelopes = bus()
    by_type = {envelope["detail-type"]: envelope["detail"] for envelope in envelopes}
    assert sorted(types(envelopes)) == sorted(
        ["article.published", "subscriber.bounced", "subscriber.complained", "newsletter.finished"]
    )
    finished = by_type["newsletter.finished"]["data"]
    assert finished["delivery_id"] == f"article-{article['id']}"
    assert finished["kind"] == "newsletter"
    assert finished["article_id"] == article["id"]
    assert finished["total"] == 5
    assert finished["counts"] == {
        "sent": 0,
        "delivered": 3,
        "bounced": 1,
        "complained": 1,
        "failed": 0,
        "suppressed": 0,
    }
    assert sum(finished["counts"].values()) == finished["total"]
    assert "@" not in json.dumps(finished)
    assert by_type["subscriber.bounced"]["data"]["email"] == f"bounce@{SIMULATOR}"
    assert by_type["subscriber.complained"]["data"]["previous_status"] == "confirmed"
