"""Newsletter delivery: from a publication record to one email per confirmed subscriber.

1. Start: the publication record's stream INSERT starts the delivery and queues one fan-out task per
   audience shard (FANOUT_SHARDS of them, read in parallel).
2. Fan-out: a task pages through its shard's confirmed instant subscribers and queues them in batches of
   BATCH_SIZE on the send queue; after PAGES_PER_TASK pages (or when time runs short) it queues its own
   continuation, so no invocation grows with the list. The last task of a shard adds the shard's count
   to the delivery's total, once.
3. Mail: a mailer claims a batch (a lease, so one mailer works on it at a time), skips recipients no
   longer confirmed, and for each recipient first writes the delivery record (the claim that makes the
   send unique), then sends within its share of the SES rate, backing off when throttled. The batch's
   outcome is added to the delivery's counters together with the batch's "done" mark.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from newsdesk.clock import utc_now
from newsdesk.dal.articles import ArticleRepository
from newsdesk.dal.deliveries import DeliveryRepository, Outcome
from newsdesk.dal.dynamodb import decode_cursor, encode_cursor
from newsdesk.dal.email import SesSender
from newsdesk.dal.publications import Claim, PublicationRepository, newsletter_id
from newsdesk.dal.queues import QueuePublisher
from newsdesk.dal.subscribers import FANOUT_SHARDS, SubscriberRepository, audience_key
from newsdesk.errors import InvalidInput, NotFound, RetryLater, SendRejected, SendThrottled, ServiceBusy
from newsdesk.messages import MessageTemplate, Recipient
from newsdesk.models.articles import Article, ArticleStatus
from newsdesk.models.delivery import BatchRecipient, DeliveryProgress, FanoutTask, SendBatch
from newsdesk.models.subscribers import Frequency, SubscriberStatus
from newsdesk.observability import logger
from newsdesk.redaction import without_addresses
from newsdesk.services.emails import EmailComposer
from newsdesk.services.links import LinkPurpose, LinkSigner
from newsdesk.services.pacing import RateLimiter, backoff_delay

BATCH_SIZE = 100
PAGES_PER_TASK = 100
"""10,000 recipients per fan-out invocation: a 1,000,000 list is 100 short invocations over 8 shards."""
SAFETY_MARGIN_SECONDS = 15.0
BATCH_LEASE = timedelta(seconds=120)
"""Longer than the mailer's timeout: a lease only lapses when its mailer is surely gone."""
_AUDIENCE_KEYS = frozenset({"email", "audience"})


def personal(links: LinkSigner, email: str, name: str | None = None) -> Recipient:
    """A recipient with their own unsubscribe and preferences links."""
    return Recipient(email, name, links.url(LinkPurpose.UNSUBSCRIBE, email), links.url(LinkPurpose.PREFERENCES, email))


def batch_id(shard: int, recipients: list[BatchRecipient]) -> str:
    """Named by its content, so every copy of the same batch has the same name."""
    digest = hashlib.sha256("\n".join(r.email for r in recipients).encode()).hexdigest()[:24]
    return f"{shard}-{digest}"


class FanoutService:
    def __init__(
        self,
        *,
        publications: PublicationRepository,
        subscribers: SubscriberRepository,
        fanout_queue: QueuePublisher,
        send_queue: QueuePublisher,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._publications = publications
        self._subscribers = subscribers
        self._fanout_queue = fanout_queue
        self._send_queue = send_queue
        self._clock = clock

    def start(self, delivery_id: str, frequency: Frequency) -> None:
        """Begin a delivery (an article's newsletter or a digest). Safe to repeat: duplicate tasks are
        refused by their claims."""
        self._publications.start(delivery_id, self._clock())
        tasks = [FanoutTask(delivery_id=delivery_id, frequency=frequency, shard=s) for s in range(FANOUT_SHARDS)]
        self._fanout_queue.send([task.model_dump_json() for task in tasks])
        logger.info("delivery started", extra={"delivery_id": delivery_id})

    def run(self, task: FanoutTask, *, task_owner: str, seconds_left: Callable[[], float]) -> None:
        """Queue one stretch of a shard; `task_owner` is the queue message's id."""
        claim = self._publications.claim_task(task.delivery_id, task.shard, task.number, task_owner, now=self._clock())
        if claim is not Claim.CLAIMED:
            logger.info("duplicate fan-out task skipped", extra={"delivery_id": task.delivery_id, "shard": task.shard})
            return
        self._queue_stretch(task, seconds_left)
        self._publications.finish_task(task.delivery_id, task.shard, task.number)

    def _queue_stretch(self, task: FanoutTask, seconds_left: Callable[[], float]) -> None:
        cursor = decode_cursor(task.cursor, _AUDIENCE_KEYS) if task.cursor else None
        counted, outgoing = task.counted, []
        people_pages = self._subscribers.audience_pages(
            audience_key(task.frequency, task.shard), page_size=BATCH_SIZE, cursor=cursor
        )
        for pages, (people, next_key) in enumerate(people_pages, start=1):
            if people:
                recipients = [BatchRecipient(email=p["email"], name=p["name"] or None) for p in people]
                batch = SendBatch(
                    delivery_id=task.delivery_id, batch_id=batch_id(task.shard, recipients), recipients=recipients
                )
                outgoing.append(batch.model_dump_json())
                counted += len(recipients)
            if next_key and (pages >= PAGES_PER_TASK or seconds_left() < SAFETY_MARGIN_SECONDS):
                self._send_queue.send(outgoing)
                follow_up = task.model_copy(
                    update={"number": task.number + 1, "cursor": encode_cursor(next_key), "counted": counted}
                )
                self._fanout_queue.send([follow_up.model_dump_json()])
                return
        self._send_queue.send(outgoing)
        if self._publications.complete_shard(task.delivery_id, task.shard, counted):
            logger.info("shard queued", extra={"delivery_id": task.delivery_id, "shard": task.shard, "total": counted})
            self._publications.finish_if_complete(task.delivery_id, self._clock())


@dataclass
class _Tally:
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome] += 1


class MailerService:
    def __init__(
        self,
        *,
        publications: PublicationRepository,
        deliveries: DeliveryRepository,
        subscribers: SubscriberRepository,
        articles: ArticleRepository,
        sender: SesSender,
        composer: EmailComposer,
        links: Callable[[], LinkSigner],
        rate: float,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._publications = publications
        self._deliveries = deliveries
        self._subscribers = subscribers
        self._articles = articles
        self._sender = sender
        self._composer = composer
        self._links = links
        self._clock = clock
        self._sleep = sleep
        # Per process, so the pace holds across invocations of a warm mailer.
        self._limiter = RateLimiter(rate)

    def deliver(self, batch: SendBatch, *, seconds_left: Callable[[], float]) -> None:
        """Send one batch. Raises RetryLater (or any fault) to have the queue deliver it again; what was
        sent stays recorded, so the retry sends only the rest."""
        owner = uuid.uuid4().hex
        now = self._clock()
        claim = self._publications.claim_batch(
            batch.delivery_id, batch.batch_id, owner, now=now, lease_until=now + BATCH_LEASE
        )
        if claim is Claim.DONE:
            logger.info("batch already sent", extra={"batch_id": batch.batch_id})
            return
        if claim is Claim.BUSY:
            raise RetryLater(f"batch {batch.batch_id} is being sent by another mailer")
        try:
            tally = self._send_batch(batch, seconds_left)
        except BaseException:
            self._publications.release_batch(batch.delivery_id, batch.batch_id, owner)
            raise
        counts = {outcome.value: n for outcome, n in tally.counts.items()}
        if self._publications.complete_batch(batch.delivery_id, batch.batch_id, owner, **counts):
            logger.info("batch sent", extra={"batch_id": batch.batch_id, **counts})
            self._publications.finish_if_complete(batch.delivery_id, self._clock())

    def _content(self, delivery_id: str) -> MessageTemplate | None:
        """The message of a delivery; None when its articles were unpublished or deleted meanwhile."""
        record = self._publications.publication(delivery_id) or {}
        if record.get("kind") == "digest":
            found = (self._articles.get(article_id) for article_id in record.get("article_ids", []))
            articles = [a for a in found if a is not None and a.status is ArticleStatus.PUBLISHED]
            return self._composer.digest(articles) if articles else None
        article = self._articles.get(str(record.get("article_id", "")))
        if article is None or article.status is not ArticleStatus.PUBLISHED:
            return None
        return self._composer.newsletter(article)

    def _send_batch(self, batch: SendBatch, seconds_left: Callable[[], float]) -> _Tally:
        template = self._content(batch.delivery_id)
        withdrawn = template is None
        statuses = self._subscribers.statuses([r.email for r in batch.recipients])
        links = self._links()
        tally = _Tally()
        for recipient in batch.recipients:
            if withdrawn:
                outcome = Outcome.FAILED  # the article was unpublished or deleted while it was being sent
            elif statuses.get(recipient.email) is not SubscriberStatus.CONFIRMED:
                outcome = Outcome.SUPPRESSED
            else:
                outcome = Outcome.SENT
                self._limiter.acquire()
            existing = self._deliveries.claim(
                batch.delivery_id, recipient.email, outcome, batch_id=batch.batch_id, at=self._clock()
            )
            if existing is not None:
                if existing.batch_id == batch.batch_id:
                    tally.add(existing.outcome)  # settled by an earlier attempt at this same batch
                continue
            if outcome is Outcome.SENT:
                assert template is not None
                outcome = self._send(batch, template, links, recipient, seconds_left)
            tally.add(outcome)
        return tally

    def _send(
        self,
        batch: SendBatch,
        template: MessageTemplate,
        links: LinkSigner,
        recipient: BatchRecipient,
        seconds_left: Callable[[], float],
    ) -> Outcome:
        """Send to a claimed recipient; gives the claim back if the email may not have gone out."""
        attempt = 0
        try:
            try:
                raw = template.render(personal(links, recipient.email, recipient.name))
            except ValueError as exc:  # an address no email can be addressed to: never sendable
                raise SendRejected(f"cannot address an email to this recipient: {without_addresses(str(exc))}") from exc
            while True:
                try:
                    self._sender.send(sender=self._composer.sender, recipient=recipient.email, raw=raw)
                    return Outcome.SENT
                except SendThrottled:
                    delay = backoff_delay(attempt)
                    attempt += 1
                    if seconds_left() - delay < SAFETY_MARGIN_SECONDS:
                        raise RetryLater("SES kept throttling until this invocation ran out of time") from None
                    self._sleep(delay)
                    self._limiter.acquire()
        except SendRejected as exc:
            logger.warning("SES rejected a newsletter", extra={"batch_id": batch.batch_id, "reason": str(exc)})
            self._deliveries.settle(batch.delivery_id, recipient.email, Outcome.FAILED, str(exc))
            return Outcome.FAILED
        except BaseException:
            self._deliveries.unclaim(batch.delivery_id, recipient.email, batch.batch_id)
            raise


class NewsletterService:
    """What editors ask about a newsletter: its progress, and a test copy."""

    def __init__(
        self,
        *,
        articles: ArticleRepository,
        publications: PublicationRepository,
        sender: SesSender,
        composer: EmailComposer,
        links: Callable[[], LinkSigner],
    ) -> None:
        self._articles = articles
        self._publications = publications
        self._sender = sender
        self._composer = composer
        self._links = links

    def progress(self, article: Article) -> DeliveryProgress:
        progress = self._publications.progress(newsletter_id(article.id))
        if progress is None:
            raise NotFound("this article has not been published, so no newsletter went out")
        return progress

    def send_test(self, article: Article, to: str) -> None:
        """The newsletter as subscribers will get it, to one address; no delivery record is touched."""
        raw = self._composer.newsletter(article).render(personal(self._links(), to))
        try:
            self._sender.send(sender=self._composer.sender, recipient=to, raw=raw)
        except SendRejected as exc:
            raise InvalidInput(f"SES refused to send to this address: {exc}", code="send_rejected") from exc
        except SendThrottled as exc:
            raise ServiceBusy("SES is busy; try again in a moment") from exc
