"""Publishing sends the newsletter: one email per confirmed subscriber, whatever goes wrong on the way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from freezegun import freeze_time

from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.dal.subscribers import audience
from newsdesk.models.subscribers import Frequency, Subscriber, SubscriberStatus
from tests.integration.conftest import API_URL, Reply, Stack
from tests.support import times
from tests.support.events import sample_event, ses_event
from tests.support.mail import Mail, outbox

ARTICLE = {"title": "Harbour reopens", "author": "Ada", "body": "Boats are **back**.\n\nMore soon."}


def add_subscribers(
    count: int, *, prefix: str = "reader", frequency: Frequency = Frequency.INSTANT, topics: list[str] | None = None
) -> list[str]:
    """Confirmed subscribers (of `topics`; None: everything), written through the product's own repository."""
    repository = dependencies.container().subscriber_repository
    emails = [f"{prefix}{n}@example.org" for n in range(count)]
    now = utc_now()
    for email in emails:
        pending = Subscriber(
            email=email,
            frequency=frequency,
            topics=topics,
            status=SubscriberStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        assert repository.create_pending(pending)
        assert repository.confirm(pending, now)
    return emails


def editor(stack: Stack, sample: str, **request: Any) -> Reply:
    return stack.call("EditorFunction", sample_event(sample, **request))


def publish_new_article(stack: Stack, **fields: Any) -> dict[str, Any]:
    article = editor(stack, "editor-create-article", body={**ARTICLE, **fields}).json()
    assert editor(stack, "editor-publish-article", path={"article_id": article["id"]}).status == 200
    return dict(article)


def progress(stack: Stack, article_id: str) -> dict[str, Any]:
    reply = stack.call("EditorFunction", sample_event("editor-get-article", path={"article_id": article_id}) | {
        "rawPath": f"/admin/articles/{article_id}/delivery",
        "routeKey": "GET /admin/articles/{article_id}/delivery",
    })  # fmt: skip
    assert reply.status == 200, reply.body
    return dict(reply.json())


def newsletters(subject: str) -> list[Mail]:
    return [mail for mail in outbox() if mail.subject == subject]


# ---------------------------------------------------------------------- the email


def test_every_confirmed_instant_subscriber_gets_one_personal_email(stack: Stack) -> None:
    readers = add_subscribers(230)
    add_subscribers(3, prefix="weekly", frequency=Frequency.DIGEST)
    stack.call("PublicFunction", sample_event("public-subscribe", body={"email": "pending@example.org"}))

    article = publish_new_article(stack)
    stack.drain()

    mails = newsletters(ARTICLE["title"])
    assert sorted(mail.message["To"].addresses[0].addr_spec for mail in mails) == sorted(readers)
    mail = mails[0]
    reader = mail.message["To"].addresses[0].addr_spec
    unsubscribe = mail.link("/unsubscribe")
    assert (
        mail.message["List-Unsubscribe"] == f"<{unsubscribe}>, <mailto:newsroom@newsdesk.localhost?subject=unsubscribe>"
    )
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.message["From"] == "Newsdesk <newsroom@newsdesk.localhost>"
    assert "<strong>back</strong>" in mail.html
    assert f"https://example.com/articles/{article['slug']}" in mail.html
    assert f'href="{unsubscribe}"' in mail.html
    assert "Boats are back." in mail.text
    assert len({m.link("/unsubscribe") for m in mails}) == len(readers)  # personal links
    assert unsubscribe.startswith(f"{API_URL}/unsubscribe?token=")
    report = progress(stack, article["id"])
    assert (report["id"], report["kind"], report["article_id"]) == (
        f"article-{article['id']}",
        "newsletter",
        article["id"],
    )
    assert (report["state"], report["total"], report["sent"], report["failed"], report["suppressed"]) == (
        "done", 230, 230, 0, 0
    )  # fmt: skip
    # SES's own events settled every record: each email was sent, then delivered.
    assert report["counts"] == {"queued": 0, "pending": 0, "sent": 0, "delivered": 230, "bounced": 0,
                                "complained": 0, "failed": 0, "suppressed": 0}  # fmt: skip
    assert report["late_send_events"] == 0

    # The link in the email unsubscribes its reader, and only them.
    token = mail.token("/unsubscribe")
    assert stack.call("PublicFunction", sample_event("public-unsubscribe", query={"token": token})).status == 200
    statuses = {reader: subscriber.status for reader in readers
                if (subscriber := dependencies.container().subscriber_repository.get(reader)) is not None}  # fmt: skip
    assert statuses[reader] is SubscriberStatus.UNSUBSCRIBED
    assert statuses[readers[0] if readers[0] != reader else readers[1]] is SubscriberStatus.CONFIRMED


def test_the_text_part_keeps_each_link_s_address_and_the_paragraphs(stack: Stack) -> None:
    # Given a reader, and an article with links: one with its own text, one whose text is its address
    add_subscribers(1)
    body = (
        "The ferry runs again. See [timetable](https://example.org/timetable).\n\n"
        "Questions: <news@example.org> or <https://example.org/ferry>.\n\n"
        "- [Routes](https://example.org/routes)\n- Fares"
    )

    # When it is published
    publish_new_article(stack, title="Ferry timetable", body=body)
    stack.drain()

    # Then a reader of the text part sees where each link goes, once, and the article's paragraphs
    [mail] = newsletters("Ferry timetable")
    assert (
        "The ferry runs again. See timetable (https://example.org/timetable).\n\n"
        "Questions: news@example.org or https://example.org/ferry.\n\n"
        "- Routes (https://example.org/routes)\n- Fares"
    ) in mail.text


def test_a_subscriber_who_leaves_before_their_batch_is_sent_is_skipped(stack: Stack) -> None:
    readers = add_subscribers(40)
    article = publish_new_article(stack)
    stack.drain(skip=("MailerFunction",))  # the batches are queued, not yet sent
    stack.call(
        "PublicFunction",
        sample_event("public-unsubscribe", query={"token": _unsubscribe_token(readers[0])}),
    )
    bounce = {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": readers[1]}]}
    stack.invoke("SesEventsFunction", ses_event({"eventType": "Bounce", "bounce": bounce}))

    stack.drain()

    recipients = {mail.message["To"].addresses[0].addr_spec for mail in newsletters(ARTICLE["title"])}
    assert recipients == set(readers[2:])
    assert progress(stack, article["id"])["suppressed"] == 2
    assert progress(stack, article["id"])["sent"] == 38


def _unsubscribe_token(email: str) -> str:
    from newsdesk.services.links import LinkPurpose

    return dependencies.container().link_signer().token(LinkPurpose.UNSUBSCRIBE, email)


def test_republishing_and_editing_send_nothing_more(stack: Stack) -> None:
    add_subscribers(5)
    article = publish_new_article(stack)
    stack.drain()

    editor(stack, "editor-unpublish-article", path={"article_id": article["id"]})
    editor(stack, "editor-publish-article", path={"article_id": article["id"]})
    editor(
        stack,
        "editor-update-article",
        path={"article_id": article["id"]},
        headers={"If-Match": "*"},
        body={"title": "New"},
    )
    stack.drain()

    assert len(outbox()) == 5


def test_a_list_without_subscribers_is_done_at_once(stack: Stack) -> None:
    article = publish_new_article(stack)
    stack.drain()

    assert progress(stack, article["id"])["state"] == "done"
    assert progress(stack, article["id"])["total"] == 0


def test_drafts_have_no_delivery(stack: Stack) -> None:
    article = editor(stack, "editor-create-article", body=ARTICLE).json()

    reply = stack.call("EditorFunction", sample_event("editor-get-article", path={"article_id": article["id"]}) | {
        "rawPath": f"/admin/articles/{article['id']}/delivery",
    })  # fmt: skip

    assert reply.status == 404


def test_test_email_reaches_one_address_without_touching_deliveries(stack: Stack) -> None:
    add_subscribers(3)
    draft = editor(stack, "editor-create-article", body=ARTICLE).json()
    event = sample_event("editor-publish-article", path={"article_id": draft["id"]}, body={"to": "Editor@Example.org"})
    event["rawPath"] = f"/admin/articles/{draft['id']}/test-email"

    reply = stack.call("EditorFunction", event)

    assert reply.status == 202
    [mail] = outbox()
    assert mail.message["To"].addresses[0].addr_spec == "editor@example.org"
    assert mail.subject == f"[TEST] {ARTICLE['title']}"
    assert stack.items("DeliveriesTable") == []
    assert stack.items("PublicationsTable") == []


def send_test_email(stack: Stack, article_id: str, to: str, *, token: str = "nd_first-editor-token") -> Reply:
    event = sample_event("editor-publish-article", path={"article_id": article_id}, body={"to": to},
                         headers={"authorization": f"Bearer {token}"})  # fmt: skip
    event["rawPath"] = f"/admin/articles/{article_id}/test-email"
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /admin/articles/{article_id}/test-email"
    return stack.call("EditorFunction", event)


def test_a_test_email_to_an_address_that_bounced_complained_or_left_is_refused_and_sends_nothing(
    stack: Stack,
) -> None:
    # Given readers who bounced, complained and unsubscribed, and one still subscribed
    bounced, complained, left, reader = add_subscribers(4)
    repository = dependencies.container().subscriber_repository
    now = utc_now()
    assert repository.suppress(bounced, SubscriberStatus.BOUNCED, now)
    assert repository.suppress(complained, SubscriberStatus.COMPLAINED, now)
    assert repository.unsubscribe(left, now)
    draft = editor(stack, "editor-create-article", body=ARTICLE).json()

    # When an editor sends each a test email (in any spelling of the address)
    replies = {address: send_test_email(stack, draft["id"], address.upper()) for address in (bounced, complained, left)}

    # Then each is a 409 saying why, and nothing is sent; the subscribed reader still gets one
    for address, reply in replies.items():
        assert reply.status == 409, address
        assert reply.json()["error"]["code"] == "recipient_suppressed"
        assert address not in reply.body  # the message names the status, not the address
    assert outbox() == []
    assert send_test_email(stack, draft["id"], reader).status == 202
    assert [mail.to for mail in outbox()] == [reader]


def test_test_emails_are_limited_per_token_per_hour(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_EMAILS_PER_TOKEN_PER_HOUR", "3")
    dependencies.reset()
    draft = editor(stack, "editor-create-article", body=ARTICLE).json()
    [bounced] = add_subscribers(1, prefix="bounced")
    assert dependencies.container().subscriber_repository.suppress(bounced, SubscriberStatus.BOUNCED, utc_now())
    hour = times.now().replace(minute=0)
    with freeze_time(hour + timedelta(minutes=20)) as clock:
        assert send_test_email(stack, draft["id"], bounced).status == 409  # refused: counts nothing
        sent = [send_test_email(stack, draft["id"], f"editor{n}@example.org").status for n in range(3)]

        refused = send_test_email(stack, draft["id"], "editor9@example.org")

        assert sent == [202, 202, 202]
        assert refused.status == 429
        assert refused.json()["error"]["code"] == "too_many_test_emails"
        assert refused.headers["retry-after"] == str(40 * 60)  # the next hour
        assert len(outbox()) == 3
        # Another editor's token has its own allowance
        assert send_test_email(stack, draft["id"], "editor9@example.org", token="nd_second-editor-token").status == 202
        # The next hour the first token may send again
        clock.tick(timedelta(minutes=40))
        assert send_test_email(stack, draft["id"], "editor9@example.org").status == 202
    assert len(outbox()) == 5


def test_a_test_email_says_so_and_has_no_unsubscribe_link_for_its_reader(stack: Stack) -> None:
    # Given a draft, sent as a test to an address that subscribed to nothing
    draft = editor(stack, "editor-create-article", body=ARTICLE).json()
    event = sample_event("editor-publish-article", path={"article_id": draft["id"]}, body={"to": "editor@example.org"})
    event["rawPath"] = f"/admin/articles/{draft['id']}/test-email"

    assert stack.call("EditorFunction", event).status == 202

    # Then its body says it is a test, and no link or header offers to unsubscribe the reader
    [mail] = outbox()
    assert mail.text.startswith("TEST EMAIL: an editor sent this copy")
    assert "Test email." in mail.html
    for body in (mail.text, mail.html):
        assert "/unsubscribe" not in body
        assert "/subscribers/preferences" not in body
        assert "newsdesk.invalid" not in body
    assert mail.message["List-Unsubscribe"] is None
    assert ARTICLE["title"] in mail.html


def test_an_unaddressable_stored_address_fails_alone(stack: Stack) -> None:
    readers = add_subscribers(3)
    broken = "evil@example.org\r\nBcc: all@example.org"
    boto3.client("dynamodb").put_item(
        TableName=stack.table("SubscribersTable"),
        Item={
            "email": {"S": broken},
            "status": {"S": "confirmed"},
            "frequency": {"S": "instant"},
            "audience": {"S": audience(Frequency.INSTANT, broken)},
            "created_at": {"S": times.zulu(times.now())},
            "updated_at": {"S": times.zulu(times.now())},
        },
    )

    article = publish_new_article(stack)
    stack.drain()

    assert sorted(m.message["To"].addresses[0].addr_spec for m in newsletters(ARTICLE["title"])) == sorted(readers)
    assert all("all@example.org" not in m.raw for m in outbox())
    report = progress(stack, article["id"])
    assert (report["state"], report["total"], report["sent"], report["failed"]) == ("done", 4, 3, 1)
