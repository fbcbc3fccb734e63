"""Keys that rotate: a rotation in the middle of a newsletter breaks no link already sent, sends nobody a second
email and leaves every webhook signing; a function that has not seen a rotation yet still opens what the new key
made; a key is retired only when what it made may stop working, its webhook secrets sealed again first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from freezegun import freeze_time

from local.lambda_runtime.events import sqs_event
from newsdesk import dependencies
from newsdesk.batches import BatchFailedError
from newsdesk.cli import main
from newsdesk.clock import utc_now
from newsdesk.dal import parameters
from newsdesk.dal.email import SesSender
from newsdesk.dal.parameters import CACHE_SECONDS
from newsdesk.dal.secrets import SigningSecretStore
from newsdesk.models.keys import key_id_of
from newsdesk.models.subscribers import SubscriberStatus
from newsdesk.services.keys import RETIRE_AFTER, SigningKeys
from newsdesk.services.links import LinkPurpose, LinkSigner
from tests.integration.conftest import API_URL, Stack
from tests.integration.test_newsletter import ARTICLE, add_subscribers, newsletters, progress, publish_new_article
from tests.integration.test_webhooks import admin, register, signed_correctly
from tests.support.events import sample_event
from tests.support.mail import Mail
from tests.support.receiver import Receiver, webhook_receiver

READERS = 24
INVALID_UNSUBSCRIBE_PAGE = "This unsubscribe link is not valid."


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


def keys(stack: Stack, *command: str) -> int:
    """`newsdesk keys ...` against this stack's secret and webhooks table, as an operator runs it."""
    where = ["--secret", stack.table("SigningSecret"), "--webhooks-table", stack.table("WebhooksTable")]
    return main(["keys", *command, *where])


def reader_of(mail: Mail) -> str:
    return str(mail.message["To"].addresses[0].addr_spec)


def key_of(mail: Mail) -> str | None:
    return key_id_of(mail.token("/unsubscribe"))[0]


def unsubscribe(stack: Stack, token: str, sample: str = "public-unsubscribe") -> Any:
    return stack.call("PublicFunction", sample_event(sample, query={"token": token}))


def sealed_with(stack: Stack, webhook_id: str) -> str | None:
    stored = dependencies.container().webhook_repository.get(webhook_id)
    assert stored is not None
    return key_id_of(stored.sealed_secret)[0]


def hold_every_batch(stack: Stack) -> list[dict[str, Any]]:
    """Every batch fan-out queued, taken off the queue for now (as mailers that have not run yet)."""
    sqs, queue, held = boto3.client("sqs"), stack.resolver.queue_url("SendQueue"), []
    while answer := sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=43200, AttributeNames=["All"]
    ).get("Messages"):
        held += answer
    return held


def send(stack: Stack, batch: dict[str, Any]) -> Any:
    """One mailer invocation on one batch; the message stays in the queue (SQS delivers it again later)."""
    return stack.invoke("MailerFunction", sqs_event([batch], stack.resolver.arn("SendQueue"), stack.resolver.region))


def test_a_rotation_in_the_middle_of_a_newsletter_breaks_no_link_and_sends_nobody_a_second_email(
    stack: Stack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a list, and a webhook registered (its secret sealed with key 0) that hears of every unsubscription
    readers = add_subscribers(READERS)
    hook = register(stack, receiver.url, ["subscriber.unsubscribed"])
    real_send = SesSender.send
    died: list[str] = []

    def dies_after_ses_accepted(self: SesSender, **request: Any) -> str:
        message_id = real_send(self, **request)
        if not died:
            died.append(request["recipient"])
            raise ConnectionAbortedError("the mailer's process was killed after SES accepted the email")
        return message_id

    with freeze_time(utc_now(), tick=True) as clock:
        # When a newsletter is half sent: two batches whole, a third dies after its first email reached SES
        article = publish_new_article(stack)
        stack.drain(skip=("MailerFunction",))
        batches = hold_every_batch(stack)
        assert len(batches) >= 4
        assert [send(stack, batch)["batchItemFailures"] for batch in batches[:2]] == [[], []]
        monkeypatch.setattr(SesSender, "send", dies_after_ses_accepted)
        with pytest.raises(BatchFailedError):  # the invocation failed: SQS delivers the batch again
            send(stack, batches[2])
        monkeypatch.setattr(SesSender, "send", real_send)
        stack.drain(skip=("MailerFunction",))  # SES's events of what was sent
        before = {reader_of(mail): mail for mail in newsletters(ARTICLE["title"])}

        # and the keys are rotated; once every function has read the secret again, every batch comes back
        # (SQS delivers the finished ones again too)
        assert keys(stack, "rotate") == 0
        clock.tick(timedelta(seconds=CACHE_SECONDS + 1))
        sqs = boto3.client("sqs")
        for batch in batches:
            sqs.change_message_visibility(
                QueueUrl=stack.resolver.queue_url("SendQueue"),
                ReceiptHandle=batch["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        stack.drain()

    # Then every reader got exactly one email: the ones before the rotation signed with key 0, the rest with key 1
    mails = newsletters(ARTICLE["title"])
    assert Counter(reader_of(mail) for mail in mails) == Counter(readers)
    assert died[0] in before
    assert {key_of(mail) for mail in before.values()} == {"0"}
    after = [mail for mail in mails if reader_of(mail) not in before]
    assert after
    assert {key_of(mail) for mail in after} == {"1"}
    report = progress(stack, article["id"])
    assert (report["state"], report["counts"]["delivered"], report["late_send_events"]) == ("done", READERS, 0)

    # and a link from either side of the rotation unsubscribes its reader, which the webhook hears, signed
    for mail in (before[died[0]], after[0]):
        assert unsubscribe(stack, mail.token("/unsubscribe")).status == 200
        found = dependencies.container().subscriber_repository.get(reader_of(mail))
        assert found is not None
        assert found.status is SubscriberStatus.UNSUBSCRIBED
    stack.drain()
    heard = receiver.wait_for(2, event_type="subscriber.unsubscribed")
    assert sorted(request.json()["data"]["email"] for request in heard) == sorted([died[0], reader_of(after[0])])
    assert all(signed_correctly(hook["secret"], request) for request in heard)
    # and the endpoint's secret, sealed with key 0, was sealed again with key 1 when it was used
    assert sealed_with(stack, hook["id"]) == "1"


def test_a_link_made_after_a_rotation_opens_in_a_function_that_has_not_read_the_secret_since(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given PublicFunction warm, its keyring cached (key 0 only)
    (reader,) = add_subscribers(1)
    made_before = dependencies.container().link_signer().token(LinkPurpose.UNSUBSCRIBE, reader)
    assert unsubscribe(stack, made_before, "public-unsubscribe-page").status == 200
    forced: list[bool] = []
    real_get_secret = parameters.parameters.get_secret

    def counting(name: str, **options: Any) -> Any:
        forced.append(bool(options.get("force_fetch")))
        return real_get_secret(name, **options)

    monkeypatch.setattr(parameters.parameters, "get_secret", counting)

    # When the keys are rotated and a function that has read the secret since (the mailer) makes a link
    assert keys(stack, "rotate") == 0
    secrets_manager = boto3.client("secretsmanager")
    fresh = SigningSecretStore(secrets_manager, stack.table("SigningSecret")).read()
    made_after = LinkSigner(SigningKeys(fresh), API_URL).token(LinkPurpose.UNSUBSCRIBE, reader)
    page = unsubscribe(stack, made_after, "public-unsubscribe-page")

    # Then it opens at once (PublicFunction read the secret again), and so does the one from before
    assert key_id_of(made_after)[0] == "1"
    assert (page.status, "Unsubscribe" in page.body) == (200, True)
    assert unsubscribe(stack, made_before, "public-unsubscribe-page").status == 200
    # and a key id no keyring has is the page of any bad link, reading the secret again at most every 30 s
    _, signed = key_id_of(made_after)
    altered = unsubscribe(stack, made_after[:-2] + "xx", "public-unsubscribe-page")
    for made_up in ("2", "3", "999999"):
        refused = unsubscribe(stack, f"{made_up}~{signed}", "public-unsubscribe-page")
        assert (refused.status, refused.body) == (400, altered.body)
    assert altered.status == 400
    assert INVALID_UNSUBSCRIBE_PAGE in altered.body
    assert forced.count(True) == 1


def test_a_key_is_retired_only_when_its_links_may_stop_working_and_after_its_webhook_secrets_are_sealed_again(
    stack: Stack, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a reader's unsubscribe link and a webhook's secret, both made with key 0
    (reader,) = add_subscribers(1)
    hook = register(stack, receiver.url, ["subscriber.unsubscribed"])
    made_before = dependencies.container().link_signer().token(LinkPurpose.UNSUBSCRIBE, reader)
    assert sealed_with(stack, hook["id"]) == "0"

    # When the keys were rotated 30 days ago, and key 0 is retired then, too early, or the current key is
    with freeze_time(utc_now() - RETIRE_AFTER - timedelta(minutes=1), tick=True):
        assert keys(stack, "rotate") == 0
        capsys.readouterr()
        assert keys(stack, "retire", "0") == 1
        assert "unsubscribe links it signed must work at least 30 days" in capsys.readouterr().err
        assert keys(stack, "retire", "0", "--force") == 1
        assert "every function may not have the current key yet" in capsys.readouterr().err
        assert keys(stack, "retire", "1", "--force") == 1
        assert "key 1 is the current key" in capsys.readouterr().err
        assert keys(stack, "retire", "7") == 1
        assert "no key '7'" in capsys.readouterr().err

    # Then nothing changed: the link and the webhook secret are still key 0's
    assert sealed_with(stack, hook["id"]) == "0"
    assert unsubscribe(stack, made_before, "public-unsubscribe-page").status == 200

    # When key 0 is retired now
    assert keys(stack, "retire", "0") == 0
    assert "1 webhook secret(s) sealed again" in capsys.readouterr().out

    # Then, once every function has read the secret again, its links show the page of any bad link, and the
    # webhook, sealed again, still signs
    assert sealed_with(stack, hook["id"]) == "1"
    with freeze_time(utc_now() + timedelta(seconds=CACHE_SECONDS + 1), tick=True):
        refused = unsubscribe(stack, made_before)
        assert (refused.status, INVALID_UNSUBSCRIBE_PAGE in refused.body) == (400, True)
        assert admin(stack, "editor-test-webhook", path={"webhook_id": hook["id"]}).status == 202
        stack.drain()
    (ping,) = receiver.wait_for(1, event_type="ping")
    assert signed_correctly(hook["secret"], ping)
    capsys.readouterr()
    assert keys(stack, "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed[:-1]] == ["1"]
    assert "current" in listed[0]


def test_an_endpoint_changed_after_a_rotation_has_its_secret_sealed_again_under_the_current_key(
    stack: Stack, receiver: Receiver
) -> None:
    # Given a webhook registered before a rotation (its secret sealed with key 0)
    hook = register(stack, receiver.url, ["article.published"])
    assert keys(stack, "rotate") == 0

    # When an editor changes it, once EditorFunction has read the secret again
    with freeze_time(utc_now() + timedelta(seconds=CACHE_SECONDS + 1), tick=True):
        path = {"webhook_id": hook["id"]}
        changed = admin(stack, "editor-update-webhook", path=path, body={"description": "the newsroom's wall"})

    # Then its secret is sealed with key 1, and it is the same secret
    assert changed.status == 200, changed.body
    assert sealed_with(stack, hook["id"]) == "1"
    publish_new_article(stack)
    stack.drain()
    (published,) = receiver.wait_for(1, event_type="article.published")
    assert signed_correctly(hook["secret"], published)


def test_reading_the_keyring_and_the_api_url_opens_no_boto3_session_of_their_own(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every boto3 Session loads botocore's endpoint data and each service's model again, which a cold start
    pays for (MailerFunction reads both: bench/cold_start.py): Powertools' providers get clients of boto3's
    default session, as every other client of a function is."""
    # Given boto3's default session, and a count of the sessions opened after it
    boto3.setup_default_session()
    opened: list[str] = []
    real_init = boto3.session.Session.__init__

    def counting(session: boto3.session.Session, *args: Any, **kwargs: Any) -> None:
        opened.append("session")
        real_init(session, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", counting)

    # When a new execution environment reads the keyring and the API's address
    container = dependencies.reset()
    keyring = container.keyring()
    api_url = container.api_url()

    # Then both are read, and no session was opened for them
    assert keyring.identifier_key
    assert api_url.startswith("http")
    assert opened == []
