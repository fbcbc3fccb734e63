"""The local outbox over HTTP: /_local/emails as JSON and /_local/ as a page that shows each sent email."""

from __future__ import annotations

import base64
import email
import hashlib
import re
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from local.apigateway.server import ApiServer, html_response, match_path
from local.lambda_runtime.events import HttpRequest, HttpResponse
from local.outbox.emails import (
    ANY_EMAIL,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    OutboxFilter,
    emails_page,
    sent_count,
    sent_email,
)

EMAIL_PATH = "/_local/emails/{id}"
# The page's own script, and the only one it runs: it sizes the email's frame to the email, so a long digest
# is shown whole. It can read the frame because the frame is same-origin (`allow-same-origin`); the email
# itself runs no script, as the sandbox has no `allow-scripts` (and the CSP, which srcdoc inherits, allows
# only this script's hash).
FIT_FRAME_SCRIPT = """
for (const frame of document.querySelectorAll("iframe[data-fit]")) {
  const fit = () => {
    const root = frame.contentDocument && frame.contentDocument.documentElement;
    if (root) frame.style.height = root.scrollHeight + 2 + "px";
  };
  frame.addEventListener("load", () => {
    fit();
    new ResizeObserver(fit).observe(frame.contentDocument.documentElement);
  });
  fit();
}
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(FIT_FRAME_SCRIPT.encode()).digest()).decode()
# Defence in depth behind the escaping and the sandbox: no script runs but the page's own.
PAGE_HEADERS = [
    (
        "content-security-policy",
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline';"
        " img-src data: http: https:",
    ),
    ("cache-control", "no-store"),
]
# Links in an email open in a new tab, outside the sandbox, as a mail program opens them in the browser.
_LINKS_IN_NEW_TAB = '<base target="_blank">'
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!doctype[^>]*>", re.IGNORECASE)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { padding: .6em 1em; background: #eee; border-bottom: 1px solid #ccc; }
h1 { font-size: 1.1em; margin: 0; display: inline; }
main { display: grid; grid-template-columns: minmax(18em, 1fr) 2fr; gap: 1em; padding: 1em; }
table { border-collapse: collapse; width: 100%; font-size: .9em; }
th, td { text-align: left; padding: .3em .4em; border-bottom: 1px solid #ddd; vertical-align: top; }
tr[aria-current] td { background: #dde8f7; }
td a { display: block; color: #1a4d8f; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; font-size: .85em; margin: 0 0 1em; }
dt { font-weight: 600; } dd { margin: 0; word-break: break-all; }
iframe { width: 100%; height: 28em; min-height: 10em; border: 1px solid #ccc; background: #fff; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f6f6; padding: .6em; font-size: .85em; }
h2 { font-size: 1em; margin: 1em 0 .4em; }
"""


def _parse(raw: str) -> EmailMessage:
    message = email.message_from_string(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    return message


def _part_text(message: EmailMessage, subtype: str) -> str | None:
    part: Message | None = message.get_body((subtype,))
    if part is None:
        return None
    return str(part.get_content())  # type: ignore[attr-defined]  # an EmailMessage under policy.default


def links_in_new_tab(document: str) -> str:
    # <base> must come after the doctype (else quirks mode) and ideally inside <head>.
    found = _HEAD.search(document) or _DOCTYPE.search(document)
    if found is None:
        return _LINKS_IN_NEW_TAB + document
    return document[: found.end()] + _LINKS_IN_NEW_TAB + document[found.end() :]


def _sent_time(sent_at: str | None) -> str:
    if not sent_at:
        return "-"
    return datetime.fromisoformat(sent_at).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _view_link(**query: str | None) -> str:
    """A link to the page with these query parameters (the empty ones left out)."""
    given = {key: value for key, value in query.items() if value}
    return f"?{urlencode(given, quote_via=quote)}" if given else "./"


def _email_list(emails: list[dict[str, Any]], selected: str | None, view: dict[str, str | None]) -> str:
    if not emails:
        if view.get("to") or view.get("subject"):
            return "<p>No sent email matches.</p>"
        return "<p>No emails sent yet. Subscribe an address and reload this page.</p>"
    rows = []
    for sent in emails:  # newest at the top, as a mail program lists them
        current = ' aria-current="true"' if sent["id"] == selected else ""
        link = _view_link(id=sent["id"], **view)
        rows.append(
            f'<tr{current}><td><a href="{escape(link)}">{escape(sent["subject"] or "(no subject)")}</a></td>'
            f'<td>{escape(sent["to"])}</td><td><time datetime="{escape(sent["sent_at"] or "")}">'
            f"{escape(_sent_time(sent['sent_at']))}</time></td></tr>"
        )
    return (
        "<table><thead><tr><th>Subject</th><th>To</th><th>Sent</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _filter_form(matching: OutboxFilter) -> str:
    # A plain GET form: the page runs no script of its own but the one that sizes the email's frame.
    return (
        '<form method="get" action="./" role="search">'
        f'<label>To <input name="to" value="{escape(matching.to)}"></label> '
        f'<label>Subject <input name="subject" value="{escape(matching.subject)}"></label> '
        "<button>Filter</button></form>"
    )


def _email_view(sent: dict[str, Any]) -> str:
    message = _parse(sent["raw"])
    headers = "".join(f"<dt>{escape(key)}</dt><dd>{escape(str(value))}</dd>" for key, value in message.items())
    html_part = _part_text(message, "html")
    text_part = _part_text(message, "plain")
    if html_part is None:
        rendered = "<p>This email has no HTML part.</p>"
    else:
        # A sandbox without scripts or forms; popups, so links open in a new tab; same-origin only so that the
        # page's own script can measure the email (a frame that runs no script cannot use its origin).
        rendered = (
            f'<iframe title="{escape(sent["subject"])}" data-fit '
            'sandbox="allow-popups allow-popups-to-escape-sandbox allow-same-origin" '
            f'srcdoc="{escape(links_in_new_tab(html_part))}"></iframe>'
        )
    text = f"<pre>{escape(text_part)}</pre>" if text_part is not None else "<p>This email has no text part.</p>"
    return (
        f'<section aria-label="Selected email"><h2>{escape(sent["subject"] or "(no subject)")}</h2>'
        f"<dl>{headers}</dl>"
        f"<h2>As HTML</h2>{rendered}<h2>As text</h2>{text}"
        f"<details><summary>Raw message</summary><pre>{escape(sent['raw'])}</pre></details></section>"
    )


def outbox_page(
    emails: list[dict[str, Any]],
    selected: str | None,
    *,
    shown: dict[str, Any] | None = None,
    matching: OutboxFilter = ANY_EMAIL,
    cursor: str | None = None,
    next_cursor: str | None = None,
    total: int | None = None,
) -> tuple[int, str]:
    """The outbox page (status, HTML): one page of emails (`emails`, newest first) and the selected one
    (`shown`, looked up wherever it is; by default among `emails`) as it was sent."""
    status = 200
    chosen = shown or next((sent for sent in emails if sent["id"] == selected), None)
    if chosen is not None:
        detail = _email_view(chosen)
    elif selected:
        status, detail = 404, "<p>There is no sent email with this id.</p>"
    else:
        detail = "<p>Select an email to read it.</p>" if emails else ""
    sent = len(emails) if total is None else total
    count = f"{sent} email{'' if sent == 1 else 's'}"
    view: dict[str, str | None] = {"to": matching.to, "subject": matching.subject, "cursor": cursor}
    paging = []
    if cursor:
        paging.append(f'<a href="{escape(_view_link(to=matching.to, subject=matching.subject))}">Newest</a>')
    if next_cursor:
        older = _view_link(to=matching.to, subject=matching.subject, cursor=next_cursor)
        paging.append(f'<a href="{escape(older)}">Older</a>')
    json_link = "emails" + _view_link(to=matching.to, subject=matching.subject, cursor=cursor).removeprefix("./")
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Local outbox</title><style>{STYLE}</style></head><body>"
        f'<header><h1>Local outbox</h1> &middot; {count} sent by the local SES &middot; <a href="./">reload</a>'
        f' &middot; <a href="{escape(json_link)}">JSON</a>{_filter_form(matching)}</header>'
        f'<main><nav aria-label="Sent emails">{_email_list(emails, selected, view)}'
        f"<p>{' &middot; '.join(paging)}</p></nav><div>{detail}</div></main>"
        f"<script>{FIT_FRAME_SCRIPT}</script></body></html>"
    )
    return status, page


def _listing(request: HttpRequest) -> tuple[OutboxFilter, int, str | None]:
    """The filter, page size and cursor a request asks for; ValueError says what is wrong with them."""
    query = parse_qs(request.query)

    def one(name: str) -> str:
        return query.get(name, [""])[0].strip()

    limit_text = one("limit") or str(DEFAULT_PAGE_SIZE)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be a number from 1 to {MAX_PAGE_SIZE}")
    return OutboxFilter(to=one("to"), subject=one("subject")), int(limit_text), one("cursor") or None


def add_outbox_routes(server: ApiServer, region: str) -> None:
    """Serve the local SES's sent emails: GET /_local/emails[/{id}] as JSON, GET /_local/ as a page."""

    def list_emails(request: HttpRequest) -> tuple[int, Any]:
        try:
            matching, limit, cursor = _listing(request)
            found = emails_page(region, matching=matching, limit=limit, cursor=cursor)
        except ValueError as error:  # InvalidCursor too
            return 400, {"message": str(error)}
        return 200, {"items": found.emails, "next_cursor": found.next_cursor}

    def one_email(request: HttpRequest) -> tuple[int, Any]:
        wanted = (match_path(EMAIL_PATH, request.decoded_path) or {}).get("id") or ""
        found = sent_email(region, wanted)
        return (200, found) if found is not None else (404, {"message": "Not Found"})

    def page(request: HttpRequest) -> HttpResponse:
        selected = parse_qs(request.query).get("id", [None])[0]
        try:
            matching, limit, cursor = _listing(request)
            found = emails_page(region, matching=matching, limit=limit, cursor=cursor)
        except ValueError as error:
            return html_response(400, f"<!doctype html><p>{escape(str(error))}</p>", PAGE_HEADERS)
        shown = sent_email(region, selected) if selected else None
        status, body = outbox_page(
            found.emails,
            selected,
            shown=shown,
            matching=matching,
            cursor=cursor,
            next_cursor=found.next_cursor,
            total=sent_count(region),
        )
        return html_response(status, body, PAGE_HEADERS)

    def to_page(_request: HttpRequest) -> HttpResponse:
        # Relative links on the page resolve against /_local/, so send the bare path there.
        return HttpResponse(308, [("location", "/_local/")])

    server.add_local_route("GET", "/_local/emails", list_emails)
    server.add_local_route("GET", EMAIL_PATH, one_email)
    server.add_local_route("GET", "/_local/", page)
    server.add_local_route("GET", "/_local", to_page)
