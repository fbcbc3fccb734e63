"""Webhooks: every event reaches the endpoints that asked for it, signed, retried until the receiver takes
it, kept as failed when it never does, and replayable; endpoints are managed over the editor API."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import Reply, Stack
from tests.integration.test_newsletter import add_subscribers, editor, publish_new_article
from tests.support.events import sample_event
from tests.support.receiver import Receiver, webhook_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


def admin(stack: Stack, sample: str, **request: Any) -> Reply:
    return stack.call("EditorFunction", sample_event(sample, **request))


def register(stack: Stack, url: str, events: list[str], **fields: Any) -> dict[str, Any]:
    reply = admin(stack, "editor-create-webhook", body={"url": url, "events": events, **fields})
    assert reply.status == 201, reply.body
    return dict(reply.json())


def deliveries(stack: Stack, webhook_id: str) -> list[dict[str, Any]]:
    reply = admin(stack, "editor-list-webhook-deliveries", path={"webhook_id": webhook_id}, query={"limit": "100"})
    assert reply.status == 200, reply.body
    return list(reply.json()["items"])


def signed_correctly(secret: str, request: Any) -> bool:
    """The receiver's check, as the README shows it."""
    fields = dict(part.split("=", 1) for part in request.headers["newsdesk-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def test_a_published_article_reaches_the_endpoint_signed(stack: Stack, receiver: Receiver) -> None:
    hook = register(stack, receiver.url, ["article.published"])

    article = publish_new_article(stack)
    stack.drain()

    (request,) = receiver.requests
    event = request.json()
    assert event["type"] == "article.published"
    assert event["data"]["id"] == article["id"]
    assert event["data"]["url"] == f"https://example.com/articles/{article['slug']}"
    assert request.headers["newsdesk-event-id"] == event["id"]
    assert request.headers["newsdesk-event-type"] == "article.published"
    assert request.headers["content-type"] == "application/json"
    assert signed_correctly(hook["secret"], request)
    (delivery,) = deliveries(stack, hook["id"])
    assert (delivery["event_id"], delivery["state"], delivery["attempt"], delivery["status_code"]) == (
        event["id"],
        "succeeded",
        1,
        200,
    )


def test_a_receiver_that_fails_first_gets_the_same_event_again_until_it_takes_it(
    stack: Stack, receiver: Receiver
) -> None:
    hook = register(stack, receiver.url, ["article.published"])
    receiver.answer(500, 502, then=200)

    publish_new_article(stack)
    stack.drain()

    assert [request.status for request in receiver.requests] == [500, 502, 200]
    assert len({request.headers["newsdesk-event-id"] for request in receiver.requests}) == 1
    assert len({request.body for request in receiver.requests}) == 1
    assert all(signed_correctly(hook["secret"], request) for request in receiver.requests)
    (delivery,) = deliveries(stack, hook["id"])
    assert (delivery["state"], delivery["attempt"]) == ("succeeded", 3)
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [500, 502, 200]


def test_a_receiver_down_for_every_retry_leaves_a_failed_delivery_that_a_replay_delivers(
    stack: Stack, receiver: Receiver
) -> None:
    hook = register(stack, receiver.url, ["article.published"])
    receiver.answer(then=503)

    publish_new_article(stack)
    stack.drain()

    (failed,) = deliveries(stack, hook["id"])
    assert (failed["state"], failed["attempt"], failed["status_code"]) == ("failed", 12, 503)
    assert failed["next_retry_at"] is None
    assert len(receiver.requests) == 12

    receiver.answer(then=200)
    reply = admin(
        stack, "editor-replay-webhook-delivery", path={"webhook_id": hook["id"], "event_id": failed["event_id"]}
    )
    stack.drain()

    assert reply.status == 202
    assert reply.json() == {"event_id": failed["event_id"]}
    assert receiver.requests[-1].status == 200
    assert receiver.requests[-1].headers["newsdesk-event-id"] == failed["event_id"]
    assert receiver.requests[-1].body == receiver.requests[0].body
    assert signed_correctly(hook["secret"], receiver.requests[-1])
    (replayed,) = deliveries(stack, hook["id"])
    assert (replayed["state"], replayed["attempt"]) == ("succeeded", 13)


def test_subscriber_events_reach_only_the_endpoints_that_asked_for_them(stack: Stack) -> None:
    with webhook_receiver() as articles_only, webhook_receiver() as crm:
        register(stack, articles_only.url, ["article.published"])
        register(stack, crm.url, ["subscriber.confirmed"])

        readers = add_subscribers(2)
        publish_new_article(stack)
        stack.drain()

    assert [request.headers["newsdesk-event-type"] for request in articles_only.requests] == ["article.published"]
    assert all("@" not in request.body.decode() for request in articles_only.requests)
    confirmed = sorted(request.json()["data"]["email"] for request in crm.requests)
    assert confirmed == sorted(readers)
    assert {request.headers["newsdesk-event-type"] for request in crm.requests} == {"subscriber.confirmed"}


def test_webhook_bodies_are_json_events(stack: Stack, receiver: Receiver) -> None:
    register(stack, receiver.url, ["article.published"])
    publish_new_article(stack)
    stack.drain()

    body = json.loads(receiver.requests[0].body)
    assert set(body) == {"id", "type", "created_at", "data"}
    assert editor(stack, "editor-list-webhooks").json()["items"][0]["url"] == receiver.url
