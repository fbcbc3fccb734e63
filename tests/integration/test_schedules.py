"""Scheduled publishing, the weekly digest, preferences and housekeeping, with a controllable clock."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import boto3
from freezegun import freeze_time

from newsdesk import dependencies
from newsdesk.models.subscribers import Frequency, SubscriberStatus
from newsdesk.services.links import LinkPurpose
from tests.integration.conftest import Reply, Stack
from tests.integration.test_newsletter import ARTICLE, add_subscribers, editor, newsletters
from tests.support import times
from tests.support.events import sample_event
from tests.support.mail import outbox

# When the scheduled articles are due: the real now, so what runs unfrozen beside the test sees the same day.
T = times.now()


def run_job(stack: Stack, job: str = "publish-due", scheduled_time: datetime = T) -> Any:
    event = sample_event(f"schedule-{job}") | {"scheduled_time": times.zulu(scheduled_time)}
    return stack.invoke("SchedulerFunction", event)


def schedule(stack: Stack, article_id: str, publish_at: str) -> Reply:
    event = sample_event("editor-publish-article", path={"article_id": article_id}, body={"publish_at": publish_at})
    event["rawPath"] = f"/admin/articles/{article_id}/schedule"
    return stack.call("EditorFunction", event)


def scheduled_article(stack: Stack) -> dict[str, Any]:
    """An article scheduled (the day before) for T, given in a +01:00 time zone."""
    with freeze_time(T - timedelta(days=1)):
        article = editor(stack, "editor-create-article", body=ARTICLE).json()
        reply = schedule(stack, article["id"], times.at_offset(T, hours=1))
        assert reply.status == 200, reply.body
    return dict(reply.json())


def status(stack: Stack, article_id: str) -> str:
    return str(editor(stack, "editor-get-article", path={"article_id": article_id}).json()["status"])


def publications(stack: Stack) -> list[dict[str, Any]]:
    return [i for i in stack.items("PublicationsTable") if i["sk"]["S"] == "#publication"]


# ---------------------------------------------------------------------- scheduling


def test_a_scheduled_article_publishes_once_at_its_time(stack: Stack) -> None:
    readers = add_subscribers(3)
    article = scheduled_article(stack)
    assert article["status"] == "scheduled"
    assert article["publish_at"] == times.zulu(T)  # given at +01:00, stored and shown in UTC

    with freeze_time(T - timedelta(seconds=1), tick=True):
        run_job(stack)
        assert status(stack, article["id"]) == "scheduled"
    for moment in (T, T, T + timedelta(minutes=5)):
        with freeze_time(moment, tick=True):
            run_job(stack)
    stack.drain()

    assert status(stack, article["id"]) == "published"
    assert len(publications(stack)) == 1
    assert sorted(m.message["To"].addresses[0].addr_spec for m in newsletters(ARTICLE["title"])) == sorted(readers)


def test_a_late_scheduler_catches_up_after_an_outage(stack: Stack) -> None:
    article = scheduled_article(stack)

    with freeze_time(T + timedelta(hours=1), tick=True):
        published = run_job(stack)["published"]

    assert published == [article["id"]]
    assert status(stack, article["id"]) == "published"


def test_two_scheduler_runs_at_once_publish_once(stack: Stack) -> None:
    article = scheduled_article(stack)

    with freeze_time(T + timedelta(seconds=30), tick=True), ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_job(stack)["published"], range(2)))

    assert all(result in ([], [article["id"]]) for result in results)
    assert [article["id"]] in results
    assert status(stack, article["id"]) == "published"
    assert len(publications(stack)) == 1


def test_unscheduling_returns_the_article_to_draft_and_it_never_fires(stack: Stack) -> None:
    article = scheduled_article(stack)
    event = sample_event("editor-delete-article", path={"article_id": article["id"]})
    event["rawPath"] = f"/admin/articles/{article['id']}/schedule"

    reply = stack.call("EditorFunction", event)
    with freeze_time(T + timedelta(minutes=1), tick=True):
        run_job(stack)

    assert (reply.status, reply.json()["status"], reply.json()["publish_at"]) == (200, "draft", None)
    assert status(stack, article["id"]) == "draft"


def test_bad_schedules_are_refused(stack: Stack) -> None:
    article = editor(stack, "editor-create-article", body=ARTICLE).json()

    past = schedule(stack, article["id"], times.at_offset(times.now() - timedelta(minutes=1), hours=0))
    naive = schedule(stack, article["id"], times.naive(times.now() + timedelta(days=30)))
    garbage = schedule(stack, article["id"], "tomorrow morning")

    assert [past.status, naive.status, garbage.status] == [422, 422, 422]
    assert "offset" in json.dumps(naive.json())
    assert status(stack, article["id"]) == "draft"
    editor(stack, "editor-publish-article", path={"article_id": article["id"]})
    assert schedule(stack, article["id"], times.at_offset(times.now() + timedelta(days=30), hours=0)).status == 409


# ---------------------------------------------------------------------- digest


def publish_now(stack: Stack, title: str, tags: list[str] | None = None) -> None:
    article = editor(stack, "editor-create-article", body={**ARTICLE, "title": title, "tags": tags or []}).json()
    assert editor(stack, "editor-publish-article", path={"article_id": article["id"]}).status == 200


def test_digest_subscribers_get_one_digest_and_no_instant_email(stack: Stack) -> None:
    instant = add_subscribers(2, prefix="instant")
    weekly = add_subscribers(3, prefix="weekly", frequency=Frequency.DIGEST)
    publish_now(stack, "Budget passes")
    publish_now(stack, "Harbour reopens")
    stack.drain()

    assert run_job(stack, "digest")["articles"] == 2
    assert run_job(stack, "digest")["articles"] == 0  # the same scheduled run, delivered twice
    stack.drain()

    digests = [mail for mail in outbox() if mail.subject == "Newsdesk: 2 new articles"]
    assert sorted(m.message["To"].addresses[0].addr_spec for m in digests) == sorted(weekly)
    assert {m.message["To"].addresses[0].addr_spec for m in outbox() if m.subject == "Budget passes"} == set(instant)
    digest = digests[0]
    assert "Budget passes" in digest.text
    assert "Harbour reopens" in digest.text
    assert digest.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert digest.link("/subscribers/preferences")


def test_no_digest_when_nothing_was_published(stack: Stack) -> None:
    add_subscribers(2, frequency=Frequency.DIGEST)

    assert run_job(stack, "digest")["articles"] == 0
    stack.drain()

    assert outbox() == []


def test_the_preferences_link_switches_to_the_digest(stack: Stack) -> None:
    [reader] = add_subscribers(1)
    token = dependencies.container().link_signer().token(LinkPurpose.PREFERENCES, reader)
    page = stack.call("PublicFunction", sample_event("public-confirm", query={"token": token}) | {
        "rawPath": "/subscribers/preferences",
    })  # fmt: skip
    assert "Email preferences" in page.body
    assert 'value="instant" checked' in page.body

    save = sample_event("public-unsubscribe", query={"token": token}, raw_body="frequency=digest")
    save["rawPath"] = "/subscribers/preferences"
    saved = stack.call("PublicFunction", save)
    publish_now(stack, "Quiet week")
    stack.drain()

    assert (saved.status, "weekly digest" in saved.body) == (200, True)
    assert dependencies.container().subscriber_repository.get(reader).frequency is Frequency.DIGEST  # type: ignore[union-attr]
    assert newsletters("Quiet week") == []


# ---------------------------------------------------------------------- housekeeping


def test_unconfirmed_subscribers_expire_after_seven_days(stack: Stack) -> None:
    with freeze_time(T):
        stack.call("PublicFunction", sample_event("public-subscribe", body={"email": "late@example.org"}))
        stack.call("PublicFunction", sample_event("public-subscribe", body={"email": "keen@example.org"}))
        token = next(m for m in outbox() if "keen@" in m.to).token("/subscribers/confirm")
        stack.call("PublicFunction", sample_event("public-confirm-submit", query={"token": token}))

    items = {i["email"]["S"]: i for i in stack.items("SubscribersTable")}

    assert int(items["late@example.org"]["expires_at"]["N"]) == int((T + timedelta(days=7)).timestamp())
    assert "expires_at" not in items["keen@example.org"]
    keen = dependencies.container().subscriber_repository.get("keen@example.org")
    assert keen is not None
    assert keen.status is SubscriberStatus.CONFIRMED


def test_housekeeping_restarts_a_delivery_the_stream_never_started(stack: Stack) -> None:
    # The restart reads the topic catalog as fan-out's start does: followers of the article's topic get it,
    # followers of another topic only do not.
    for slug, name in (("harbour", "Harbour"), ("schools", "Schools")):
        assert editor(stack, "editor-create-topic", body={"slug": slug, "name": name}).status == 201
    readers = add_subscribers(4)
    harbour = add_subscribers(2, prefix="harbour", topics=["harbour"])
    add_subscribers(1, prefix="schools", topics=["schools"])
    with freeze_time(T):
        publish_now(stack, "Missed by the stream", tags=["harbour"])
    stack.sources.pollers()  # nothing was drained: the stream records are dropped below
    stack.drain(skip=("FanoutFunction", "MailerFunction"))

    with freeze_time(T + timedelta(minutes=20), tick=True):
        report = run_job(stack, "housekeeping")
    stack.drain()

    assert report["restarted"] == 1
    sent = {mail.message["To"].addresses[0].addr_spec for mail in newsletters("Missed by the stream")}
    assert sent == set(readers + harbour)


def test_housekeeping_redrives_dead_letters(stack: Stack) -> None:
    sqs = boto3.client("sqs")
    dead = stack.resolver.queue_url("SendDeadLetterQueue")
    readers = add_subscribers(2)
    with freeze_time(T):
        publish_now(stack, "Dead letters")
    stack.drain(skip=("MailerFunction",))
    live = stack.resolver.queue_url("SendQueue")
    for message in sqs.receive_message(QueueUrl=live, MaxNumberOfMessages=10)["Messages"]:
        sqs.send_message(QueueUrl=dead, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=live, ReceiptHandle=message["ReceiptHandle"])

    report = run_job(stack, "housekeeping")
    stack.drain()

    assert report["redriven"] >= 1
    assert len(newsletters("Dead letters")) == len(readers)
