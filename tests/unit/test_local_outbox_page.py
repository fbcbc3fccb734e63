"""local.outbox.routes: the outbox page escapes what senders and subscribers wrote and runs none of it."""

from __future__ import annotations

import base64
import hashlib
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

from local.outbox.emails import OutboxFilter
from local.outbox.routes import FIT_FRAME_SCRIPT, PAGE_HEADERS, links_in_new_tab, outbox_page

HOSTILE = '<script>alert("x")</script>'
EMAIL_HTML = (
    '<!doctype html><html><head><title>t</title></head><body><p>Hi "you" & co</p>'
    f'{HOSTILE}<a href="https://example.com/confirm?token=a&amp;b=1">Yes</a></body></html>'
)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


def sent(message_id: str, subject: str, to: str) -> dict[str, Any]:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"Text for {to}\n")
    message.add_alternative(EMAIL_HTML, subtype="html")
    return {"id": message_id, "to": to, "subject": subject, "sent_at": "2024-03-05T07:08:09+00:00", "raw": str(message)}


EMAILS = [sent("new&2", HOSTILE, '"<b>Bo</b>" <b@example.com>'), sent("old-1", "First", "a@example.com")]
"""A page of the outbox, newest first."""


def test_list_newest_first_with_hostile_subjects_as_text() -> None:
    status, page = outbox_page(EMAILS, None)

    parsed = parse(page)
    assert status == 200
    assert not [tag for tag, _ in parsed.elements if tag in ("b", "iframe")]
    assert [tag for tag, _ in parsed.elements if tag == "script"] == ["script"]  # the page's own, nothing else
    links = [attrs["href"] for tag, attrs in parsed.elements if tag == "a" and "id=" in (attrs["href"] or "")]
    assert links == ["?id=new%262", "?id=old-1"]
    text = "".join(parsed.text)
    assert HOSTILE in text
    assert "2024-03-05 07:08:09 UTC" in text


def test_selected_email_is_shown_in_an_empty_script_sandbox() -> None:
    status, page = outbox_page(EMAILS, "new&2")

    parsed = parse(page)
    assert status == 200
    assert not [tag for tag, _ in parsed.elements if tag in ("b", "base")]
    # One script: the page's own, which sizes the frame; the CSP allows it alone, by its hash.
    assert [tag for tag, _ in parsed.elements if tag == "script"] == ["script"]
    csp = dict(PAGE_HEADERS)["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(FIT_FRAME_SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in csp
    assert f"<script>{FIT_FRAME_SCRIPT}</script>" in page
    [frame] = [attrs for tag, attrs in parsed.elements if tag == "iframe"]
    # No allow-scripts (the email runs nothing), no forms; same-origin lets the page's script measure it.
    assert frame["sandbox"] == "allow-popups allow-popups-to-escape-sandbox allow-same-origin"
    # The frame gets the email's HTML unchanged but for links opening in a new tab.
    assert (frame["srcdoc"] or "").rstrip("\n") == EMAIL_HTML.replace("<head>", '<head><base target="_blank">')
    text = "".join(parsed.text)
    assert '"<b>Bo</b>" <b@example.com>' in text  # the To header, as text
    assert "Text for" in text


def test_unknown_email_is_404() -> None:
    status, page = outbox_page(EMAILS, "missing")

    assert status == 404
    assert "There is no sent email with this id." in page


def test_base_goes_after_the_doctype_when_there_is_no_head() -> None:
    assert links_in_new_tab("<!DOCTYPE html><p>x") == '<!DOCTYPE html><base target="_blank"><p>x'
    assert links_in_new_tab("<p>x") == '<base target="_blank"><p>x'


def test_empty_outbox() -> None:
    assert "No emails sent yet." in outbox_page([], None)[1]


def test_a_filtered_page_keeps_its_filter_in_every_link_and_offers_the_older_emails() -> None:
    # Given the second page of the emails to b@ whose subject holds "x<"
    matching = OutboxFilter(to="b@", subject="x<")
    status, page = outbox_page(EMAILS[:1], None, matching=matching, cursor="c1", next_cursor="new&2", total=916)

    parsed = parse(page)
    hrefs = [attrs["href"] for tag, attrs in parsed.elements if tag == "a"]
    # Then each email's link, the JSON and the paging keep the filter; the form shows it, escaped
    assert "?id=new%262&to=b%40&subject=x%3C&cursor=c1" in hrefs
    assert "emails?to=b%40&subject=x%3C&cursor=c1" in hrefs
    assert "?to=b%40&subject=x%3C&cursor=new%262" in hrefs  # Older
    assert "?to=b%40&subject=x%3C" in hrefs  # Newest
    inputs = {attrs["name"]: attrs["value"] for tag, attrs in parsed.elements if tag == "input"}
    assert inputs == {"to": "b@", "subject": "x<"}
    assert status == 200
    assert "916 emails sent by the local SES" in "".join(parsed.text)


def test_no_match_says_so() -> None:
    assert "No sent email matches." in outbox_page([], None, matching=OutboxFilter(to="nobody"))[1]
