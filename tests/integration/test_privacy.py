"""Addresses stay out of what others can read or what is kept: the links in emails, the logs, the
delivery records."""

from __future__ import annotations

import base64
import io
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.exceptions import ClientError
from itsdangerous import URLSafeTimedSerializer

from newsdesk import dependencies
from newsdesk.clock import utc_now
from newsdesk.dal.ledger import LedgerShape
from newsdesk.models.addresses import mailbox, normalize_address
from newsdesk.models.keys import FIRST_KEY_ID, key_id_of
from newsdesk.observability import logger
from newsdesk.services import erasure
from newsdesk.services.links import READER_LINKS, LinkPurpose
from tests.integration.conftest import Reply, Stack
from tests.integration.test_newsletter import publish_new_article
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


@pytest.mark.parametrize("purpose", READER_LINKS)
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
    """SES refusing some recipients, with the error text SES really sends (it quotes the address): the SES
    sandbox's refusal of a recipient it has not verified."""

    def __init__(self, real: Any, refused: set[str]) -> None:
        self._real = real
        self._refused = refused

    def send_email(self, **request: Any) -> Any:
        [recipient] = request["Destination"]["ToAddresses"]
        if recipient in self._refused:
            message = f"Email address is not verified. The following identities failed the check in region US-EAST-1: {recipient}"  # noqa: E501 - SES's own text
            raise ClientError({"Error": {"Code": "MessageRejected", "Message": message}}, "SendEmail")
        return self._real.send_email(**request)


@pytest.fixture
def refusing_ses(monkeypatch: pytest.MonkeyPatch) -> SesRefusing:
    refusing = SesRefusing(boto3.client("sesv2"), {ADDRESS})
    dependencies.reset().ses = refusing
    return refusing


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


# ---------------------------------------------------------------------------------------------- erasure

DORA_AS_TYPED = "Dora@Bücher.example"
"""How an editor may name a reader in `DELETE /admin/subscribers/Dora%40B%C3%BCcher.example`."""
DORA = "dora@xn--bcher-kva.example"
"""The same address as every edge stores it."""


def erase(stack: Stack, email: str) -> Reply:
    return stack.call("EditorFunction", sample_event("editor-erase-subscriber", path={"email": email}))


def signed_up_and_mailed(stack: Stack, email: str) -> None:
    """A reader who signed up through the form (so a confirmation counted against their mailbox), confirmed,
    and was sent a newsletter (so a ledger holds their address)."""
    assert stack.call("PublicFunction", sample_event("public-subscribe", body={"email": email})).status == 202
    [mail] = mail_to(normalize_address(email))
    token = mail.token("/subscribers/confirm")
    assert stack.call("PublicFunction", sample_event("public-confirm-submit", query={"token": token})).status == 200
    publish_new_article(stack)
    stack.drain()


def traces_of(stack: Stack, email: str) -> dict[str, int]:
    """What the stack still keeps of a person, table by table: items holding the address, and counters or
    records named after it."""
    keys = dependencies.container().recipient_keys()
    mailbox_counter = dependencies.container().pseudonyms().of("mailbox", mailbox(email))
    found = {
        logical_id: sum(email in json.dumps(item) for item in stack.items(logical_id))
        for logical_id in ("SubscribersTable", "TopicMembersTable", "DeliveriesTable", "WebhooksTable", "ErasuresTable")
    }
    found["RateLimitsTable"] = sum(mailbox_counter in item["pk"]["S"] for item in stack.items("RateLimitsTable"))
    found["ledger records keyed to them"] = sum(
        item["sk"]["S"] == f"to#{keys.of(email)}" for item in stack.items("DeliveriesTable")
    )
    return found


NOTHING_LEFT = {"SubscribersTable": 0, "TopicMembersTable": 0, "DeliveriesTable": 0, "WebhooksTable": 0,
                "ErasuresTable": 0, "RateLimitsTable": 0, "ledger records keyed to them": 1}  # fmt: skip
"""Nothing holds the address; their one ledger record stays, keyed by a hash, for the delivery's counts."""


def test_an_address_typed_another_way_is_erased_everywhere_and_erasing_it_again_finds_it_done(stack: Stack) -> None:
    # Given a reader who signed up as dora@bücher.example (stored in its IDNA form) and got a newsletter
    signed_up_and_mailed(stack, "dora@bücher.example")
    before = traces_of(stack, DORA)
    assert before["DeliveriesTable"] == before["RateLimitsTable"] == 1

    # When an editor erases "Dora@Bücher.example", as the person wrote it in their request
    first = erase(stack, DORA_AS_TYPED)
    again = erase(stack, DORA_AS_TYPED)

    # Then nothing of them is left, whichever spelling found them, and asking again says it is done
    assert (first.status, again.status) == (204, 204)
    assert traces_of(stack, DORA) == NOTHING_LEFT


@contextmanager
def refused(stack: Stack, function_id: str, action: str, logical_id: str) -> Iterator[None]:
    """The function's role denies `action` on the resource for a while (IAM answers AccessDenied, as it does
    on AWS when a call is refused); the denials are the test's, not a missing permission."""
    roles = dict(stack.policy.roles)
    deny = {"Statement": [{"Effect": "Deny", "Action": action, "Resource": stack.resolver.arn(logical_id)}]}
    role = roles[function_id]
    stack.policy.use_roles({**roles, function_id: replace(role, documents=(*role.documents, deny))})
    try:
        yield
    finally:
        stack.policy.use_roles(roles)
        assert {(d.function_id, d.action) for d in stack.policy.take_denials()} == {(function_id, action)}


@pytest.mark.parametrize("finished_by", ["the editor's retry", "the queue"])
def test_an_erasure_whose_ledger_step_fails_is_finished(stack: Stack, finished_by: str) -> None:
    # Given a reader with a ledger record, and an erasure whose ledger scrub is refused once
    signed_up_and_mailed(stack, DORA)
    with refused(stack, "EditorFunction", "dynamodb:UpdateItem", "DeliveriesTable"), pytest.raises(ClientError):
        erase(stack, DORA)  # API Gateway's 500

    # Then the subscriber record is still there (it goes last), so nothing is lost for a retry
    assert dependencies.container().subscriber_repository.get(DORA) is not None

    # When the editor tries again (or nobody does, and the queued rest of the erasure runs)
    if finished_by == "the editor's retry":
        assert erase(stack, DORA).status == 204
    stack.drain()

    # Then the erasure is complete
    assert traces_of(stack, DORA) == NOTHING_LEFT


def test_a_long_erasure_answers_202_and_finishes_by_itself(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a reader in the ledgers of five deliveries (some in one partition, as before ledgers were sharded),
    # and erasures that do two records per call
    add_subscriber(DORA)
    ledger = dependencies.container().ledger_repository
    key = dependencies.container().recipient_keys().of(DORA)
    for number in range(5):
        shape = LedgerShape(f"article-{number}", 8 if number % 2 else None)
        assert ledger.claim(shape, key, DORA, batch_id="b", attempt=1, now=utc_now())
    monkeypatch.setattr(erasure, "WORK_PER_CALL", 2)

    # When an editor erases them
    reply = erase(stack, DORA)
    location = reply.headers["location"]
    polled = get_erasure(stack, location)

    # Then the answer is 202, with where the erasure stands, which its Location tells as well
    assert reply.status == 202
    assert reply.json()["state"] == "running"
    assert reply.json()["erased"]["ledger_records"] == 2
    assert (polled.status, polled.json()) == (200, reply.json())
    assert "dora" not in location

    # And the queue finishes it, two records a step
    stack.drain()
    done = get_erasure(stack, location).json()
    assert (done["state"], done["step"], done["erased"]["ledger_records"]) == ("done", None, 5)
    assert not [item for item in stack.items("DeliveriesTable") if "email" in item]
    assert dependencies.container().subscriber_repository.get(DORA) is None


def get_erasure(stack: Stack, location: str) -> Reply:
    erasure_id = location.removeprefix("/admin/erasures/")
    return stack.call("EditorFunction", sample_event("editor-get-erasure", path={"erasure_id": erasure_id}))


@pytest.mark.parametrize("erasure_id", ["0" * 32, "not-an-id", DORA])
def test_an_unknown_erasure_is_a_404(stack: Stack, erasure_id: str) -> None:
    reply = get_erasure(stack, f"/admin/erasures/{erasure_id}")

    assert (reply.status, reply.json()["error"]["code"]) == (404, "not_found")
