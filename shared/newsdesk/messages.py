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

# Where each recipient's own links go in a template's bodies.
UNSUBSCRIBE_URL = "https://newsdesk.invalid/personal-unsubscribe-link"
PREFERENCES_URL = "https://newsdesk.invalid/personal-preferences-link"


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
    """One message for many recipients; `render` gives each recipient's raw bytes."""

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
        self._marks = {
            key: f"NEWSDESK{key.upper()}{secrets.token_hex(8).upper()}" for key in ("to", "id", "date", "unsub")
        }
        self._html = html_body
        self._text = text_body

        message = MIMEMultipart("alternative", policy=SMTP)
        message["From"] = format_address(sender, sender_name)
        message["To"] = self._marks["to"]
        message["Subject"] = _one_line(subject)
        # A date header is parsed and re-rendered by the email package, so mark it with a real date.
        message["Date"] = formatdate(0, usegmt=True)
        message["Message-ID"] = self._marks["id"]
        if list_unsubscribe:
            message["List-Unsubscribe"] = f"<{self._marks['unsub']}>, <{self._mailto}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        # utf-8 parts are base64-encoded, which keeps every recipient's copy a plain substitution.
        text_part = MIMEText("", "plain", "utf-8")
        html_part = MIMEText("", "html", "utf-8")
        self._body_marks = {"text": f"TEXT{secrets.token_hex(8)}", "html": f"HTML{secrets.token_hex(8)}"}
        text_part.set_payload(self._body_marks["text"])
        html_part.set_payload(self._body_marks["html"])
        message.attach(text_part)
        message.attach(html_part)
        self._skeleton = message.as_bytes(policy=SMTP)
        self._date_mark = next(
            line.split(b":", 1)[1].strip() for line in self._skeleton.split(b"\r\n") if line.startswith(b"Date:")
        )

    def render(self, recipient: Recipient) -> bytes:
        unsubscribe = recipient.unsubscribe_url or ""
        preferences = recipient.preferences_url or ""
        text = self._text.replace(UNSUBSCRIBE_URL, unsubscribe).replace(PREFERENCES_URL, preferences)
        markup = self._html.replace(UNSUBSCRIBE_URL, html.escape(unsubscribe)).replace(
            PREFERENCES_URL, html.escape(preferences)
        )
        return (
            self._skeleton.replace(self._marks["to"].encode(), format_address(recipient.email, recipient.name).encode())
            .replace(self._marks["id"].encode(), make_msgid(domain=self._sender_domain).encode())
            .replace(self._date_mark, formatdate(usegmt=True).encode(), 1)
            .replace(self._marks["unsub"].encode(), _one_line(unsubscribe).encode())
            .replace(self._body_marks["text"].encode(), _base64_lines(text))
            .replace(self._body_marks["html"].encode(), _base64_lines(markup))
        )


def _base64_lines(text: str) -> bytes:
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n").rstrip(b"\r\n")
