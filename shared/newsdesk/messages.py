"""MIME messages, built with the standard library's email package.

A newsletter goes to many people with the same content: `MessageTemplate` builds the MIME structure once
and fills in each recipient's address, Message-ID and personal links, because building a message with
`EmailMessage` costs about as much as sending it.
"""

from __future__ import annotations

import base64
import html
import secrets
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from urllib.parse import quote

# Where each recipient's own links go in a template's bodies. Secret to this process (a template is built
# and rendered in one), so an article's text cannot hold one and have a reader's link put in its place.
UNSUBSCRIBE_URL = f"https://newsdesk.invalid/{secrets.token_hex(16)}/unsubscribe"
PREFERENCES_URL = f"https://newsdesk.invalid/{secrets.token_hex(16)}/preferences"


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None = None
    unsubscribe_url: str | None = None
    preferences_url: str | None = None


def _one_line(value: str) -> str:
    # Header values never carry line breaks or other controls, whatever was stored: no header injection.
    return "".join(ch if ch.isprintable() else " " for ch in value).strip()


def format_address(email: str, name: str | None = None) -> str:
    address = Address(display_name=_one_line(name or ""), addr_spec=_one_line(email))
    return address.__str__() if address.display_name.isascii() else _encoded_address(address)


def _encoded_address(address: Address) -> str:
    message = EmailMessage(policy=SMTP)
    message["To"] = address
    return message["To"].fold(policy=SMTP).split(":", 1)[1].strip().replace("\r\n", "")


class MessageTemplate:
    """One message for many recipients; `render` gives each recipient's raw bytes.

    The shared part is built once by the email package. Each recipient's copy is put together by position:
    the personal headers (To, Date, Message-ID, List-Unsubscribe) follow the shared ones, and the bodies go
    between the MIME boundaries, which hold no text from anyone. Nothing is found by searching the
    rendered text, so a title or a name cannot take a personal value's place (a title holding the
    template's date once turned the Date header into 1970).
    """

    def __init__(
        self,
        *,
        sender: str,
        sender_name: str,
        subject: str,
        html_body: str,
        text_body: str,
        list_unsubscribe: bool,
    ) -> None:
        self._sender_domain = sender.rsplit("@", 1)[-1]
        self._mailto = f"mailto:{sender}?subject={quote('unsubscribe')}"
        self._list_unsubscribe = list_unsubscribe
        self._html = html_body
        self._text = text_body

        message = MIMEMultipart("alternative", policy=SMTP)
        message["From"] = format_address(sender, sender_name)
        message["Subject"] = _one_line(subject)
        if list_unsubscribe:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        # utf-8 parts are base64-encoded, so a recipient's bodies are plain bytes between the boundaries.
        text_part = MIMEText("", "plain", "utf-8")
        html_part = MIMEText("", "html", "utf-8")
        text_mark, html_mark = f"TEXT{secrets.token_hex(8)}", f"HTML{secrets.token_hex(8)}"
        text_part.set_payload(text_mark)
        html_part.set_payload(html_mark)
        message.attach(text_part)
        message.attach(html_part)
        skeleton = message.as_bytes(policy=SMTP)
        # Header values never hold an empty line (folding indents, controls are removed), so the first one
        # ends the headers. Everything after it is the email package's own: boundaries, part headers, marks.
        headers, separator, body = skeleton.partition(b"\r\n\r\n")
        before_text, text_found, rest = body.partition(text_mark.encode())
        between, html_found, after_html = rest.partition(html_mark.encode())
        assert separator, "the MIME skeleton has no body"
        assert text_found, "the MIME skeleton lost its text part"
        assert html_found, "the MIME skeleton lost its HTML part"
        self._headers = headers + b"\r\n"
        self._body_pieces = (b"\r\n" + before_text, between, after_html)

    def render(self, recipient: Recipient) -> bytes:
        unsubscribe = recipient.unsubscribe_url or ""
        preferences = recipient.preferences_url or ""
        text = self._text.replace(UNSUBSCRIBE_URL, unsubscribe).replace(PREFERENCES_URL, preferences)
        markup = self._html.replace(UNSUBSCRIBE_URL, html.escape(unsubscribe)).replace(
            PREFERENCES_URL, html.escape(preferences)
        )
        personal = [
            f"To: {format_address(recipient.email, recipient.name)}",
            f"Date: {formatdate(usegmt=True)}",
            f"Message-ID: {make_msgid(domain=self._sender_domain)}",
        ]
        if self._list_unsubscribe:
            personal.append(f"List-Unsubscribe: <{_one_line(unsubscribe)}>, <{self._mailto}>")
        before_text, between, after_html = self._body_pieces
        return b"".join(
            (
                self._headers,
                "\r\n".join(personal).encode(),
                b"\r\n",
                before_text,
                _base64_lines(text),
                between,
                _base64_lines(markup),
                after_html,
            )
        )


def _base64_lines(text: str) -> bytes:
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n").rstrip(b"\r\n")
