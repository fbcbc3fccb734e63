"""The mailing list through the handlers: double opt-in, one-click unsubscribe, suppression, editor views."""

from __future__ import annotations

import base64
import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from freezegun import freeze_time

from tests.integration.conftest import API_URL, Reply, Stack
from tests.support import times
from tests.support.events import sample_event, ses_event
from tests.support.mail import mail_to, outbox

ADDRESS = "reader@example.org"


def subscribe(stack: Stack, email: str = ADDRESS, **fields: Any) -> Reply:
    return stack.call("PublicFunction", sample_event("public-subscribe", body={"email": email, **fields}))


def open_link(stack: Stack, sample: str, token: str, **request: Any) -> Reply:
    return stack.call("PublicFunction", sample_event(sample, query={"token": token}, **request))


def subscriber(stack: Stack, email: str = ADDRESS) -> dict[str, Any]:
    """The stored record, attribute values unwrapped (an empty dict when there is none)."""
    items = [i for i in stack.items("SubscribersTable") if i["email"]["S"] == email]
    return {key: next(iter(value.values())) for key, value in items[0].items()} if items else {}


def press_confirm(stack: Stack, token: str) -> Reply:
    """What the confirmation page's button does: POST the token back."""
    return open_link(stack, "public-confirm-submit", token)


def confirmed(stack: Stack, email: str = ADDRESS, **fields: Any) -> str:
    """Subscribe and confirm `email`; returns the confirmation email's token."""
    assert subscribe(stack, email, **fields).status == 202
    token = mail_to(email)[-1].token("/subscribers/confirm")
    assert press_confirm(stack, token).status == 200
    return token


def unsubscribe_token(stack: Stack, email: str) -> str:
    from newsdesk.dependencies import container
    from newsdesk.services.links import LinkPurpose

    return container().link_signer().token(LinkPurpose.UNSUBSCRIBE, email)


# ---------------------------------------------------------------------- subscribe and confirm


def test_subscribing_sends_one_confirmation_and_confirming_adds_the_reader(stack: Stack) -> None:
    reply = subscribe(stack, "  Reader@EXAMPLE.org ", name="Rea Der")

    assert reply.status == 202
    assert subscriber(stack)["status"] == "pending"
    [mail] = mail_to(ADDRESS)
    assert mail.subject == "Confirm your subscription to Newsdesk"
    assert mail.message["Message-ID"]
    assert mail.link("/subscribers/confirm").startswith(f"{API_URL}/subscribers/confirm?token=")

    page = press_confirm(stack, mail.token("/subscribers/confirm"))

    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "You are subscribed" in page.body
    assert subscriber(stack)["status"] == "confirmed"
    assert press_confirm(stack, mail.token("/subscribers/confirm")).status == 200  # harmless twice
    assert "You are subscribed" in open_link(stack, "public-confirm", mail.token("/subscribers/confirm")).body


def test_following_the_confirmation_link_changes_nothing_until_the_button_is_pressed(stack: Stack) -> None:
    # Mail security scanners open every link in an email; only a person presses the button.
    subscribe(stack, name="Rea Der")
    token = mail_to(ADDRESS)[-1].token("/subscribers/confirm")

    page = open_link(stack, "public-confirm", token)
    again = open_link(stack, "public-confirm", token)

    assert (page.status, again.status) == (200, 200)
    assert subscriber(stack)["status"] == "pending"
    assert "Confirm your subscription" in page.body
    assert "Emails will be addressed to Rea Der." in page.body
    # A plain HTML form posts the token back: no JavaScript needed.
    assert f'<form method="post" action="?token={quote(token)}">' in page.body
    assert '<button type="submit">Confirm my subscription</button>' in page.body
    assert "<script" not in page.body
    assert "List-Unsubscribe" not in page.body

    done = press_confirm(stack, token)

    assert (done.status, "You are subscribed" in done.body) == (200, True)
    assert subscriber(stack)["status"] == "confirmed"


def test_the_confirm_button_also_works_with_the_token_as_a_form_field(stack: Stack) -> None:
    subscribe(stack)
    token = mail_to(ADDRESS)[-1].token("/subscribers/confirm")
    event = sample_event("public-confirm-submit", raw_body=urlencode({"token": token}))
    event["rawQueryString"], event["queryStringParameters"] = "", None

    reply = stack.call("PublicFunction", event)

    assert (reply.status, subscriber(stack)["status"]) == (200, "confirmed")


def test_the_answer_never_tells_whether_an_address_is_subscribed(stack: Stack) -> None:
    confirmed(stack, "confirmed@example.org")
    subscribe(stack, "pending@example.org")
    stack.call(
        "PublicFunction",
        sample_event("public-unsubscribe", query={"token": unsubscribe_token(stack, "confirmed@example.org")}),
    )
    replies = {
        email: subscribe(stack, email)
        for email in ("new@example.org", "pending@example.org", "confirmed@example.org", "gone@example.org")
    }

    assert {(r.status, r.body) for r in replies.values()} == {(202, replies["new@example.org"].body)}


def test_confirmations_are_rate_limited_and_confirmed_addresses_get_none(stack: Stack) -> None:
    start = times.now()
    with freeze_time(start) as clock:
        subscribe(stack)
        subscribe(stack)
        clock.tick(timedelta(minutes=9))
        subscribe(stack)
        assert len(mail_to(ADDRESS)) == 1
        clock.tick(timedelta(minutes=2))
        subscribe(stack)
        assert len(mail_to(ADDRESS)) == 2
        press_confirm(stack, mail_to(ADDRESS)[-1].token("/subscribers/confirm"))
        clock.tick(timedelta(hours=1))
        subscribe(stack)
        assert len(mail_to(ADDRESS)) == 2


def test_fifty_concurrent_signups_make_one_subscriber_and_at_most_one_email(stack: Stack) -> None:
    events = [sample_event("public-subscribe", body={"email": ADDRESS}) for _ in range(50)]

    with ThreadPoolExecutor(10) as pool:
        statuses = set(pool.map(lambda event: stack.invoke("PublicFunction", event)["statusCode"], events))

    assert statuses == {202}
    assert len([i for i in stack.items("SubscribersTable") if i["email"]["S"] == ADDRESS]) == 1
    assert len(mail_to(ADDRESS)) == 1


CONFIRM_SAMPLES = ("public-confirm", "public-confirm-submit")  # the page, and its button


@pytest.mark.parametrize("tamper", ["expired", "altered", "garbage", "missing", "other purpose"])
def test_a_bad_confirmation_link_is_a_400_page_offering_to_subscribe_again(stack: Stack, tamper: str) -> None:
    start = times.now()
    with freeze_time(start) as clock:
        subscribe(stack)
        token = mail_to(ADDRESS)[-1].token("/subscribers/confirm")
        query: dict[str, str] = {"token": token}
        if tamper == "expired":
            clock.tick(timedelta(days=8))
        elif tamper == "altered":
            query["token"] = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
        elif tamper == "garbage":
            query["token"] = "x" * 5000
        elif tamper == "missing":
            query = {}
        else:
            query["token"] = unsubscribe_token(stack, ADDRESS)

        pages = [stack.call("PublicFunction", sample_event(sample, query=query)) for sample in CONFIRM_SAMPLES]

    for page in pages:
        assert page.status == 400
        assert page.headers["content-type"].startswith("text/html")
        assert "Subscribe again" in page.body
    assert subscriber(stack)["status"] == "pending"


# ---------------------------------------------------------------------- unsubscribe


def test_one_click_unsubscribe_is_immediate_and_idempotent(stack: Stack) -> None:
    confirmed(stack)
    token = unsubscribe_token(stack, ADDRESS)

    page = open_link(stack, "public-unsubscribe-page", token)
    assert page.status == 200
    assert 'method="post"' in page.body
    assert subscriber(stack)["status"] == "confirmed"  # looking at the page changes nothing

    first = open_link(stack, "public-unsubscribe", token)
    second = open_link(stack, "public-unsubscribe", token)

    assert (first.status, second.status) == (200, 200)
    assert "location" not in first.headers
    assert "You are unsubscribed" in first.body
    assert subscriber(stack)["status"] == "unsubscribed"
    assert "audience" not in subscriber(stack)


def test_a_link_cannot_be_turned_against_another_address(stack: Stack) -> None:
    confirmed(stack, "victim@example.org")
    confirmed(stack)
    token = unsubscribe_token(stack, ADDRESS)
    _, signature = token.split(".", 1)
    forged = base64.urlsafe_b64encode(json.dumps("victim@example.org").encode()).decode().rstrip("=")
    forged_token = f"{forged}.{signature}"

    assert open_link(stack, "public-unsubscribe", forged_token).status == 400
    assert subscriber(stack, "victim@example.org")["status"] == "confirmed"


def test_a_confirm_after_an_unsubscribe_never_resurrects(stack: Stack) -> None:
    subscribe(stack)
    confirm_token = mail_to(ADDRESS)[-1].token("/subscribers/confirm")
    open_link(stack, "public-unsubscribe", unsubscribe_token(stack, ADDRESS))

    pages = [open_link(stack, sample, confirm_token) for sample in CONFIRM_SAMPLES]

    assert [page.status for page in pages] == [400, 400]
    assert subscriber(stack)["status"] == "unsubscribed"


def test_resubscribing_after_unsubscribing_keeps_the_opt_out_until_the_new_link_is_confirmed(stack: Stack) -> None:
    old_link = confirmed(stack)
    open_link(stack, "public-unsubscribe", unsubscribe_token(stack, ADDRESS))
    with freeze_time(datetime.now(UTC) + timedelta(minutes=11)):
        subscribe(stack)

    assert subscriber(stack)["status"] == "unsubscribed"
    assert len(mail_to(ADDRESS)) == 2
    assert press_confirm(stack, old_link).status == 400  # the "yes" from before leaving does not count
    assert subscriber(stack)["status"] == "unsubscribed"

    with freeze_time(datetime.now(UTC) + timedelta(minutes=12)):
        assert press_confirm(stack, mail_to(ADDRESS)[-1].token("/subscribers/confirm")).status == 200

    record = subscriber(stack)
    assert record["status"] == "confirmed"
    assert "unsubscribed_at" not in record
    assert "expires_at" not in record
    assert record["audience"]


def test_a_stranger_cannot_erase_an_opt_out_or_change_a_name(stack: Stack) -> None:
    # Given a reader who subscribed as Ada, then left
    confirmed(stack, name="Ada")
    open_link(stack, "public-unsubscribe", unsubscribe_token(stack, ADDRESS))
    before = subscriber(stack)
    start = datetime.now(UTC)

    # When someone else signs the address up again, under another name and frequency, more than once
    for minutes in (11, 30, 60):
        with freeze_time(start + timedelta(minutes=minutes)):
            assert subscribe(stack, name="Mallory", frequency="digest").status == 202

    # Then the record is as the reader left it: unsubscribed, named Ada, and never to expire
    after = subscriber(stack)
    assert {key: after[key] for key in ("status", "name", "frequency", "unsubscribed_at")} == {
        "status": "unsubscribed", "name": "Ada", "frequency": "instant", "unsubscribed_at": before["unsubscribed_at"],
    }  # fmt: skip
    assert "expires_at" not in after
    assert "audience" not in after
    # And the confirmation emails (within the limits) never carry the stranger's text
    assert all("Mallory" not in mail.raw for mail in mail_to(ADDRESS))


def test_a_stranger_cannot_rename_a_pending_subscriber(stack: Stack) -> None:
    subscribe(stack, name="Ada")
    with freeze_time(datetime.now(UTC) + timedelta(minutes=11)):
        subscribe(stack, name="Mallory")

    assert subscriber(stack)["name"] == "Ada"
    assert len(mail_to(ADDRESS)) == 2
    assert all("Mallory" not in mail.raw and "Ada" not in mail.raw for mail in mail_to(ADDRESS))


# ---------------------------------------------------------------------- suppression


def bounce(email: str, kind: str) -> dict[str, Any]:
    return {"eventType": "Bounce", "bounce": {"bounceType": kind, "bouncedRecipients": [{"emailAddress": email}]}}


def test_the_sample_bounce_event_suppresses_its_address(stack: Stack) -> None:
    confirmed(stack)

    stack.invoke("SesEventsFunction", sample_event("ses-bounce"))

    assert subscriber(stack)["status"] == "bounced"
    assert "audience" not in subscriber(stack)


def test_transient_bounces_do_not_suppress(stack: Stack) -> None:
    confirmed(stack)

    stack.invoke("SesEventsFunction", ses_event(bounce(ADDRESS, "Transient")))

    assert subscriber(stack)["status"] == "confirmed"


def test_a_complaint_suppresses_for_good(stack: Stack) -> None:
    confirmed(stack)
    complaint = {"eventType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": ADDRESS}]}}

    stack.invoke("SesEventsFunction", ses_event(complaint))
    stack.invoke("SesEventsFunction", ses_event(bounce(ADDRESS, "Permanent")))
    with freeze_time(datetime.now(UTC) + timedelta(hours=1)):
        assert subscribe(stack).status == 202

    assert subscriber(stack)["status"] == "complained"
    assert len(mail_to(ADDRESS)) == 1  # only the original confirmation


def test_feedback_about_unknown_addresses_creates_nothing(stack: Stack) -> None:
    stack.invoke("SesEventsFunction", ses_event(bounce("stranger@example.org", "Permanent")))

    assert stack.items("SubscribersTable") == []


@pytest.mark.parametrize(
    ("signed_up", "reported", "stored"),
    [
        (ADDRESS, "Reader@Example.ORG", ADDRESS),
        ("dora@bücher.example", "dora@xn--bcher-kva.example", "dora@xn--bcher-kva.example"),
        ("dora@bücher.example", "Dora@Bücher.example", "dora@xn--bcher-kva.example"),
    ],
)
def test_a_bounce_suppresses_the_subscriber_whichever_spelling_ses_reports(
    stack: Stack, signed_up: str, reported: str, stored: str
) -> None:
    assert subscribe(stack, signed_up).status == 202
    assert press_confirm(stack, mail_to(stored)[-1].token("/subscribers/confirm")).status == 200

    stack.invoke("SesEventsFunction", ses_event(bounce(reported, "Permanent")))

    assert subscriber(stack, stored)["status"] == "bounced"
    assert len(stack.items("SubscribersTable")) == 1


def test_an_address_ses_reports_as_stored_is_not_checked_again(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """SES reports the address it was asked to send to, the stored form: suppressing it needs no address rules
    (email_validator's import is tens of milliseconds of SesEventsFunction's cold start); another spelling is
    checked, and one that could never have been stored is ignored."""
    from newsdesk.dependencies import container
    from newsdesk.services import ses_feedback
    from newsdesk.services.ses_event import SesEvent

    confirmed(stack)
    checked: list[str] = []
    check = ses_feedback.normalize_address

    def normalize_address(value: str) -> str:
        checked.append(value)
        return check(value)

    monkeypatch.setattr(ses_feedback, "normalize_address", normalize_address)
    feedback = container().ses_feedback

    feedback.handle(SesEvent(bounce(ADDRESS, "Permanent")))
    assert checked == []
    feedback.handle(SesEvent(bounce("not an address", "Permanent")))
    feedback.handle(SesEvent(bounce("stranger@example.org", "Permanent")))
    assert checked == ["not an address", "stranger@example.org"]
    for odd in (" ", "@", f"{'a' * 300}@example.org"):
        feedback.handle(SesEvent(bounce(odd, "Permanent")))
    assert subscriber(stack)["status"] == "bounced"
    assert len(stack.items("SubscribersTable")) == 1


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-address"},
        {"email": "a@b"},
        {},
        {"email": ADDRESS, "name": "x" * 101},
        {"email": ADDRESS, "name": "Evil\r\nBcc: all@example.org"},
        {"email": ADDRESS, "frequency": "hourly"},
        {"email": ADDRESS, "admin": True},
    ],
)
def test_bad_signups_are_422_and_change_nothing(stack: Stack, body: dict[str, Any]) -> None:
    reply = (
        subscribe(stack, **body)
        if "email" in body
        else stack.call("PublicFunction", sample_event("public-subscribe", body=body))
    )

    assert reply.status == 422
    assert set(reply.json()["error"]) == {"code", "message", "details"}
    assert stack.items("SubscribersTable") == []
    assert outbox() == []


# ---------------------------------------------------------------------- editors


def editor(stack: Stack, sample: str, **request: Any) -> Reply:
    return stack.call("EditorFunction", sample_event(sample, **request))


def test_editors_list_count_export_and_erase(stack: Stack) -> None:
    for n in range(3):
        confirmed(stack, f"c{n}@example.org")
    subscribe(stack, "p@example.org", name='=HYPERLINK("x")')

    listing = editor(stack, "editor-list-subscribers", query={"status": "confirmed"}).json()
    stats = editor(stack, "editor-subscriber-stats").json()
    export = editor(stack, "editor-export-subscribers", query={})
    erased = editor(stack, "editor-erase-subscriber", path={"email": "c0@example.org"})
    again = editor(stack, "editor-erase-subscriber", path={"email": "c0@example.org"})

    assert sorted(s["email"] for s in listing["items"]) == ["c0@example.org", "c1@example.org", "c2@example.org"]
    assert stats == {"pending": 1, "confirmed": 3, "unsubscribed": 0, "bounced": 0, "complained": 0, "total": 4}
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.body)))
    assert sorted(row["email"] for row in rows) == [
        "c0@example.org",
        "c1@example.org",
        "c2@example.org",
        "p@example.org",
    ]
    assert next(row for row in rows if row["email"] == "p@example.org")["name"].startswith("'=")
    assert (erased.status, again.status) == (204, 204)  # erasing is idempotent: done is done
    assert subscriber(stack, "c0@example.org") == {}


def test_a_strangers_sign_up_of_a_pending_address_changes_nothing_until_its_own_link_is_confirmed(
    stack: Stack,
) -> None:
    # Given a reader who asked for every article as it comes, and has not confirmed yet
    subscribe(stack, frequency="instant")
    before = subscriber(stack)

    # When someone else signs the address up for a weekly digest
    with freeze_time(datetime.now(UTC) + timedelta(minutes=11)):
        assert subscribe(stack, frequency="digest").status == 202

    # Then nothing stored changed: frequency, topics and the consent asked for are the reader's own
    after = subscriber(stack)
    assert {key: after[key] for key in ("status", "frequency", "consent", "created_at", "updated_at")} == {
        key: before[key] for key in ("status", "frequency", "consent", "created_at", "updated_at")
    }
    # And confirming the link made for the reader's request keeps the reader's choice
    first_link, strangers_link = (mail.token("/subscribers/confirm") for mail in mail_to(ADDRESS))
    assert press_confirm(stack, first_link).status == 200
    assert (subscriber(stack)["status"], subscriber(stack)["frequency"]) == ("confirmed", "instant")
    with freeze_time(datetime.now(UTC) + timedelta(minutes=12)):
        assert press_confirm(stack, strangers_link).status == 200  # already confirmed: nothing more happens
    assert subscriber(stack)["frequency"] == "instant"


def test_the_stranger_s_link_confirmed_by_the_address_s_owner_stores_that_request(stack: Stack) -> None:
    # A link does what the request it was made for asked: the owner who follows it chooses that.
    subscribe(stack, frequency="instant")
    with freeze_time(datetime.now(UTC) + timedelta(minutes=11)):
        subscribe(stack, frequency="digest")

    with freeze_time(datetime.now(UTC) + timedelta(minutes=12)):
        assert press_confirm(stack, mail_to(ADDRESS)[-1].token("/subscribers/confirm")).status == 200

    assert (subscriber(stack)["status"], subscriber(stack)["frequency"]) == ("confirmed", "digest")
