"""Webhooks: every event reaches the endpoints that asked for it, signed, retried until the receiver takes
it, kept as failed when it never does, and replayable; endpoints are managed over the editor API."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from local.stack import local_resolver
from local.template.model import Template
from newsdesk import dependencies
from newsdesk.dal.webhooks import StoredWebhook
from newsdesk.services import erasure
from newsdesk.services.webhooks import DISABLE_AFTER
from newsdesk.settings import WebhookSettings, read_settings
from tests.integration.conftest import API_URL, Reply, Stack
from tests.integration.test_newsletter import add_subscribers, editor, publish_new_article
from tests.support import times
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


def test_editors_manage_endpoints_and_bad_urls_get_a_clear_422_that_changes_nothing(
    stack: Stack, receiver: Receiver
) -> None:
    refused = {
        # The tests' stack takes nothing but 127.0.0.1 (the public rules have unit tests).
        "http://169.254.169.254/latest/meta-data/": "must be http://127.0.0.1:<port>",
        "https://hooks.example.org/in": "must be http://127.0.0.1:<port>",
        "http://user:secret@127.0.0.1:8080/hook": "user name or password",
        "ftp://127.0.0.1:21/": "https",
    }
    for url, reason in refused.items():
        reply = admin(stack, "editor-create-webhook", body={"url": url, "events": ["article.published"]})
        assert reply.status == 422, url
        assert reply.json()["error"]["code"] == "invalid_webhook_url"
        assert reason in reply.json()["error"]["message"]
    for events in (["ping"], ["article.exploded"], []):
        reply = admin(stack, "editor-create-webhook", body={"url": receiver.url, "events": events})
        assert reply.status == 422, events
    assert editor(stack, "editor-list-webhooks").json()["items"] == []

    created = admin(stack, "editor-create-webhook", body={"url": receiver.url, "events": ["article.updated",
                    "article.published", "article.published"], "description": "Search index"})  # fmt: skip
    assert created.status == 201
    assert created.headers["cache-control"] == "no-store"
    hook = created.json()
    assert hook["secret"].startswith("whsec_")
    assert hook["events"] == ["article.published", "article.updated"]
    path = {"webhook_id": hook["id"]}
    shown = admin(stack, "editor-get-webhook", path=path).json()
    assert "secret" not in shown  # shown once
    assert (shown["enabled"], shown["description"]) == (True, "Search index")
    assert all("secret" not in item for item in editor(stack, "editor-list-webhooks").json()["items"])

    bad = admin(stack, "editor-update-webhook", path=path, body={"url": "http://10.0.0.1:80/"})
    assert (bad.status, bad.json()["error"]["code"]) == (422, "invalid_webhook_url")
    changed = admin(stack, "editor-update-webhook", path=path, body={"events": ["article.deleted"]})
    assert changed.status == 200
    assert changed.json()["events"] == ["article.deleted"]
    assert changed.json()["url"] == receiver.url

    # The test route: a signed ping, listed with the endpoint's deliveries.
    pinged = admin(stack, "editor-test-webhook", path=path)
    publish_new_article(stack)  # article.published: no longer asked for
    stack.drain()
    assert pinged.status == 202
    (ping,) = receiver.requests
    assert ping.json()["type"] == "ping"
    assert ping.json()["id"] == ping.headers["newsdesk-event-id"] == pinged.json()["event_id"]
    assert ping.json()["data"]["webhook_id"] == hook["id"]
    assert signed_correctly(hook["secret"], ping)
    admin(stack, "editor-test-webhook", path=path)
    stack.drain()

    # Deliveries page by cursor, newest first.
    first = admin(stack, "editor-list-webhook-deliveries", path=path, query={"limit": "1"}).json()
    second = admin(stack, "editor-list-webhook-deliveries", path=path,
                   query={"limit": "1", "cursor": first["next_cursor"]}).json()  # fmt: skip
    assert [item["event_id"] for item in first["items"] + second["items"]] == [
        receiver.requests[1].headers["newsdesk-event-id"],
        pinged.json()["event_id"],
    ]
    assert second["next_cursor"] is None
    garbled = admin(stack, "editor-list-webhook-deliveries", path=path, query={"cursor": "not-a-cursor"})
    assert 400 <= garbled.status < 500
    unknown = {"webhook_id": "wh_ffffffffffffffff", "event_id": "evt_" + "0" * 32}
    assert admin(stack, "editor-replay-webhook-delivery", path={**path, "event_id": unknown["event_id"]}).status == 404
    assert admin(stack, "editor-get-webhook", path={"webhook_id": "nope"}).status == 404

    assert admin(stack, "editor-delete-webhook", path=path).status == 204
    assert admin(stack, "editor-get-webhook", path=path).status == 404
    article = publish_new_article(stack)
    editor(stack, "editor-delete-article", path={"article_id": article["id"]}, headers={"if-match": "*"})
    stack.drain()
    assert len(receiver.requests) == 2  # the two pings, nothing since the endpoint was deleted


def test_an_endpoint_failing_for_days_is_disabled_says_so_and_gets_nothing_until_turned_back_on(
    stack: Stack, receiver: Receiver
) -> None:
    hook = register(stack, receiver.url, ["article.published"])
    path = {"webhook_id": hook["id"]}
    receiver.answer(then=503)
    start = times.now()
    with freeze_time(start, tick=True):
        publish_new_article(stack)
        stack.drain()
    assert admin(stack, "editor-get-webhook", path=path).json()["enabled"] is True  # failing, not for days

    with freeze_time(start + DISABLE_AFTER + timedelta(minutes=1), tick=True):
        publish_new_article(stack, title="Still failing")
        stack.drain()
        shown = admin(stack, "editor-get-webhook", path=path).json()
        tried = len(receiver.requests)
        publish_new_article(stack, title="Not sent")
        stack.drain()

    assert shown["enabled"] is False
    assert shown["disabled_at"] is not None
    assert f"no delivery succeeded since {start:%Y-%m-%dT%H:%M}" in shown["disabled_reason"]
    assert shown["failing_since"].startswith(f"{start:%Y-%m-%dT%H:%M}")
    assert len(receiver.requests) == tried  # disabled: the next event is not offered
    assert [item["type"] for item in deliveries(stack, hook["id"])] == ["article.published"] * 2

    receiver.answer(then=200)
    back = admin(stack, "editor-update-webhook", path=path, body={"enabled": True})
    publish_new_article(stack, title="Back")
    stack.drain()
    assert (back.status, back.json()["enabled"], back.json()["disabled_reason"]) == (200, True, None)
    assert receiver.requests[-1].json()["data"]["title"] == "Back"
    assert receiver.requests[-1].status == 200


@pytest.mark.parametrize("function", ["EditorFunction", "WebhooksFunction"])
def test_the_ports_the_template_allows_reach_both_functions_that_check_a_target(
    template: Template, function: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The editor's route checks a URL when it is saved, WebhooksFunction before each delivery: the same ports.
    for ports, allowed in (({}, {443}), ({"WebhookAllowedPorts": "443,8443"}, {443, 8443})):
        resolver = local_resolver(api_url=API_URL, parameters=ports, template=template)
        for name, value in resolver.function_environment(template.functions[function]).items():
            monkeypatch.setenv(name, value)

        assert read_settings(WebhookSettings).target_ports.allowed == allowed


def test_an_editors_change_cannot_undo_an_automatic_disable_made_between_its_read_and_its_write(
    stack: Stack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an endpoint that has been failing for days
    hook = register(stack, receiver.url, ["article.published"])
    path = {"webhook_id": hook["id"]}
    repository = dependencies.container().webhook_repository
    start = times.now()
    assert repository.record_failure(hook["id"], start - DISABLE_AFTER) is not None
    read = repository.get
    raced: list[bool] = []

    def read_then_disabled(webhook_id: str) -> StoredWebhook | None:
        stored = read(webhook_id)  # the editor's read: enabled
        if not raced and stored is not None:
            # WebhooksFunction's next failure disables the endpoint, between the editor's read and write
            failing = repository.record_failure(webhook_id, start)
            assert failing is not None
            raced.append(repository.disable(failing, "no delivery succeeded since then", start))
        return stored

    monkeypatch.setattr(repository, "get", read_then_disabled)

    # When an editor changes its description without If-Match (the update is conditional on what it read)
    stale = admin(stack, "editor-update-webhook", path=path, body={"description": "Search index"})

    # Then the stale write is refused, and the endpoint stays disabled, unchanged by it
    assert raced == [True]
    assert stale.status == 412, stale.body
    assert stale.json()["error"]["code"] == "version_mismatch"
    shown = admin(stack, "editor-get-webhook", path=path)
    assert (shown.json()["enabled"], shown.json()["description"]) == (False, None)
    assert shown.json()["disabled_reason"] == "no delivery succeeded since then"
    # Read again, the same change goes through and keeps the disable
    again = admin(stack, "editor-update-webhook", path=path, body={"description": "Search index"},
                  headers={"if-match": shown.headers["etag"]})  # fmt: skip
    assert again.status == 200, again.body
    assert (again.json()["enabled"], again.json()["description"]) == (False, "Search index")


def test_an_endpoint_has_an_etag_and_an_update_with_a_stale_if_match_changes_nothing(
    stack: Stack, receiver: Receiver
) -> None:
    hook = register(stack, receiver.url, ["article.published"])
    path = {"webhook_id": hook["id"]}
    read = admin(stack, "editor-get-webhook", path=path)
    etag = read.headers["etag"]
    assert etag == f'"{read.json()["version"]}"'

    # Every write moves the version on: here a failed delivery recorded meanwhile
    dependencies.container().webhook_repository.record_failure(hook["id"], times.now())
    stale = admin(stack, "editor-update-webhook", path=path, body={"url": receiver.url + "/v2"},
                  headers={"if-match": etag})  # fmt: skip

    assert stale.status == 412
    assert stale.json()["error"]["code"] == "version_mismatch"
    assert stale.json()["error"]["details"] == {"current_version": read.json()["version"] + 1}
    assert admin(stack, "editor-get-webhook", path=path).json()["url"] == receiver.url
    current = admin(stack, "editor-get-webhook", path=path).headers["etag"]
    changed = admin(stack, "editor-update-webhook", path=path, body={"url": receiver.url + "/v2"},
                    headers={"if-match": current})  # fmt: skip
    assert changed.status == 200
    assert changed.json()["url"] == receiver.url + "/v2"
    assert changed.headers["etag"] == f'"{read.json()["version"] + 2}"'


@pytest.mark.parametrize("finished_by", ["the request", "ErasureFunction"])
def test_erasing_a_subscriber_removes_the_address_from_the_bodies_kept_for_replays(
    stack: Stack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, finished_by: str
) -> None:
    if finished_by == "ErasureFunction":
        monkeypatch.setattr(erasure, "WORK_PER_CALL", 1)  # the request does one item; the queue the rest
    hook = register(stack, receiver.url, ["subscriber.confirmed"])
    (reader,) = add_subscribers(1)
    stack.drain()
    (sent,) = receiver.requests
    assert sent.json()["data"]["email"] == reader

    erased = admin(stack, "editor-erase-subscriber", path={"email": reader})
    assert erased.status == (204 if finished_by == "the request" else 202)
    stack.drain()
    admin(stack, "editor-replay-webhook-delivery", path={"webhook_id": hook["id"], "event_id": sent.json()["id"]})
    stack.drain()

    replayed = receiver.requests[-1]
    assert replayed.json()["id"] == sent.json()["id"]
    assert replayed.json()["data"]["email"] is None
    assert reader.encode() not in replayed.body
    assert signed_correctly(hook["secret"], replayed)
    assert not [item for item in stack.items("WebhooksTable") if reader in json.dumps(item)]


def test_a_subscriber_event_in_flight_when_its_person_is_erased_is_dropped(stack: Stack, receiver: Receiver) -> None:
    # Given an endpoint for subscriber.confirmed, and a reader whose confirmation event is on its way to it
    hook = register(stack, receiver.url, ["subscriber.confirmed"])
    (reader,) = add_subscribers(1)
    stack.drain(skip=("WebhooksFunction",))  # on the bus and queued for dispatch, not offered yet

    # When the reader is erased before the event is dispatched
    assert admin(stack, "editor-erase-subscriber", path={"email": reader}).status == 204
    stack.drain()

    # Then the event is neither stored nor sent
    assert receiver.requests == []
    assert deliveries(stack, hook["id"]) == []
    assert not [item for item in stack.items("WebhooksTable") if reader in json.dumps(item)]

    # And once the address signs up again, its new confirmation is delivered as any other
    add_subscribers(1)
    stack.drain()
    (request,) = receiver.requests
    assert request.json()["data"]["email"] == reader
