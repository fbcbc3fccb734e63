"""Topics (issue 14): the catalog, readers' choices, who each article and digest reaches, leaving one topic,
deleted topics, the preference center, and the consent record."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from freezegun import freeze_time

from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.dal.subscribers import shard_of
from newsdesk.models.delivery import FanoutTask, SendBatch
from newsdesk.models.subscribers import CONSENT_HISTORY, Consent, ConsentSource, Frequency, Subscriber, SubscriberStatus
from newsdesk.models.topics import MAX_TOPICS
from newsdesk.services import erasure
from newsdesk.services.links import LinkPurpose
from tests.integration.conftest import Reply, Stack
from tests.integration.test_newsletter import ARTICLE, add_subscribers, newsletters, progress
from tests.integration.test_schedules import run_job
from tests.integration.test_uploads import upload
from tests.support.events import sample_event, ses_event
from tests.support.mail import Mail, mail_to, outbox

TOPICS = {"council": "Council", "harbour": "Harbour", "schools": "Schools"}


def editor(stack: Stack, sample: str, **request: Any) -> Reply:
    return stack.call("EditorFunction", sample_event(sample, **request))


def public(stack: Stack, sample: str, **request: Any) -> Reply:
    return stack.call("PublicFunction", sample_event(sample, **request))


def create_topic(stack: Stack, slug: str, name: str, description: str | None = None) -> Reply:
    body = {"slug": slug, "name": name, **({"description": description} if description else {})}
    return editor(stack, "editor-create-topic", body=body)


def create_topics(stack: Stack) -> None:
    for slug, name in TOPICS.items():
        assert create_topic(stack, slug, name).status == 201


def readers_of(
    topics: list[str] | None, count: int, *, prefix: str, frequency: Frequency = Frequency.INSTANT
) -> list[str]:
    """Confirmed readers of `topics` (None: everything), through the product's own repository."""
    repository = dependencies.container().subscriber_repository
    now = utc_now()
    emails = [f"{prefix}{n}@example.org" for n in range(count)]
    for email in emails:
        pending = Subscriber(email=email, frequency=frequency, topics=topics, status=SubscriberStatus.PENDING,
                             created_at=now, updated_at=now)  # fmt: skip
        assert repository.create_pending(pending)
        assert repository.confirm(pending, now)
    return emails


def publish(stack: Stack, title: str, tags: list[str]) -> dict[str, Any]:
    article = editor(stack, "editor-create-article", body={**ARTICLE, "title": title, "tags": tags}).json()
    assert editor(stack, "editor-publish-article", path={"article_id": article["id"]}).status == 200
    return dict(article)


def recipients(subject: str) -> list[str]:
    return sorted(mail.to for mail in newsletters(subject))


def subscriber(email: str) -> Subscriber:
    found = dependencies.container().subscriber_repository.get(email)
    assert found is not None
    return found


def members(stack: Stack, email: str) -> list[str]:
    return sorted(i["audience"]["S"] for i in stack.items("TopicMembersTable") if i["email"]["S"] == email)


def one_click(stack: Stack, mail: Mail, **form: str) -> Reply:
    """What a mail client does with List-Unsubscribe-Post (or the page's buttons, with `form`)."""
    body = urlencode(form) if form else "List-Unsubscribe=One-Click"
    return public(stack, "public-unsubscribe", query={"token": mail.token("/unsubscribe")}, raw_body=body)


def page(stack: Stack, path: str, token: str, *, body: str | None = None) -> Reply:
    event = sample_event("public-unsubscribe" if body is not None else "public-unsubscribe-page",
                         query={"token": token}, raw_body=body)  # fmt: skip
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{'POST' if body is not None else 'GET'} {path}"
    return stack.call("PublicFunction", event)


# ---------------------------------------------------------------------- the catalog


def test_editors_manage_topics_and_readers_list_them(stack: Stack) -> None:
    created = create_topic(stack, "harbour", "Harbour", "Ships, ferries and the port.")
    create_topic(stack, "council", "Council")

    assert created.status == 201
    assert created.headers["location"] == "/admin/topics/harbour"
    assert created.json()["slug"] == "harbour"
    listed = public(stack, "public-list-topics")
    assert listed.status == 200
    assert listed.json() == {"items": [
        {"slug": "council", "name": "Council", "description": None},
        {"slug": "harbour", "name": "Harbour", "description": "Ships, ferries and the port."},
    ]}  # fmt: skip

    renamed = editor(stack, "editor-update-topic", path={"slug": "harbour"},
                     body={"name": "The port", "description": None})  # fmt: skip
    assert (renamed.status, renamed.json()["name"], renamed.json()["description"]) == (200, "The port", None)
    assert editor(stack, "editor-delete-topic", path={"slug": "council"}).status == 204
    assert [t["slug"] for t in editor(stack, "editor-list-topics").json()["items"]] == ["harbour"]


@pytest.mark.parametrize(
    ("sample", "request_parts", "status", "code"),
    [
        ("editor-create-topic", {"body": {"slug": "Harbour News", "name": "Harbour"}}, 422, "validation_error"),
        ("editor-create-topic", {"body": {"slug": "harbour", "name": "Harbour", "colour": "blue"}}, 422,
         "validation_error"),
        ("editor-create-topic", {"body": {"slug": "x" * 41, "name": "X"}}, 422, "validation_error"),
        ("editor-create-topic", {"body": {"slug": "harbour", "name": "Harbour"}}, 409, "topic_exists"),
        ("editor-update-topic", {"path": {"slug": "harbour"}, "body": {"name": None}}, 422, "validation_error"),
        ("editor-update-topic", {"path": {"slug": "ghosts"}, "body": {"name": "Ghosts"}}, 404, "not_found"),
        ("editor-delete-topic", {"path": {"slug": "ghosts"}}, 404, "not_found"),
    ],
)  # fmt: skip
def test_bad_topic_requests_are_clear_4xx_and_change_nothing(
    stack: Stack, sample: str, request_parts: dict[str, Any], status: int, code: str
) -> None:
    create_topic(stack, "harbour", "Harbour")
    before = stack.items("TopicsTable")

    reply = editor(stack, sample, **request_parts)

    assert reply.status == status, reply.body
    assert reply.json()["error"]["code"] == code
    assert set(reply.json()["error"]) == {"code", "message", "details"}
    assert stack.items("TopicsTable") == before


def test_a_publication_has_at_most_forty_topics(stack: Stack) -> None:
    for number in range(MAX_TOPICS):
        assert create_topic(stack, f"topic-{number}", f"Topic {number}").status == 201

    refused = create_topic(stack, "one-more", "One more")
    assert editor(stack, "editor-delete-topic", path={"slug": "topic-0"}).status == 204
    after_a_deletion = create_topic(stack, "one-more", "One more")

    assert (refused.status, refused.json()["error"]["code"]) == (409, "too_many_topics")
    assert after_a_deletion.status == 201
    assert len(public(stack, "public-list-topics").json()["items"]) == MAX_TOPICS


# ---------------------------------------------------------------------- choosing


def test_unknown_topics_are_a_422_that_says_nothing_about_the_address(stack: Stack) -> None:
    create_topics(stack)
    readers_of(None, 1, prefix="known")
    before = stack.items("SubscribersTable")

    replies = [
        public(stack, "public-subscribe", body={"email": email, "topics": ["harbour", "ghosts"]})
        for email in ("known0@example.org", "new@example.org")
    ]
    empty = public(stack, "public-subscribe", body={"email": "new@example.org", "topics": []})

    assert {reply.status for reply in replies} == {422}
    assert replies[0].body == replies[1].body
    assert replies[0].json()["error"]["code"] == "unknown_topics"
    assert replies[0].json()["error"]["details"][0]["unknown"] == ["ghosts"]
    assert (empty.status, empty.json()["error"]["code"]) == (422, "validation_error")
    assert stack.items("SubscribersTable") == before
    assert outbox() == []


def test_a_reader_signs_up_for_topics_and_the_record_keeps_their_consent(stack: Stack) -> None:
    create_topics(stack)

    reply = public(stack, "public-subscribe", body={"email": "Rea@Example.org", "topics": ["harbour", "council"],
                                                    "frequency": "digest"})  # fmt: skip
    [mail] = mail_to("rea@example.org")
    confirm_page = public(stack, "public-confirm", query={"token": mail.token("/subscribers/confirm")})
    pending = editor(stack, "editor-get-subscriber", path={"email": "rea@example.org"}).json()
    public(stack, "public-confirm-submit", query={"token": mail.token("/subscribers/confirm")})
    record = editor(stack, "editor-get-subscriber", path={"email": "rea@example.org"})

    assert reply.status == 202
    assert "You chose: Harbour and Council." in confirm_page.body
    assert pending["status"] == "pending"
    assert pending["consent"]["source"] == "api"
    assert pending["consent"]["confirmed_at"] is None
    assert record.status == 200
    body = record.json()
    assert (body["status"], body["frequency"], body["topics"]) == ("confirmed", "digest", ["harbour", "council"])
    consent = body["consent"]
    assert consent["source"] == "api"
    assert datetime.fromisoformat(consent["requested_at"]) <= datetime.fromisoformat(consent["confirmed_at"])
    assert (consent["policy"], consent["ip"], consent["object_key"]) == (None, None, None)
    assert "revision" not in body
    shard = shard_of("rea@example.org")
    assert members(stack, "rea@example.org") == [f"digest#council#{shard}", f"digest#harbour#{shard}"]
    assert editor(stack, "editor-get-subscriber", path={"email": "nobody@example.org"}).status == 404


def test_a_re_confirmation_adds_to_the_consent_history_and_keeps_what_was_agreed_before(stack: Stack) -> None:
    # Given a reader who confirmed harbour and council, then left
    create_topics(stack)
    public(stack, "public-subscribe", body={"email": "rea@example.org", "topics": ["harbour", "council"]})
    confirm_link = mail_to("rea@example.org")[-1].token("/subscribers/confirm")
    public(stack, "public-confirm-submit", query={"token": confirm_link})
    first = subscriber("rea@example.org").consent
    token = dependencies.container().link_signer().token(LinkPurpose.UNSUBSCRIBE, "rea@example.org")
    public(stack, "public-unsubscribe", query={"token": token}, raw_body="scope=everything")

    # When they sign up again for schools, from a web page, and confirm
    with freeze_time(utc_now() + timedelta(minutes=11)):
        public(stack, "public-subscribe", body={"email": "rea@example.org", "topics": ["schools"]},
               headers={"Origin": "https://example.com"})  # fmt: skip
        link = mail_to("rea@example.org")[-1].token("/subscribers/confirm")
        assert public(stack, "public-confirm-submit", query={"token": link}).status == 200

    # Then the consent in force is the new one, with its topics, and the first is kept, as it was
    record = editor(stack, "editor-get-subscriber", path={"email": "rea@example.org"}).json()
    assert (record["status"], record["topics"]) == ("confirmed", ["schools"])
    assert (record["consent"]["source"], record["consent"]["topics"]) == ("form", ["schools"])
    assert first is not None
    assert [Consent.model_validate(entry) for entry in record["consent_history"]] == [first]
    assert first.topics == ["harbour", "council"]


def test_the_consent_history_keeps_the_latest_entries() -> None:
    now = utc_now()
    consents = [Consent(source=ConsentSource.API, requested_at=now, confirmed_at=now + timedelta(seconds=n))
                for n in range(CONSENT_HISTORY + 3)]  # fmt: skip
    reader = Subscriber(email="rea@example.org", status=SubscriberStatus.CONFIRMED, created_at=now, updated_at=now)

    for consent in consents:
        reader = reader.model_copy(update=reader.agreeing(consent))

    assert reader.consent == consents[-1]
    assert reader.consent_history == consents[-1 - CONSENT_HISTORY : -1]


def test_a_sign_up_from_a_web_page_is_recorded_as_a_form(stack: Stack) -> None:
    reply = public(stack, "public-subscribe", body={"email": "web@example.org"},
                   headers={"Origin": "https://example.com"})  # fmt: skip

    assert reply.status == 202
    assert subscriber("web@example.org").consent.source.value == "form"  # type: ignore[union-attr]
    assert subscriber("web@example.org").topics is None  # no topics: everything, as before


def test_the_privacy_policy_and_the_source_address_are_kept_only_as_configured(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    public(stack, "public-subscribe", body={"email": "before@example.org"})
    monkeypatch.setenv("PRIVACY_POLICY_URL", "https://example.com/privacy")
    monkeypatch.setenv("RECORD_CONSENT_IP", "true")
    dependencies.reset()

    public(stack, "public-subscribe", body={"email": "after@example.org"})
    [mail] = mail_to("after@example.org")
    confirm_page = public(stack, "public-confirm", query={"token": mail.token("/subscribers/confirm")})
    public(stack, "public-confirm-submit", query={"token": mail.token("/subscribers/confirm")})

    assert "https://example.com/privacy" in mail.text
    assert 'href="https://example.com/privacy"' in mail.html
    assert 'href="https://example.com/privacy"' in confirm_page.body
    consent = subscriber("after@example.org").consent
    assert consent is not None
    assert (consent.policy, consent.ip) == ("https://example.com/privacy", "127.0.0.1")
    assert consent.confirmed_at is not None
    earlier = subscriber("before@example.org").consent
    assert earlier is not None
    assert (earlier.policy, earlier.ip) == (None, None)
    assert "privacy" not in mail_to("before@example.org")[0].text


def test_an_import_records_the_file_that_vouched(stack: Stack) -> None:
    upload(stack, "subscribers/confirmed/members.csv", b"email,name\nada@example.org,Ada\n")

    consent = editor(stack, "editor-get-subscriber", path={"email": "ada@example.org"}).json()["consent"]

    assert consent["source"] == "import"
    assert consent["object_key"] == "subscribers/confirmed/members.csv"
    assert consent["confirmed_at"] is not None


def test_the_export_carries_topics_and_consent_and_erasure_removes_them(stack: Stack) -> None:
    create_topics(stack)
    readers_of(["harbour", "schools"], 1, prefix="topical")
    readers_of(None, 1, prefix="all")
    public(stack, "public-subscribe", body={"email": "signed@example.org"})

    exported = editor(stack, "editor-export-subscribers")
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(exported.body))}
    editor(stack, "editor-erase-subscriber", path={"email": "topical0@example.org"})

    assert rows["topical0@example.org"]["topics"] == "harbour schools"
    assert rows["all0@example.org"]["topics"] == "*"
    assert rows["signed@example.org"]["consent_source"] == "api"
    assert rows["signed@example.org"]["consent_requested_at"]
    assert rows["signed@example.org"]["consent_confirmed_at"] == ""
    assert dependencies.container().subscriber_repository.get("topical0@example.org") is None
    assert members(stack, "topical0@example.org") == []


# ---------------------------------------------------------------------- sending


def test_an_article_reaches_the_readers_of_its_topics_and_of_everything_once_each(stack: Stack) -> None:
    create_topics(stack)
    everything = readers_of(None, 3, prefix="all")
    harbour = readers_of(["harbour"], 3, prefix="harbour")
    council = readers_of(["council"], 2, prefix="council")
    both = readers_of(["council", "harbour"], 3, prefix="both")
    both_and_more = readers_of(["schools", "harbour", "council"], 2, prefix="three")
    readers_of(["schools"], 2, prefix="schools")
    readers_of(["harbour"], 2, prefix="weekly", frequency=Frequency.DIGEST)

    tagged = publish(stack, "Harbour and council agree", ["harbour", "council", "ferries"])
    untagged = publish(stack, "Weather", [])
    only_tags = publish(stack, "Ferries late", ["ferries"])
    stack.drain()

    union = everything + harbour + council + both + both_and_more
    assert recipients("Harbour and council agree") == sorted(union)
    assert recipients("Weather") == sorted(everything)
    assert recipients("Ferries late") == sorted(everything)
    report = progress(stack, tagged["id"])
    assert (report["state"], report["total"], report["sent"]) == ("done", len(union), len(union))
    assert report["topics"] == ["council", "harbour"]
    assert progress(stack, untagged["id"])["total"] == len(everything)
    assert progress(stack, only_tags["id"])["topics"] == []
    by_reader = {mail.to: mail for mail in newsletters("Harbour and council agree")}
    assert "because you follow Harbour on Newsdesk" in by_reader["harbour0@example.org"].text
    assert "Unsubscribe from Council and Harbour:" in by_reader["both0@example.org"].text
    assert "because you subscribed to Newsdesk" in by_reader["all0@example.org"].text


def test_one_click_from_an_email_sent_for_a_topic_leaves_only_that_topic(stack: Stack) -> None:
    create_topics(stack)
    [reader] = readers_of(["harbour", "council"], 1, prefix="rea")
    [single] = readers_of(["harbour"], 1, prefix="solo")
    publish(stack, "Ferry strike", ["harbour"])
    stack.drain()
    mails = {mail.to: mail for mail in newsletters("Ferry strike")}
    assert mails[reader].message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    page_before = page(stack, "/unsubscribe", mails[reader].token("/unsubscribe"))
    left = one_click(stack, mails[reader])
    again = one_click(stack, mails[reader])
    left_single = one_click(stack, mails[single])
    publish(stack, "Council budget", ["council"])
    publish(stack, "Ferry strike ends", ["harbour"])
    stack.drain()

    assert "Stop emails about Harbour" in page_before.body
    assert "Unsubscribe from everything" in page_before.body
    assert subscriber(reader).topics == ["council"]
    assert subscriber(reader).status is SubscriberStatus.CONFIRMED
    assert left.status == 200
    assert "You are unsubscribed from Harbour" in left.body
    assert "You still receive emails about Council." in left.body
    assert (again.status, "already left" in again.body) == (200, True)
    assert subscriber(single).topics == []  # a reader left with no topics gets nothing
    assert "You follow no topic now" in left_single.body
    assert recipients("Council budget") == [reader]
    assert recipients("Ferry strike ends") == []
    assert members(stack, single) == []

    everything = one_click(stack, mails[reader], scope="everything")
    assert "You are unsubscribed" in everything.body
    assert subscriber(reader).status is SubscriberStatus.UNSUBSCRIBED
    assert members(stack, reader) == []
    gone = page(stack, "/unsubscribe", mails[reader].token("/unsubscribe"))
    assert "You are unsubscribed" in gone.body
    assert "<form" not in gone.body  # said, not asked again


def test_a_subscriber_of_everything_leaves_the_list_in_one_click(stack: Stack) -> None:
    create_topics(stack)
    [reader] = readers_of(None, 1, prefix="all")
    publish(stack, "Ferry strike", ["harbour"])
    stack.drain()
    [mail] = newsletters("Ferry strike")

    reply = one_click(stack, mail)

    assert "You are unsubscribed" in reply.body
    assert subscriber(reader).status is SubscriberStatus.UNSUBSCRIBED


def test_deleted_topics_stop_their_mail_and_their_readers_keep_the_rest(stack: Stack) -> None:
    create_topics(stack)
    everything = readers_of(None, 2, prefix="all")
    [harbour] = readers_of(["harbour"], 1, prefix="harbour")
    [both] = readers_of(["harbour", "council"], 1, prefix="both")

    assert editor(stack, "editor-delete-topic", path={"slug": "harbour"}).status == 204
    publish(stack, "Port news", ["harbour"])
    publish(stack, "Port and council", ["harbour", "council"])
    stack.drain()
    token = dependencies.container().link_signer().token(LinkPurpose.PREFERENCES, both)
    preferences = page(stack, "/subscribers/preferences", token)

    assert recipients("Port news") == sorted(everything)
    assert recipients("Port and council") == sorted([*everything, both])
    assert subscriber(both).topics == ["council"]
    assert subscriber(harbour).topics == []  # a reader of no topic gets nothing, and is still subscribed
    assert subscriber(harbour).status is SubscriberStatus.CONFIRMED
    assert 'value="harbour"' not in preferences.body
    assert 'value="council" checked' in preferences.body


def test_a_topic_created_again_starts_without_the_readers_of_the_deleted_one(stack: Stack) -> None:
    # Given readers of harbour, one of them of council too
    create_topics(stack)
    [harbour] = readers_of(["harbour"], 1, prefix="harbour")
    [both] = readers_of(["harbour", "council"], 1, prefix="both")

    # When harbour is deleted, then made again with the same slug, and an article of it is published
    assert editor(stack, "editor-delete-topic", path={"slug": "harbour"}).status == 204
    assert create_topic(stack, "harbour", "Harbour").status == 201
    publish(stack, "New port", ["harbour"])
    stack.drain()

    # Then nobody who followed the old topic is mailed for the new one, and no record lists the old one
    assert recipients("New port") == []
    assert (subscriber(harbour).topics, subscriber(both).topics) == ([], ["council"])
    shard = shard_of(both)
    assert (members(stack, harbour), members(stack, both)) == ([], [f"instant#council#{shard}"])
    reply = editor(stack, "editor-get-subscriber", path={"email": both})
    assert reply.json()["topics"] == ["council"]


def test_a_topic_with_many_readers_is_emptied_a_page_at_a_time(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given five readers of harbour, and deletions that remove two readers per call
    create_topics(stack)
    readers = readers_of(["harbour", "schools"], 5, prefix="harbour")
    monkeypatch.setattr(erasure, "WORK_PER_CALL", 2)

    # When harbour is deleted
    deleted = editor(stack, "editor-delete-topic", path={"slug": "harbour"})
    too_soon = create_topic(stack, "harbour", "Harbour")

    # Then it is gone at once, and its slug is taken until the rest of its readers are removed, by the queue
    assert deleted.status == 204
    assert [topic["slug"] for topic in public(stack, "public-list-topics").json()["items"]] == ["council", "schools"]
    assert (too_soon.status, too_soon.json()["error"]["code"]) == (409, "topic_being_deleted")
    stack.drain()
    assert create_topic(stack, "harbour", "Harbour").status == 201
    assert {tuple(subscriber(reader).topics or []) for reader in readers} == {("schools",)}
    assert {audience.split("#")[1] for reader in readers for audience in members(stack, reader)} == {"schools"}


def test_a_topic_deleted_while_its_newsletter_is_being_sent_mails_nobody_more(stack: Stack) -> None:
    create_topics(stack)
    everything = readers_of(None, 1, prefix="all")
    readers_of(["harbour"], 2, prefix="harbour")
    article = publish(stack, "Port news", ["harbour"])
    stack.drain(skip=("MailerFunction",))  # queued for the harbour readers, not yet sent

    editor(stack, "editor-delete-topic", path={"slug": "harbour"})
    stack.drain()

    assert recipients("Port news") == everything
    report = progress(stack, article["id"])
    assert (report["state"], report["total"], report["sent"], report["suppressed"]) == ("done", 3, 1, 2)


def test_a_reader_who_moves_between_topics_during_fan_out_is_mailed_once_and_the_counts_add_up(
    stack: Stack,
) -> None:
    # Given a reader of council whom the council pass of an article's fan-out queues
    create_topics(stack)
    [mover] = readers_of(["council"], 1, prefix="mover")
    others = readers_of(["harbour"], 2, prefix="harbour")
    article = publish(stack, "Council and port", ["council", "harbour"])
    delivery_id = f"article-{article['id']}"
    fanout = dependencies.container().fanout_service
    fanout.start(delivery_id, Frequency.INSTANT)  # as the stream would; its tasks wait in the queue
    for shard in range(8):
        task = FanoutTask(delivery_id=delivery_id, topic="council", shard=shard)
        fanout.run(task, task_owner=f"test-{shard}", seconds_left=lambda: 60.0)

    # When they switch to harbour before the harbour pass reads its readers
    token = dependencies.container().link_signer().token(LinkPurpose.PREFERENCES, mover)
    page(stack, "/subscribers/preferences", token, body="frequency=instant&choosing=topics&topics=harbour")
    stack.drain()

    # Then both passes queued them, yet they got one email, and the delivery's counts add up and finish
    assert recipients("Council and port") == sorted([mover, *others])
    report = progress(stack, article["id"])
    assert (report["state"], report["total"], report["sent"]) == ("done", 3, 3)
    assert sum(report["counts"].values()) == report["total"]


def test_a_digest_lists_the_articles_of_each_readers_topics(stack: Stack) -> None:
    create_topics(stack)
    [everything] = readers_of(None, 1, prefix="all", frequency=Frequency.DIGEST)
    [harbour] = readers_of(["harbour"], 1, prefix="harbour", frequency=Frequency.DIGEST)
    [schools] = readers_of(["schools"], 1, prefix="schools", frequency=Frequency.DIGEST)
    publish(stack, "Ferry strike", ["harbour"])
    publish(stack, "Weather", [])
    stack.drain()

    assert run_job(stack, "digest")["articles"] == 2
    stack.drain()

    digests = {mail.to: mail for mail in outbox() if mail.subject.startswith("Newsdesk: ")}
    assert sorted(digests) == sorted([everything, harbour])  # none for the reader of schools
    assert "Ferry strike" in digests[harbour].text
    assert "Weather" not in digests[harbour].text
    assert "because you follow Harbour" in digests[harbour].text
    assert digests[harbour].subject == "Newsdesk: 1 new article"
    assert "Ferry strike" in digests[everything].text
    assert "Weather" in digests[everything].text
    assert schools not in digests


READERS = int(os.environ.get("TOPICS_PROOF_READERS", "2000"))
"""Readers in the proof at scale. 2,000 in `make test`: few enough for moto, whose queries sort the whole table
at every page, and enough for fan-out to turn pages in every shard of a topic. The issue's 10,000:
`TOPICS_PROOF_READERS=10000 pytest tests/integration/test_topics.py -k audience` (and bench/fanout.py
`--topics` for a topic of 10% of 10,000, through the mailer)."""
# Ten kinds of reader, READERS / 10 of each in the proof at scale: (topics, frequency); topics None is everything.
KINDS: list[tuple[list[str] | None, Frequency]] = [
    (None, Frequency.INSTANT),
    ([], Frequency.INSTANT),  # chose no topic
    (["harbour"], Frequency.INSTANT),
    (["council"], Frequency.INSTANT),
    (["schools"], Frequency.INSTANT),
    (["harbour", "council"], Frequency.INSTANT),
    (["council", "schools"], Frequency.INSTANT),
    (["schools", "harbour", "council"], Frequency.INSTANT),
    (["harbour"], Frequency.DIGEST),
    (None, Frequency.DIGEST),
]


def many_readers(stack: Stack, count: int) -> dict[int, list[str]]:
    """`count` confirmed readers, reader n of KINDS[n % 10]: the first of each kind signed up and confirmed
    through the product's repository, the others copies of its items (subscriber and memberships) with their
    own address and shard, written with BatchWriteItem. The addresses of each kind."""
    client = boto3.client("dynamodb")
    subscribers, members_table = stack.table("SubscribersTable"), stack.table("TopicMembersTable")
    stored = stack.items("TopicMembersTable")
    templates = {}
    for kind, (topics, frequency) in enumerate(KINDS):
        [email] = readers_of(topics, 1, prefix=f"kind{kind}-", frequency=frequency)
        item = client.get_item(TableName=subscribers, Key={"email": {"S": email}}, ConsistentRead=True)["Item"]
        memberships = [i for i in stack.items("TopicMembersTable") if i["email"]["S"] == email and i not in stored]
        templates[kind] = (email, [(subscribers, item)] + [(members_table, i) for i in memberships])
    emails: dict[int, list[str]] = {kind: [email] for kind, (email, _) in templates.items()}
    writes: list[tuple[str, dict[str, Any]]] = []
    for n in range(len(KINDS), count):
        kind = n % len(KINDS)
        first, items = templates[kind]
        email = f"kind{kind}-{n}@example.org"
        emails[kind].append(email)
        for table, template in items:
            copy = {key: {"S": value["S"].replace(first, email)} if "S" in value else value
                    for key, value in template.items()}  # fmt: skip
            if "audience" in copy:  # <frequency>#<shard> or <frequency>#<topic>#<shard>
                copy["audience"] = {"S": f"{copy['audience']['S'].rsplit('#', 1)[0]}#{shard_of(email)}"}
            writes.append((table, copy))

    def write(chunk: list[tuple[str, dict[str, Any]]]) -> None:
        requests: dict[str, Any] = {}
        for table, item in chunk:
            requests.setdefault(table, []).append({"PutRequest": {"Item": item}})
        while requests:
            requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, [writes[i : i + 25] for i in range(0, len(writes), 25)]))
    return emails


def queued_batches(stack: Stack) -> list[SendBatch]:
    """Every batch fan-out left on the send queue (no mailer ran), taken off it."""
    sqs, url = boto3.client("sqs"), stack.resolver.queue_url("SendQueue")
    batches = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        batches += [SendBatch.model_validate_json(message["Body"]) for message in messages]
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])  # fmt: skip
    return batches


class AudienceReads:
    """The queries fan-out makes of the audiences (the `by-audience` index and TopicMembersTable), and the
    items they examine (DynamoDB's ScannedCount), seen on the product's own DynamoDB client."""

    def __init__(self, stack: Stack) -> None:
        self.queries = self.examined = 0
        self._members = stack.table("TopicMembersTable")
        events = dependencies.container().dynamodb.meta.events
        events.register("provide-client-params.dynamodb.Query", self._request)
        events.register("after-call.dynamodb.Query", self._answer)

    def _request(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["audience"] = params.get("IndexName") == "by-audience" or params.get("TableName") == self._members

    def _answer(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("audience"):
            self.queries += 1
            self.examined += int(parsed.get("ScannedCount", 0))


def test_readers_over_topics_each_article_queued_once_for_exactly_its_audience(stack: Stack) -> None:
    # Given READERS confirmed readers of ten kinds: everything, no topic, one, two or three topics, digests
    create_topics(stack)
    kinds = many_readers(stack, READERS)
    reads = AudienceReads(stack)

    # When an article tagged with two topics, and one with no topic, are published and fanned out
    tagged = publish(stack, "Harbour and council agree", ["harbour", "council", "ferries"])
    stack.drain(skip=("MailerFunction",), timeout=READERS / 10)
    tagged_reads = (reads.queries, reads.examined)
    untagged = publish(stack, "Weather", [])
    stack.drain(skip=("MailerFunction",), timeout=READERS / 10)
    untagged_reads = (reads.queries - tagged_reads[0], reads.examined - tagged_reads[1])
    batches = queued_batches(stack)

    # Then each is queued for exactly its audience, each reader once
    queued = {
        article["id"]: Counter(r.email for b in batches if b.delivery_id == f"article-{article['id']}"
                               for r in b.recipients)
        for article in (tagged, untagged)
    }  # fmt: skip
    union = {email for kind in (0, 2, 3, 5, 6, 7) for email in kinds[kind]}
    assert len(union) == 6 * READERS // 10
    assert set(queued[tagged["id"]]) == union
    assert set(queued[tagged["id"]].values()) == {1}
    assert set(queued[untagged["id"]]) == set(kinds[0])
    assert set(queued[untagged["id"]].values()) == {1}
    assert progress(stack, tagged["id"])["total"] == len(union)
    # And fan-out examined only those audiences: the readers of everything, then each topic's readers (a reader
    # of both topics once per topic), in at most a page per 100 of them plus one per shard and pass.
    everything, harbour, council = READERS // 10, 3 * READERS // 10, 4 * READERS // 10
    assert tagged_reads[1] == everything + harbour + council
    assert tagged_reads[0] <= sum(n // 100 + 8 for n in (everything, harbour, council))
    assert untagged_reads[1] == everything
    assert untagged_reads[0] <= everything // 100 + 8


# ---------------------------------------------------------------------- the preference center


def test_the_preferences_page_offers_every_topic_and_saves_with_one_button(stack: Stack) -> None:
    create_topics(stack)
    [reader] = readers_of(None, 1, prefix="rea")
    token = dependencies.container().link_signer().token(LinkPurpose.PREFERENCES, reader)

    shown = page(stack, "/subscribers/preferences", token)
    saved = page(stack, "/subscribers/preferences", token,
                 body="frequency=digest&choosing=topics&topics=schools&topics=harbour")  # fmt: skip
    nothing = page(stack, "/subscribers/preferences", token, body="frequency=digest&choosing=topics")
    everything = page(stack, "/subscribers/preferences", token, body="frequency=instant&choosing=topics&everything=yes")
    no_frequency = page(stack, "/subscribers/preferences", token, body="choosing=topics")

    assert shown.status == 200
    assert "<script" not in shown.body
    assert shown.body.count('type="checkbox"') == 1 + len(TOPICS) + 1  # everything, each topic, breaking news
    assert 'name="everything" value="yes" checked' in shown.body
    assert shown.body.count("<button") == 1
    assert saved.status == 200
    assert "You receive one weekly digest, about Harbour and Schools." in saved.body
    assert "You follow no topic" in nothing.body
    assert "about everything we publish" in everything.body
    assert subscriber(reader).topics is None
    assert subscriber(reader).frequency is Frequency.INSTANT
    assert members(stack, reader) == []
    assert no_frequency.status == 400
    assert "Back to your email preferences" in no_frequency.body


def test_a_preferences_form_naming_a_topic_that_does_not_exist_is_refused_and_saves_nothing(stack: Stack) -> None:
    create_topics(stack)
    [reader] = readers_of(["harbour"], 1, prefix="rea")
    token = dependencies.container().link_signer().token(LinkPurpose.PREFERENCES, reader)

    reply = page(stack, "/subscribers/preferences", token,
                 body="frequency=digest&choosing=topics&topics=council&topics=ghosts")  # fmt: skip

    assert reply.status == 422
    assert "ghosts" in reply.body
    assert "Saved" not in reply.body
    assert reply.body.count('type="checkbox"') == 1 + len(TOPICS) + 1  # the form again, to choose among what exists
    assert (subscriber(reader).topics, subscriber(reader).frequency) == (["harbour"], Frequency.INSTANT)


def test_the_audiences_follow_every_change_of_choice(stack: Stack) -> None:
    create_topics(stack)
    [reader] = readers_of(["harbour"], 1, prefix="rea")
    token = dependencies.container().link_signer().token(LinkPurpose.PREFERENCES, reader)
    shard = shard_of(reader)

    page(stack, "/subscribers/preferences", token, body="frequency=digest&choosing=topics&topics=council")
    as_digest = members(stack, reader)
    page(stack, "/subscribers/preferences", token, body="frequency=instant&choosing=topics&everything=yes")
    item = next(i for i in stack.items("SubscribersTable") if i["email"]["S"] == reader)

    assert as_digest == [f"digest#council#{shard}"]
    assert members(stack, reader) == []
    assert item["audience"]["S"] == f"instant#{shard}"
    # What the membership item carries for fan-out: the reader's name and every topic they follow
    page(
        stack, "/subscribers/preferences", token, body="frequency=instant&choosing=topics&topics=council&topics=schools"
    )
    memberships = [i for i in stack.items("TopicMembersTable") if i["email"]["S"] == reader]
    assert {json.dumps(i["topics"]) for i in memberships} == {json.dumps({"L": [{"S": "council"}, {"S": "schools"}]})}
    assert "audience" not in next(i for i in stack.items("SubscribersTable") if i["email"]["S"] == reader)


def test_suppressing_a_reader_of_topics_removes_their_memberships(stack: Stack) -> None:
    create_topics(stack)
    [reader] = readers_of(["harbour", "council"], 1, prefix="rea")

    # SES reports a permanent bounce: SesEventsFunction suppresses the address, with its own role.
    bounce = {
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": reader}]},
    }
    stack.invoke("SesEventsFunction", ses_event(bounce))

    assert subscriber(reader).status is SubscriberStatus.BOUNCED
    assert members(stack, reader) == []
    assert boto3.client("dynamodb").scan(TableName=stack.table("TopicMembersTable"))["Count"] == 0


def test_existing_subscribers_without_topics_keep_everything(stack: Stack) -> None:
    create_topics(stack)
    readers = add_subscribers(2)

    publish(stack, "Harbour news", ["harbour"])
    stack.drain()

    assert recipients("Harbour news") == sorted(readers)
