"""Hostile input: a corpus of XSS payloads sent through the API and through uploads leaves nothing executable
in stored HTML, feed entries or emails, and no name, subject or address can add a header to an email.
"""

from __future__ import annotations

import email
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formatdate, getaddresses, parsedate_to_datetime
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
import yaml
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from local.apigateway.server import match_route
from local.lambda_runtime.events import HttpRequest, http_api_event
from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.messages import MessageTemplate, Recipient, format_address
from newsdesk.models.subscribers import Subscriber, SubscriberStatus
from newsdesk.services.emails import TEST_SUBJECT_PREFIX
from tests.integration.conftest import Reply, Stack
from tests.support.events import ADMIN_CONTEXT
from tests.support.html_safety import executable_content
from tests.support.mail import Mail, outbox
from tests.support.xss_payloads import PAYLOADS

ATOM = "{http://www.w3.org/2005/Atom}"
FEED_SIZE = 20
READER = "reader@example.org"
EVIL = "evil@example.org"
BENIGN = {"title": "Harbour reopens", "author": "Ada", "body": "Boats are **back**.", "summary": "Boats."}


def http(stack: Stack, method: str, path: str, body: Any = None) -> Reply:
    """A request as API Gateway hands it to the function the template routes it to (past the authorizer)."""
    found = match_route(stack.template.routes, method, path.split("?")[0])
    assert found is not None, f"no route for {method} {path}"
    route, parameters = found
    request = HttpRequest(
        method=method,
        path=path.split("?")[0],
        query=path.partition("?")[2],
        headers=[("content-type", "application/json")] if body is not None else [],
        body=json.dumps(body).encode() if body is not None else b"",
    )
    authorizer: dict[str, Any] | None = ADMIN_CONTEXT if route.authorizer else None
    return stack.call(
        route.function_id, http_api_event(request, route.route_key, parameters, authorizer_context=authorizer)
    )


def one_line(text: str, limit: int) -> str:
    """The payload as a single-line field (titles, names and summaries refuse line breaks) within `limit`."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat[:limit].strip() or "x"


def article_fields(number: int, payload: str) -> dict[str, str]:
    return {
        "title": one_line(f"{number} {payload}", 200),
        "author": one_line(payload, 100),
        "summary": one_line(payload, 500),
        "body": payload,
    }


def feed_problems(xml: bytes) -> list[str]:
    """What a feed reader could execute: markup in an html or xhtml construct, or a link that is not web."""
    problems = []
    root = ElementTree.fromstring(xml)
    for entry in root.iter(f"{ATOM}entry"):
        for element in entry.iter():
            kind = element.get("type", "text")
            if kind == "html":
                problems += executable_content(element.text or "")
            elif kind == "xhtml":
                problems += executable_content(ElementTree.tostring(element, encoding="unicode"))
            elif kind != "text" and element.tag != f"{ATOM}link":
                problems.append(f"{element.tag} of type {kind}")
            href = element.get("href")
            if href is not None and not href.startswith(("https://", "http://")):
                problems.append(f"link {href!r}")
    return problems


def parsed(raw: bytes | str) -> EmailMessage:
    message = (
        email.message_from_bytes(raw, policy=policy.default)
        if isinstance(raw, bytes)
        else email.message_from_string(raw, policy=policy.default)
    )
    assert isinstance(message, EmailMessage)
    return message


BASELINE_SUBJECT = f"{TEST_SUBJECT_PREFIX}Baseline"


def baseline_problems(stack: Stack) -> list[str]:
    """What the checker reports in a newsletter of a harmless article: the template's own markup (its inline
    styles, its <meta>). A payload's newsletter must report exactly that, nothing more."""
    article = http(stack, "POST", "/admin/articles", {**BENIGN, "title": "Baseline"}).json()
    assert http(stack, "POST", f"/admin/articles/{article['id']}/test-email", {"to": READER}).status == 202
    mail = next(mail for mail in outbox() if mail.subject == BASELINE_SUBJECT)
    return executable_content(mail.html)


def newsletter_problems(mails: list[Mail], baseline: list[str]) -> Iterator[str]:
    for mail in mails:
        if executable_content(mail.html) != baseline:
            yield f"email {mail.subject!r}: {executable_content(mail.html)}"
        if len(mail.message.get_all("Subject") or []) != 1 or "\n" in str(mail.message["Subject"]):
            yield f"email {mail.subject!r}: its Subject header was split"


# -------------------------------------------------------------------------------- XSS through the API


def test_the_corpus_is_large_and_varied() -> None:
    assert len(set(PAYLOADS)) >= 100
    for needle in ("<script", "onerror=", "javascript:", "data:", "<svg", "&#", "%3c"):
        assert any(needle in payload.lower() for payload in PAYLOADS), needle


def chunks() -> Iterator[list[tuple[int, str]]]:
    """The numbered payloads, a feed's worth at a time."""
    numbered = list(enumerate(PAYLOADS))
    for start in range(0, len(numbered), FEED_SIZE):
        yield numbered[start : start + FEED_SIZE]


def delete_all(stack: Stack, ids: list[str]) -> None:
    # moto copies a whole table for every transaction: keeping it small keeps the test fast.
    for article_id in ids:
        assert http(stack, "DELETE", f"/admin/articles/{article_id}").status == 204


def test_payloads_sent_through_the_api_leave_nothing_executable(stack: Stack) -> None:
    # Given a newsletter of a harmless article to compare with
    baseline = baseline_problems(stack)
    problems: list[str] = []
    for chunk in chunks():
        # When each payload is written into an article's title, author, summary and body, and published
        ids = []
        for number, payload in chunk:
            created = http(stack, "POST", "/admin/articles", article_fields(number, payload))
            assert created.status == 201, (payload, created.body)
            article = created.json()
            ids.append(article["id"])
            assert http(stack, "POST", f"/admin/articles/{article['id']}/publish").status == 200
            stored = http(stack, "GET", f"/admin/articles/{article['id']}").json()
            public = http(stack, "GET", f"/articles/{article['slug']}").json()
            assert http(stack, "POST", f"/admin/articles/{article['id']}/test-email", {"to": READER}).status == 202

            # Then the stored and the public HTML hold nothing a browser would run
            for where, html in (("stored", stored["html"]), ("public", public["html"])):
                problems += [f"{where} html of {payload!r}: {found}" for found in executable_content(html)]
        # And neither do the feed's entries
        problems += [f"feed: {found}" for found in feed_problems(http(stack, "GET", "/feed.xml").body.encode())]
        delete_all(stack, ids)

    # And neither do the emails
    mails = [mail for mail in outbox() if mail.subject != BASELINE_SUBJECT]
    assert len(mails) == len(PAYLOADS)
    problems += newsletter_problems(mails, baseline)
    assert not problems, "\n".join(problems)


def test_a_newsletter_of_every_payload_reaches_the_subscriber_with_nothing_executable(stack: Stack) -> None:
    # Given a confirmed subscriber, and a harmless newsletter to compare with
    _confirmed(Subscriber(email=READER, status=SubscriberStatus.PENDING, created_at=utc_now(), updated_at=utc_now()))
    harmless = http(stack, "POST", "/admin/articles", {**BENIGN, "title": "Baseline"}).json()
    assert http(stack, "POST", f"/admin/articles/{harmless['id']}/publish").status == 200
    stack.drain()
    baseline = executable_content(next(mail for mail in outbox() if mail.subject == "Baseline").html)
    title = one_line(f"Everything {PAYLOADS[0]}", 200)

    # When an article made of the whole corpus is published and its newsletter delivered
    article = http(stack, "POST", "/admin/articles", {**BENIGN, "title": title, "body": "\n\n".join(PAYLOADS)}).json()
    assert executable_content(article["html"]) == []
    assert http(stack, "POST", f"/admin/articles/{article['id']}/publish").status == 200
    stack.drain()

    # Then the subscriber's one email holds nothing executable beyond the template's own markup
    mails = [mail for mail in outbox() if mail.subject == title]
    assert [mail.message["To"].addresses[0].addr_spec for mail in mails] == [READER]
    assert list(newsletter_problems(mails, baseline)) == []


def test_hostile_subscriber_names_leave_nothing_executable_in_confirmation_emails(stack: Stack) -> None:
    # Given the confirmation email of a plain name to compare with
    assert http(stack, "POST", "/subscribers", {"email": "plain@example.org", "name": "Ada"}).status == 202
    baseline = executable_content(next(mail for mail in outbox() if "plain@" in mail.to).html)

    # When people sign up with each payload as their name
    for number, payload in enumerate(PAYLOADS):
        reply = http(stack, "POST", "/subscribers", {"email": f"n{number}@example.org", "name": one_line(payload, 100)})
        assert reply.status == 202, (payload, reply.body)

    # Then each confirmation email holds no more than the template's own markup
    mails = [mail for mail in outbox() if re.fullmatch(r".*n\d+@example\.org>?", mail.to)]
    assert len(mails) == len(PAYLOADS)
    assert [mail.to for mail in mails if executable_content(mail.html) != baseline] == []


# -------------------------------------------------------------------------------- XSS through uploads


def article_file(number: int, payload: str) -> bytes:
    fields = article_fields(number, payload)
    front = {key: fields[key] for key in ("title", "author", "summary")} | {"slug": f"upload-{number}"}
    return f"---\n{yaml.safe_dump(front, allow_unicode=True)}---\n{payload}\n".encode()


def upload(stack: Stack, key: str, data: bytes) -> None:
    boto3.client("s3").put_object(Bucket=stack.resolver.physical_name("UploadsBucket"), Key=key, Body=data)


def test_payloads_uploaded_as_markdown_leave_nothing_executable(stack: Stack) -> None:
    baseline = baseline_problems(stack)
    problems: list[str] = []
    for chunk in chunks():
        # Given Markdown files whose front matter and body carry the payloads
        for number, payload in chunk:
            upload(stack, f"articles/xss-{number}.md", article_file(number, payload))

        # When the bucket's events are delivered (the newsletters are checked below, one test email each)
        stack.drain(skip=("FanoutFunction", "MailerFunction"))

        # Then the published articles, their emails and the feed hold nothing executable
        ids = []
        for number, payload in chunk:
            public = http(stack, "GET", f"/articles/upload-{number}")
            assert public.status == 200, (payload, public.body)
            ids.append(public.json()["id"])
            problems += [f"upload html of {payload!r}: {found}" for found in executable_content(public.json()["html"])]
            sent = http(stack, "POST", f"/admin/articles/{public.json()['id']}/test-email", {"to": READER})
            assert sent.status == 202
        problems += [f"feed: {found}" for found in feed_problems(http(stack, "GET", "/feed.xml").body.encode())]
        delete_all(stack, ids)

    mails = [mail for mail in outbox() if mail.subject != BASELINE_SUBJECT]
    assert len(mails) == len(PAYLOADS)
    problems += newsletter_problems(mails, baseline)
    assert not problems, "\n".join(problems)


def test_front_matter_cannot_run_code(stack: Stack, tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    hostile = f'---\ntitle: !!python/object/apply:os.system ["touch {marker}"]\nslug: yaml-tag\n---\nBody\n'

    upload(stack, "articles/yaml-tag.md", hostile.encode())
    stack.drain(skip=("FanoutFunction", "MailerFunction"))

    assert not marker.exists()
    assert http(stack, "GET", "/articles/yaml-tag").status == 404


# -------------------------------------------------------------------------------- header injection

BREAKS = ("\r\nBcc: evil@example.org", "\nBcc: evil@example.org", "\rBcc: evil@example.org")


@pytest.mark.parametrize("line_break", BREAKS, ids=["CRLF", "LF", "CR"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/subscribers", {"email": READER, "name": "Eve{}"}),
        ("POST", "/subscribers", {"email": "eve@example.org{}"}),
        ("POST", "/admin/articles", {**BENIGN, "title": "Hello{}"}),
        ("POST", "/admin/articles", {**BENIGN, "author": "Eve{}"}),
        ("POST", "/admin/articles", {**BENIGN, "summary": "Short{}"}),
        ("POST", "/admin/articles/{article_id}/test-email", {"to": "eve@example.org{}"}),
    ],
    ids=["subscriber name", "subscriber address", "title", "author", "summary", "test email address"],
)
def test_line_breaks_in_names_subjects_and_addresses_are_refused(
    stack: Stack, method: str, path: str, body: dict[str, str], line_break: str
) -> None:
    article = http(stack, "POST", "/admin/articles", BENIGN).json()
    hostile = {key: value.replace("{}", line_break) for key, value in body.items()}

    reply = http(stack, method, path.replace("{article_id}", article["id"]), hostile)

    assert reply.status == 422, reply.body
    assert EVIL not in recipients_of_everything_sent()


def test_an_uploaded_title_with_a_line_break_is_not_published(stack: Stack) -> None:
    front = yaml.safe_dump({"title": "Hello\r\nBcc: evil@example.org", "slug": "header-break"})

    upload(stack, "articles/header-break.md", f"---\n{front}---\nBody\n".encode())
    stack.drain()

    assert http(stack, "GET", "/articles/header-break").status == 404


INJECTIONS = (
    "\r\nBcc: evil@example.org",
    "\nBcc: evil@example.org",
    "\rBcc: evil@example.org",
    "\r\n\r\n<html>a second body</html>",
    "\u2028Bcc: evil@example.org",
    "\x85Bcc: evil@example.org",
    "=?utf-8?q?x?=\r\nBcc: evil@example.org",
    "\r\n Bcc: evil@example.org",
    "\x00\r\nBcc: evil@example.org",
)


def assert_one_of_each_header(raw: bytes) -> EmailMessage:
    message = parsed(raw)
    for name in ("From", "To", "Subject", "Message-ID", "Date"):
        assert len(message.get_all(name) or []) == 1, (name, raw)
    assert message.get_all("Bcc") is None
    assert message.get_all("Cc") is None
    assert not any(line.lower().startswith(b"bcc:") for line in raw.splitlines()), raw
    assert message.is_multipart()
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    return message


@pytest.mark.parametrize("injection", INJECTIONS)
def test_stored_line_breaks_in_names_and_subjects_cannot_add_headers(injection: str) -> None:
    # Given values that slipped past validation (stored before it existed, or written by another tool)
    template = MessageTemplate(
        sender="news@example.com",
        sender_name=f"News{injection}",
        subject=f"Hello{injection}",
        html_body="<p>Hi</p>",
        text_body="Hi",
        list_unsubscribe=True,
    )
    recipient = Recipient(email=READER, name=f"Eve{injection}", unsubscribe_url=f"https://x.example/u{injection}")

    # When the email is built, and the name formatted into an address
    message = assert_one_of_each_header(template.render(recipient))
    address = format_address(READER, f"Eve{injection}")

    # Then each header holds one line: no Bcc, one To, theirs
    assert "\n" not in address
    assert "\r" not in address
    assert [item.addr_spec for item in message["To"].addresses] == [READER]
    assert "\n" not in str(message["Subject"])


@pytest.mark.parametrize("injection", INJECTIONS)
def test_a_stored_address_with_line_breaks_is_never_sent_to(injection: str) -> None:
    template = MessageTemplate(
        sender="news@example.com", sender_name="News", subject="Hello", html_body="<p>Hi</p>", text_body="Hi",
        list_unsubscribe=True,
    )  # fmt: skip

    with pytest.raises(ValueError, match="addr_spec"):
        template.render(Recipient(email=f"{READER}{injection}", name="Eve"))
    with pytest.raises(ValueError, match="addr_spec"):
        format_address(f"{READER}{injection}")


def recipients_of_everything_sent() -> list[str]:
    """Every address SES delivered to, from its own record (it reads To, Cc and Bcc of raw messages too)."""
    messages = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    return [address for message in messages for _, address in getaddresses(message.destinations)]


def _confirmed(subscriber: Subscriber) -> None:
    repository = dependencies.container().subscriber_repository
    assert repository.create_pending(subscriber)
    assert repository.confirm(subscriber, utc_now())


def test_a_subscriber_and_an_article_stored_with_line_breaks_get_a_clean_newsletter(stack: Stack) -> None:
    # Given a subscriber and an article title stored with line breaks (bypassing the API's validation)
    now = utc_now()
    name = "Eve\r\nBcc: evil@example.org"
    _confirmed(Subscriber(email=READER, name=name, status=SubscriberStatus.PENDING, created_at=now, updated_at=now))
    article = http(stack, "POST", "/admin/articles", BENIGN).json()
    repository = dependencies.container().article_repository
    current = repository.get(article["id"])
    assert current is not None
    title = "Harbour\r\nBcc: evil@example.org"
    repository.save(current, current.model_copy(update={"title": title, "version": current.version + 1}))

    # When it is published and the newsletter delivered
    assert http(stack, "POST", f"/admin/articles/{article['id']}/publish").status == 200
    stack.drain()

    # Then the subscriber gets one email with one To (theirs) and no Bcc, and nobody else gets anything
    mails = outbox()
    assert len(mails) == 1
    message = assert_one_of_each_header(mails[0].raw.encode())
    assert [address.addr_spec for address in message["To"].addresses] == [READER]
    assert str(message["Subject"]) == "Harbour  Bcc: evil@example.org"
    assert set(recipients_of_everything_sent()) == {READER}


# -------------------------------------------------------------------------------- per-recipient headers

# What a template once held in its Date header, replaced in each copy at its first occurrence.
EPOCH_DATE = format_datetime(datetime.fromtimestamp(0, UTC))
HEADERISH = (
    EPOCH_DATE,
    f"Date: {EPOCH_DATE}",
    formatdate(0, usegmt=True),
    "<1.2.3@example.com>",
    "reader@example.org",
    "--==boundary==",
)


def assert_fresh_date(message: EmailMessage) -> None:
    sent = parsedate_to_datetime(str(message["Date"]))
    assert abs((sent - utc_now()).total_seconds()) < 300, message["Date"]


@pytest.mark.parametrize("text", HEADERISH)
def test_a_subject_or_name_that_looks_like_a_header_value_takes_no_header_s_place(text: str) -> None:
    # Given a template whose subject and sender name, and a recipient whose name, hold header-like text
    template = MessageTemplate(
        sender="news@example.com", sender_name=f"News {text}", subject=f"Title {text}",
        html_body=f"<p>{text}</p>", text_body=text, list_unsubscribe=True,
    )  # fmt: skip
    links = {"unsubscribe_url": "https://x.example/u?token=one", "preferences_url": "https://x.example/p?token=one"}

    # When it is rendered for two readers
    first = assert_one_of_each_header(template.render(Recipient(email=READER, name=f"Eve {text}", **links)))
    second = assert_one_of_each_header(template.render(Recipient(email="other@example.org", name=text)))

    # Then every header holds what it should, whatever the text, and each copy has its own Message-ID
    for message in (first, second):
        assert_fresh_date(message)
        assert str(message["Subject"]) == f"Title {text}"
        assert message["From"].addresses[0].display_name == f"News {text}"
        assert message.get_body(("plain",)).get_content().strip() == text  # type: ignore[union-attr]
    assert [a.addr_spec for a in first["To"].addresses] == [READER]
    assert first["To"].addresses[0].display_name == f"Eve {text}"
    assert [a.addr_spec for a in second["To"].addresses] == ["other@example.org"]
    assert first["List-Unsubscribe"] == "<https://x.example/u?token=one>, <mailto:news@example.com?subject=unsubscribe>"
    assert first["Message-ID"] != second["Message-ID"]


def test_an_article_titled_with_a_date_gets_a_newsletter_with_todays_date(stack: Stack) -> None:
    # Given a subscriber, and an article whose title holds the date a template once put in its Date header
    now = utc_now()
    _confirmed(Subscriber(email=READER, name="Eve", status=SubscriberStatus.PENDING, created_at=now, updated_at=now))
    title = f"Markets on {EPOCH_DATE}"
    article = http(stack, "POST", "/admin/articles", {**BENIGN, "title": title}).json()

    # When it is published and delivered
    assert http(stack, "POST", f"/admin/articles/{article['id']}/publish").status == 200
    stack.drain()

    # Then the email is dated now and its subject is the title, untouched
    [mail] = outbox()
    message = assert_one_of_each_header(mail.raw.encode())
    assert_fresh_date(message)
    assert str(message["Subject"]) == title
