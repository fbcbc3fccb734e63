"""A mailer never outlasts its invocation: pacing waits only while there is time to send, and the rest of
the batch goes back to the queue at once (issue: at the SES sandbox's 1/s, a batch of 100 ran 200 s
against a 90 s timeout)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import boto3

from newsdesk import dependencies
from newsdesk.dal.queues import QueuePublisher
from newsdesk.models.delivery import BatchRecipient, SendBatch
from newsdesk.services.delivery import MailerService
from newsdesk.settings import MailerSettings
from tests.integration.conftest import Stack
from tests.integration.test_newsletter import add_subscribers, publish_new_article
from tests.support.mail import outbox

TIMEOUT_SECONDS = 90.0


@dataclass
class FakeTime:
    """The mailer's monotonic clock and sleep: every wait moves the clock on, instantly."""

    now: float = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_mailer_at_the_sandbox_rate_hands_back_what_it_cannot_send_in_time(stack: Stack) -> None:
    readers = add_subscribers(100)
    article = publish_new_article(stack)
    stack.drain(skip=("MailerFunction",))
    fake = FakeTime()
    # The SES sandbox: one email a second, shared by two mailers.
    container = dependencies.container()
    mailer = MailerService(
        publications=container.publication_repository,
        ledger=container.ledger_repository,
        subscribers=container.subscriber_repository,
        articles=container.article_repository,
        sender=container.ses_sender,
        composer=container.email_composer,
        links=container.link_signer,
        recipient_keys=container.recipient_keys,
        send_queue=QueuePublisher(container.sqs, container.settings(MailerSettings).send_queue_url),
        rate=0.5,
        reconciliation_window=timedelta(seconds=60),
        catalog=container.topic_service.all,
        sleep=fake.sleep,
        monotonic=fake.monotonic,
    )
    batch = SendBatch(delivery_id=f"article-{article['id']}", batch_id="one-big-batch",
                      recipients=[BatchRecipient(email=reader) for reader in readers])  # fmt: skip

    mailer.deliver(batch, seconds_left=lambda: TIMEOUT_SECONDS - fake.now)

    sent = len(outbox())
    assert fake.now < TIMEOUT_SECONDS - 10  # stopped before the timeout, with time to spare
    assert 30 <= sent <= 40  # as many as the rate allowed in that time
    queued = boto3.client("sqs").receive_message(QueueUrl=stack.resolver.queue_url("SendQueue"), MaxNumberOfMessages=10)
    bodies = [SendBatch.model_validate_json(message["Body"]) for message in queued.get("Messages", [])]
    assert [body.batch_id for body in bodies if body.batch_id == batch.batch_id] == [batch.batch_id]  # handed back
    pending = [item for item in stack.items("DeliveriesTable") if item.get("state", {}).get("S") == "pending"]
    assert len(pending) == sent  # only what reached SES is claimed; the rest is free for the next mailer
