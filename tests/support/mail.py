"""Reads what the (moto) SES sent, as a subscriber's mail program would."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.outbox.emails import sent_emails

_URL = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    message: EmailMessage
    raw: str

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())

    def link(self, path: str) -> str:
        """The one link in the text part whose path is `path`."""
        found = {url for url in _URL.findall(self.text) if urlsplit(url).path == path}
        assert len(found) == 1, f"expected one {path} link, found {found}"
        return found.pop()

    def token(self, path: str) -> str:
        return parse_qs(urlsplit(self.link(path)).query)["token"][0]


def as_mail(sent: dict[str, Any]) -> Mail:
    """One email of the outbox (an item of `sent_emails` or of GET /_local/emails), read."""
    message = email.message_from_string(sent["raw"], policy=policy.default)
    assert isinstance(message, EmailMessage)
    return Mail(to=sent["to"], subject=sent["subject"], message=message, raw=sent["raw"])


def outbox(region: str = "us-east-1") -> list[Mail]:
    return [as_mail(sent) for sent in sent_emails(region)]


def mail_to(address: str, region: str = "us-east-1") -> list[Mail]:
    return [mail for mail in outbox(region) if address in mail.to]
