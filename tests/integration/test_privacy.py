"""Addresses stay out of what others can read or what is kept: the links in emails, the logs, the
delivery records."""

from __future__ import annotations

import base64
import io
import json
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.exceptions import ClientError
from itsdangerous import URLSafeTimedSerializer

from newsdesk import dependencies
from newsdesk.models.keys import FIRST_KEY_ID, key_id_of
from newsdesk.observability import logger
from newsdesk.services.links import LinkPurpose
from tests.integration.conftest import Reply, Stack
from tests.integration.test_uploads import add_subscriber
from tests.support.events import sample_event
from tests.support.mail import mail_to, outbox

ADDRESS = "rea.der+news@example.org"
# Every piece of the address that would give it away.
PIECES = ("rea.der", "news@", "example.org", "rea.der+news")


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def everything_readable_in(token: str) -> str:
    """The token as anyone holding the link can read it: its text, its decoded payload, and any value
    inside that payload decoded again."""
    _, token = key_id_of(unquote(token))
    payload = token.rsplit(".", 2)[0]
    compressed = payload.startswith(".")
    raw = _b64(payload.lstrip("."))
    decoded = zlib.decompress(raw) if compressed else raw
    texts = [token, decoded.decode("utf-8", errors="replace")]
    value = json.loads(decoded)
    for inner in value.values() if isinstance(value, dict) else [value]:
        texts.append(_b64(inner).decode("latin-1"))
    return "\n".join(texts)


def test_the_confirmation_link_does_not_carry_the_address(stack: Stack) -> None:
    stack.call("PublicFunction", sample_event("public-subscribe", body={"email": ADDRESS}))

    readable = everything_readable_in(mail_to(ADDRESS)[0].token("/subscribers/confirm"))

    assert not [piece for piece in PIECES if piece in readable]


@pytest.mark.parametrize("purpose", list(LinkPurpose))
def test_no_personal_link_carries_the_address(stack: Stack, purpose: LinkPurpose) -> None:
    url = dependencies.container().link_signer().url(purpose, ADDRESS)

    readable = everything_readable_in(url.split("token=", 1)[1])

    assert not [piece for piece in PIECES if piece in readable]


def legacy_token(purpose: LinkPurpose, email: str) -> str:
    """A link as Newsdesk made them before addresses were encrypted (the address, signed)."""
    secret = dependencies.container().keyring().key(FIRST_KEY_ID)
    assert secret is not None
    return str(URLSafeTimedSerializer(secret, salt=f"newsdesk.{purpose.value}").dumps(email))


def test_links_in_emails_sent_before_keep_working(stack: Stack) -> None:
    add_subscriber(ADDRESS)

    reply = stack.call(
        "PublicFunction",
        sample_event("public-unsubscribe", query={"token": legacy_token(LinkPurpose.UNSUBSCRIBE, ADDRESS)}),
    )

    assert (reply.status, "You are unsubscribed" in reply.body) == (200, True)
    assert dependencies.container().subscriber_repository.get(ADDRESS).status.value == "unsubscribed"  # type: ignore[union-attr]


class SesRefusing:
    """SES refusing some recipients, with the error text SES really sends (it quotes the address)."""

    def __init__(self, real: Any, refused: set[str]) -> None:
        self._real = real
        self._refused = refused

    def send_email(self, **request: Any) -> Any:
        [recipient] = request["Destination"]["ToAddresses"]
        if recipient in self._refused:
            message = (
                "Email address is not verified. The following identities failed the check in region "
                f"US-EAST-1: {recipient}, newsroom@newsdesk.localhost"
            )
            raise ClientError({"Error": {"Code": "MessageRejected", "Message": message}}, "SendEmail")
        return self._real.send_email(**request)


@pytest.fixture
def refusing_ses(monkeypatch: pytest.MonkeyPatch) -> SesRefusing:
    refusing = SesRefusing(boto3.client("sesv2"), {ADDRESS})
    dependencies.reset().ses = refusing
    return refusing


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the functions log, as CloudWatch would keep it."""
    captured = io.StringIO()
    previous = logger.registered_handler.setStream(captured)  # type: ignore[attr-defined]
    try:
        yield captured
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]


def test_a_refused_confirmation_is_logged_without_the_address(
    stack: Stack, refusing_ses: SesRefusing, logs: io.StringIO
) -> None:
    reply: Reply = stack.call("PublicFunction", sample_event("public-subscribe", body={"email": ADDRESS}))

    assert reply.status == 202
    assert outbox() == []
    kept = logs.getvalue()
    assert "confirmation email not sent" in kept
    assert "MessageRejected" in kept
    assert "<address>" in kept
    assert not [piece for piece in ("rea.der", "newsroom@") if piece in kept]


def test_a_refused_newsletter_leaves_no_address_in_logs_or_delivery_records(
    stack: Stack, refusing_ses: SesRefusing, logs: io.StringIO
) -> None:
    add_subscriber(ADDRESS)
    add_subscriber("other@example.org")
    article = stack.call("EditorFunction", sample_event("editor-create-article")).json()

    stack.call("EditorFunction", sample_event("editor-publish-article", path={"article_id": article["id"]}))
    stack.drain()

    assert [mail.to for mail in outbox()] == ["other@example.org"]
    # The ledger keeps each recipient's address for the editor's report (removed on erasure); nothing else
    # in a record may hold one.
    records = json.dumps([{k: v for k, v in item.items() if k != "email"} for item in stack.items("DeliveriesTable")])
    assert "MessageRejected" in records  # the reason is kept, for the editor
    kept = logs.getvalue() + records
    assert "SES rejected a newsletter" in kept
    assert not [piece for piece in ("rea.der", "newsroom@") if piece in kept]


def test_no_log_line_keeps_an_address_whatever_logs_it(logs: io.StringIO) -> None:
    logger.warning("sending to Rea <rea.der+news@example.org> failed", extra={"to": [ADDRESS], "n": 1})
    try:
        raise ValueError(f"cannot address {ADDRESS}")
    except ValueError:
        logger.exception("unexpected")

    lines = [json.loads(line) for line in logs.getvalue().splitlines()]

    assert lines[0]["message"] == "sending to Rea <<address>> failed"
    assert (lines[0]["to"], lines[0]["n"]) == (["<address>"], 1)
    assert "rea.der" not in logs.getvalue()
