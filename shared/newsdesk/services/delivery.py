"""Delivery: from a publication record to one email per confirmed subscriber, proven by SES's own record.

1. Start: the publication record's stream INSERT starts the delivery. Its topics are fixed once: the
   article's tags (a digest's articles' tags) that are topics now. It queues one fan-out task per audience
   shard (FANOUT_SHARDS of them, read in parallel) for the subscribers of everything, and as many for each
   of its topics. Its ledger's partitions are fixed then too (dal.ledger.shards_for the send rate).
2. Fan-out: a task pages through its shard's confirmed subscribers (of everything, or of its topic) and
   queues them in batches of BATCH_SIZE on the send queue; after PAGES_PER_TASK pages (or when time runs
   short) it queues its own continuation, so no invocation grows with the list. The last task of a shard
   adds the shard's count to the delivery's total, once. A topic's pass skips the readers who also follow
   one of the delivery's earlier topics (in slug order): that topic's pass queues them. Every membership
   item carries its reader's topics, so this takes no extra read, and a reader of A and B is queued once.
3. Mail: a mailer takes a batch (a lease, so one mailer works on it at a time) and, per recipient, writes
   the ledger record `pending` (the claim that makes the send unique) and sends, tagged with the delivery,
   its ledger's partitions, the recipient's key and the attempt, within its share of the SES rate. SES's
   `Send` event, not the mailer, makes the record `sent` (services.ses_feedback). A record still `pending`
   when the batch comes round again may or may not have reached SES: once the reconciliation window has
   passed without its `Send` event it certainly did not, and it is sent again, as a new attempt (tagged with
   its number), up to the delivery's maximum; then it is `failed`. An answer that leaves it unknown whether SES accepted
   the email (a 5xx, a timeout) is settled the same way, never by sending again at once. When SES refuses
   the whole account, or its daily quota is spent, the delivery pauses (`paused_until`, `paused_reason`)
   and its batches wait on the queue. Just before the claim the mailer reads
   each recipient's status and topics: who left, or no longer follows any of the delivery's topics (or
   whose topics were deleted), is `suppressed`, not sent. A reader who changed topics while fan-out ran may
   have been queued by two passes; the copy that finds the other one's ledger record takes itself out of
   the total (a `dup#` ledger item, counted once by the tally), so the counts still add up.
4. Tally: the ledger's stream keeps the counts by state, each change counted once (Tally), and finishes
   the delivery when nobody is queued or pending.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from newsdesk.clock import utc_now
from newsdesk.dal.ledger import LedgerShape
from newsdesk.dal.publications import Claim, PublicationRepository, ledger_shape, newsletter_id
from newsdesk.dal.subscribers import (
    FANOUT_SHARDS,
    AudienceState,
    Member,
    SubscriberRepository,
)
from newsdesk.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RetryLater,
    SendQuotaExceeded,
    SendRefusedForAccount,
    SendRejected,
    SendThrottled,
    SendUncertain,
    ServiceBusy,
    TooManyRequests,
)
from newsdesk.messages import MessageTemplate, Recipient
from newsdesk.models.articles import Article, ArticleStatus
from newsdesk.models.delivery import (
    BatchRecipient,
    DeliveryKind,
    DeliveryProgress,
    FanoutTask,
    LedgerEntry,
    LedgerState,
    SendBatch,
)
from newsdesk.models.subscribers import Frequency, SubscriberStatus
from newsdesk.observability import logger, metrics
from newsdesk.services.csv_export import csv_page
from newsdesk.services.links import LinkPurpose, LinkSigner
from newsdesk.services.pacing import RateLimiter, backoff_delay
from newsdesk.services.ses_event import TAG_ATTEMPT, TAG_DELIVERY, TAG_LEDGER_SHARDS, TAG_RECIPIENT

if TYPE_CHECKING:
    # Collaborators handed in by the container: a function that runs one of these services (the tally, the
    # mailer) should not load the others' modules and models with this one.
    from newsdesk.dal.articles import ArticleRepository
    from newsdesk.dal.email import SesSender
    from newsdesk.dal.ledger import LedgerRecord, LedgerRepository
    from newsdesk.dal.queues import QueuePublisher
    from newsdesk.models.topics import Topic
    from newsdesk.services.emails import EmailComposer
    from newsdesk.services.limits import TestEmailLimit
    from newsdesk.services.recipients import RecipientKeys

BATCH_SIZE = 100
PAGES_PER_TASK = 100
"""10,000 recipients per fan-out invocation: a 1,000,000 list is 100 short invocations over 8 shards."""
SAFETY_MARGIN_SECONDS = 15.0
BATCH_LEASE = timedelta(seconds=120)
"""Longer than the mailer's timeout: a lease only lapses when its mailer is surely gone."""
MAX_ATTEMPTS = 5
"""How many times a recipient whose emails SES never confirmed is sent one, at most (MaxSendAttempts)."""
QUOTA_PAUSE = timedelta(hours=1)
"""How long a delivery waits after SES says its 24-hour quota is spent, before trying again."""
ACCOUNT_PAUSE = timedelta(minutes=1)
"""How long a delivery waits after SES refuses everything the account sends (sending paused, suspended, no
permission, an unverified sender, a configuration set missing or paused), before a mailer asks SES again."""
UNCONFIRMED_METRIC = "SendsUnconfirmed"
"""Recipients `failed` because SES never confirmed any of their attempts (an alarm watches it)."""
ACCOUNT_REFUSED_METRIC = "SesAccountRefusals"
"""Batches stopped because SES refused the account (an alarm watches it)."""


CHANGE_MARGIN = timedelta(minutes=5)
"""Clocks of different functions may disagree by this much, at most, when the mailer tells whether a reader
changed audiences after a delivery opened."""


def personal(links: LinkSigner, email: str, name: str | None = None, *, delivery_id: str | None = None) -> Recipient:
    """A recipient with their own unsubscribe and preferences links; the unsubscribe link names the
    delivery, so its one click leaves the topics that email was sent for."""
    details = {"d": delivery_id} if delivery_id else None
    return Recipient(
        email,
        name,
        links.url(LinkPurpose.UNSUBSCRIBE, email, details),
        links.url(LinkPurpose.PREFERENCES, email),
    )


def batch_id(shard: int, recipients: list[BatchRecipient], topic: str | None = None) -> str:
    """Named by its content (and the topic pass that queued it), so every copy of the same batch has the same
    name."""
    names = "\n".join(r.email for r in recipients)
    digest = hashlib.sha256((f"{topic}\n{names}" if topic else names).encode()).hexdigest()[:24]
    return f"{shard}-{digest}"


class FanoutService:
    def __init__(
        self,
        *,
        publications: PublicationRepository,
        subscribers: SubscriberRepository,
        fanout_queue: QueuePublisher,
        send_queue: QueuePublisher,
        topics: Callable[[], set[str]],
        ledger_shards: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._publications = publications
        self._subscribers = subscribers
        self._fanout_queue = fanout_queue
        self._send_queue = send_queue
        self._topics = topics
        self._ledger_shards = ledger_shards
        self._clock = clock

    def start(self, delivery_id: str, frequency: Frequency) -> None:
        """Begin a delivery (an article's newsletter or a digest). Safe to repeat: its topics are fixed by the
        first start, and duplicate tasks are refused by their claims."""
        record = self._publications.publication(delivery_id) or {}
        if record.get("kind") == DeliveryKind.BREAKING.value:
            self._start_breaking(delivery_id, record)
            return
        tags = set(record.get("tags") or [])
        wanted = sorted(tags & self._topics()) if tags else []
        topics = self._publications.resolve_topics(delivery_id, wanted, shards=FANOUT_SHARDS,
                                                   ledger_shards=self._ledger_shards)  # fmt: skip
        self._publications.start(delivery_id, self._clock())
        passes: list[tuple[str | None, list[str]]] = [(None, [])]
        passes += [(topic, topics[:index]) for index, topic in enumerate(topics)]
        tasks = [
            FanoutTask(delivery_id=delivery_id, frequency=frequency, topic=topic, earlier_topics=earlier, shard=shard)
            for topic, earlier in passes
            for shard in range(FANOUT_SHARDS)
        ]
        self._fanout_queue.send([task.model_dump_json() for task in tasks])
        logger.info("delivery started", extra={"delivery_id": delivery_id, "topics": topics})

    def _start_breaking(self, delivery_id: str, record: dict[str, Any]) -> None:
        """A breaking-news alert: one pass over the readers who asked for alerts, leaving out the instant readers
        the article's own newsletter reaches (its topics, as its start fixed them, or as it will)."""
        newsletter = self._publications.publication(newsletter_id(str(record.get("article_id", "")))) or {}
        if "shards_expected" in newsletter:
            covered = list(newsletter.get("topics") or [])
        else:
            covered = sorted(set(record.get("tags") or []) & self._topics())
        self._publications.resolve_topics(delivery_id, [], shards=FANOUT_SHARDS, ledger_shards=self._ledger_shards)
        self._publications.start(delivery_id, self._clock())
        tasks = [
            FanoutTask(delivery_id=delivery_id, breaking=True, newsletter_topics=covered, shard=shard)
            for shard in range(FANOUT_SHARDS)
        ]
        self._fanout_queue.send([task.model_dump_json() for task in tasks])
        logger.info("breaking-news alert started", extra={"delivery_id": delivery_id})

    def run(self, task: FanoutTask, *, task_owner: str, seconds_left: Callable[[], float]) -> None:
        """Queue one stretch of a shard; `task_owner` is the queue message's id."""
        claim = self._publications.claim_task(
            task.delivery_id, task.shard, task.number, task_owner, now=self._clock(), topic=task.topic
        )
        if claim is not Claim.CLAIMED:
            logger.info("duplicate fan-out task skipped", extra={"delivery_id": task.delivery_id, "shard": task.shard})
            return
        self._queue_stretch(task, seconds_left)
        self._publications.finish_task(task.delivery_id, task.shard, task.number, topic=task.topic)

    def _queue_stretch(self, task: FanoutTask, seconds_left: Callable[[], float]) -> None:
        counted, outgoing = task.counted, []
        earlier = set(task.earlier_topics)
        if task.breaking:
            audience = self._subscribers.breaking_audience(task.shard, page_size=BATCH_SIZE, cursor=task.cursor)
        else:
            audience = self._subscribers.audience(
                task.frequency, task.shard, topic=task.topic, page_size=BATCH_SIZE, cursor=task.cursor
            )
        for pages, (members, next_cursor) in enumerate(audience, start=1):
            if task.breaking:
                # One email per reader and article: the newsletter's own readers get the article from it.
                people = [member for member in members if not _gets_newsletter(member, task.newsletter_topics)]
            else:
                # A reader who also follows an earlier topic of the delivery is that topic's pass's to queue.
                people = [member for member in members if not (earlier and earlier.intersection(member.topics or []))]
            if people:
                recipients = [BatchRecipient(email=member.email, name=member.name) for member in people]
                batch = SendBatch(
                    delivery_id=task.delivery_id,
                    batch_id=batch_id(task.shard, recipients, task.topic),
                    recipients=recipients,
                )
                outgoing.append(batch.model_dump_json())
                counted += len(recipients)
            if next_cursor and (pages >= PAGES_PER_TASK or seconds_left() < SAFETY_MARGIN_SECONDS):
                self._send_queue.send(outgoing)
                follow_up = task.model_copy(
                    update={"number": task.number + 1, "cursor": next_cursor, "counted": counted}
                )
                self._fanout_queue.send([follow_up.model_dump_json()])
                return
        self._send_queue.send(outgoing)
        if self._publications.complete_shard(task.delivery_id, task.shard, counted, topic=task.topic):
            logger.info(
                "shard queued",
                extra={"delivery_id": task.delivery_id, "shard": task.shard, "topic": task.topic, "total": counted},
            )
            self._publications.finish_if_complete(task.delivery_id, self._clock())


def _gets_newsletter(member: Member, newsletter_topics: list[str]) -> bool:
    """Whether an article's newsletter (of these topics) reaches this reader: instant, of everything or of one
    of its topics."""
    if member.frequency is not Frequency.INSTANT:
        return False
    return member.topics is None or bool(set(member.topics) & set(newsletter_topics))


class _Paused(Exception):
    """SES sends nothing more for now (the daily quota is spent, or it refuses the account): the delivery is
    paused until `until`, and the batch waits."""

    def __init__(self, until: datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


class _OutOfTime(Exception):
    """The invocation cannot send more before its timeout: the rest of the batch goes back on the queue."""


@dataclass(frozen=True)
class _Plan:
    """The message one recipient gets."""

    message: MessageTemplate


@dataclass(frozen=True)
class _Target:
    """A recipient the mailer is about to send to, with the attempt its ledger record holds."""

    ledger: LedgerShape
    recipient: BatchRecipient
    key: str
    attempt: int
    plan: _Plan


class _Content:
    """What a delivery sends, per recipient: the article (or the digest's articles) of the topics they follow
    among the delivery's topics that still exist (`live`), everything for a subscriber of everything. Built
    once per distinct choice within a batch."""

    def __init__(self, composer: EmailComposer, articles: list[Article], live: dict[str, Topic], *,
                 digest: bool) -> None:  # fmt: skip
        self._composer = composer
        self._articles = articles
        self._live = live
        self._digest = digest
        self._built: dict[tuple[tuple[str, ...], tuple[str, ...] | None], _Plan] = {}

    def plan(self, state: AudienceState | None) -> _Plan | str:
        """The message for a recipient in `state`, or why they get none."""
        if state is None:
            return "erased"
        if state.status is not SubscriberStatus.CONFIRMED:
            return state.status.value
        if state.topics is None:
            return self._message(self._articles, None)
        followed = [slug for slug in state.topics if slug in self._live]
        if self._digest:
            chosen = [a for a in self._articles if set(a.tags) & set(followed)]
            sent_for = [slug for slug in followed if any(slug in a.tags for a in chosen)]
        else:
            chosen, sent_for = self._articles, followed
        if not chosen or not sent_for:
            return "no longer follows its topics"
        return self._message(chosen, sent_for)

    def _message(self, articles: list[Article], sent_for: list[str] | None) -> _Plan:
        key = (tuple(a.id for a in articles), tuple(sent_for) if sent_for is not None else None)
        if key not in self._built:
            topics = [self._live[slug] for slug in sent_for] if sent_for is not None else None
            message = (
                self._composer.digest(articles, sent_for=topics)
                if self._digest
                else self._composer.newsletter(articles[0], sent_for=topics)
            )
            self._built[key] = _Plan(message)
        return self._built[key]


class _AlertContent:
    """What a breaking-news alert sends: the article, to readers who still ask for alerts."""

    def __init__(self, message: MessageTemplate) -> None:
        self._plan = _Plan(message)

    def plan(self, state: AudienceState | None) -> _Plan | str:
        if state is None:
            return "erased"
        if state.status is not SubscriberStatus.CONFIRMED:
            return state.status.value
        return self._plan if state.breaking else "no longer asks for breaking news"


class MailerService:
    def __init__(
        self,
        *,
        publications: PublicationRepository,
        ledger: LedgerRepository,
        subscribers: SubscriberRepository,
        articles: ArticleRepository,
        sender: SesSender,
        composer: EmailComposer,
        links: Callable[[], LinkSigner],
        recipient_keys: Callable[[], RecipientKeys],
        send_queue: QueuePublisher,
        rate: float,
        reconciliation_window: timedelta,
        catalog: Callable[[], list[Topic]],
        max_attempts: int = MAX_ATTEMPTS,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._publications = publications
        self._ledger = ledger
        self._subscribers = subscribers
        self._articles = articles
        self._sender = sender
        self._composer = composer
        self._links = links
        self._recipient_keys = recipient_keys
        self._send_queue = send_queue
        self._window = reconciliation_window
        self._max_attempts = max_attempts
        self._clock = clock
        self._sleep = sleep
        # Per process, so the pace holds across invocations of a warm mailer; a small burst lets a mailer
        # catch up the time a pause cost it without ever exceeding its rate over a second.
        self._limiter = RateLimiter(rate, burst=max(1.0, rate / 2), clock=monotonic, sleep=sleep)

    def deliver(self, batch: SendBatch, *, seconds_left: Callable[[], float]) -> None:
        """Send one batch. Raises RetryLater (or any fault) to have the queue deliver it again; what was
        claimed stays in the ledger, so the retry sends only the rest."""
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
            come_back_at = self._send_batch(batch, seconds_left)
        except BaseException:
            self._publications.release_batch(batch.delivery_id, batch.batch_id, owner)
            raise
        if come_back_at is None:
            self._publications.complete_batch(batch.delivery_id, batch.batch_id, owner)
            logger.info("batch sent", extra={"batch_id": batch.batch_id})
            return
        # Not finished: a fresh copy comes back when there is something to do (SQS delays up to 15 minutes,
        # and a copy that finds nothing to do yet is delayed again).
        self._publications.release_batch(batch.delivery_id, batch.batch_id, owner)
        delay = max(0, math.ceil((come_back_at - self._clock()).total_seconds()))
        self._send_queue.send([batch.model_dump_json()], delay_seconds=delay)
        logger.info("batch comes back later", extra={"batch_id": batch.batch_id, "delay_seconds": delay})

    def _send_batch(self, batch: SendBatch, seconds_left: Callable[[], float]) -> datetime | None:
        """Settle or send every recipient of the batch; when some must wait, the moment to come back."""
        record = self._publications.publication(batch.delivery_id) or {}
        now = self._clock()
        paused = record.get("paused_until")
        if paused and datetime.fromisoformat(paused) > now:
            return datetime.fromisoformat(paused)
        content = self._content(record)
        shape = ledger_shape(batch.delivery_id, record)
        keys = self._recipient_keys()
        recipients = {keys.of(recipient.email): recipient for recipient in batch.recipients}
        ledger = self._ledger.records(shape, recipients)
        had_newsletter = self._had_newsletter(record, list(recipients))
        states = self._subscribers.audience_states([recipient.email for recipient in batch.recipients])
        opened = record.get("opened_at")
        # Readers who moved between audiences since shortly before the delivery opened may have been queued by
        # two of its passes (see the module's docstring).
        changed_since = datetime.fromisoformat(opened) - CHANGE_MARGIN if opened else None
        come_back_at: datetime | None = None
        links = self._links()
        try:
            for key, recipient in recipients.items():
                state = states.get(recipient.email)
                plan = content.plan(state) if content is not None else None
                if key in had_newsletter and isinstance(plan, _Plan):
                    plan = "had the article's newsletter"
                target = self._target(batch, shape, key, recipient, ledger.get(key), plan, state, changed_since, now)
                if target is not None and not isinstance(target, datetime):
                    target = self._send(batch, links, target, seconds_left)
                if isinstance(target, datetime):
                    come_back_at = min(come_back_at or target, target)
        except _Paused as paused:
            return paused.until
        except _OutOfTime:
            return self._clock()
        return come_back_at

    def _target(
        self,
        batch: SendBatch,
        ledger: LedgerShape,
        key: str,
        recipient: BatchRecipient,
        record: LedgerRecord | None,
        plan: _Plan | str | None,
        state: AudienceState | None,
        changed_since: datetime | None,
        now: datetime,
    ) -> _Target | datetime | None:
        """What to do for one recipient: send (with the attempt claimed), wait (until when), or nothing.
        `plan` is the message to send them, why they get none (a string), or None: the delivery's articles
        were withdrawn."""
        if record is not None and record.batch_id != batch.batch_id:
            self._copy_found(batch, ledger, key, state, changed_since, now)
            return None
        if record is None:
            if isinstance(plan, _Plan):
                written = self._ledger.claim(ledger, key, recipient.email, batch_id=batch.batch_id, attempt=1, now=now)
                if written:
                    return _Target(ledger, recipient, key, 1, plan)
            else:
                written = self._settle_unsent(batch, ledger, key, recipient, state, plan, now=now)
            if not written:  # another batch's copy of this recipient wrote it meanwhile
                found = self._ledger.records(ledger, [key]).get(key)
                if found is not None and found.batch_id != batch.batch_id:
                    self._copy_found(batch, ledger, key, state, changed_since, now)
            return None
        if record.state is not LedgerState.PENDING:
            return None  # settled already
        # An earlier attempt at this batch claimed this recipient and may or may not have reached SES.
        assert record.pending_since is not None
        decided_at = record.pending_since + self._window
        if decided_at > now:
            return decided_at  # its Send event may still come
        unconfirmed = record.attempt >= self._max_attempts
        if unconfirmed or not isinstance(plan, _Plan):
            if unconfirmed:
                attempts = "one attempt" if record.attempt == 1 else f"{record.attempt} attempts"
                to, detail = LedgerState.FAILED, f"SES never confirmed sending it, after {attempts}"
            elif plan is None:
                to, detail = LedgerState.FAILED, "the article was withdrawn"
            else:
                to, detail = LedgerState.SUPPRESSED, f"{plan} before it was sent again"
            moved = self._ledger.move(ledger, key, to=to, allowed_from=[LedgerState.PENDING], now=now,
                                      attempt=record.attempt, detail=detail)  # fmt: skip
            if moved and unconfirmed:
                metrics.add_metric(name=UNCONFIRMED_METRIC, unit=MetricUnit.Count, value=1)
                logger.warning("SES never confirmed a recipient's emails: failed",
                               extra={"batch_id": batch.batch_id, "attempts": record.attempt})  # fmt: skip
            return None
        # No Send event within the window: that attempt never reached SES. Send again, as the next attempt.
        if not self._ledger.retry(ledger, key, attempt=record.attempt, now=now):
            return None
        logger.info("recipient sent again after no Send event",
                    extra={"batch_id": batch.batch_id, "attempt": record.attempt + 1})  # fmt: skip
        return _Target(ledger, recipient, key, record.attempt + 1, plan)

    def _copy_found(
        self,
        batch: SendBatch,
        ledger: LedgerShape,
        key: str,
        state: AudienceState | None,
        changed_since: datetime | None,
        now: datetime,
    ) -> None:
        """This recipient was queued in another batch too. When they moved between the delivery's audiences
        while fan-out ran, two passes queued them and both copies were counted in the total: this one takes
        itself out, once (a `dup#` ledger item the tally counts)."""
        changed = state.audience_changed_at if state is not None else None
        if changed is None or changed_since is None or changed < changed_since:
            return
        if self._ledger.mark_duplicate(ledger, key, batch_id=batch.batch_id, now=now):
            logger.info("recipient queued twice: the copy is left out", extra={"batch_id": batch.batch_id})

    def _settle_unsent(
        self,
        batch: SendBatch,
        ledger: LedgerShape,
        key: str,
        recipient: BatchRecipient,
        state: AudienceState | None,
        why: str | None,
        *,
        now: datetime,
    ) -> bool:
        if why is None:
            ledger_state, detail = LedgerState.FAILED, "the article was unpublished or deleted before it was sent"
        else:
            ledger_state, detail = LedgerState.SUPPRESSED, f"{why} before it was sent"
        # An erased person's address is not written down again.
        email = recipient.email if state is not None else ""
        return self._ledger.settle_unsent(
            ledger, key, email, ledger_state, detail=detail, batch_id=batch.batch_id, now=now
        )

    def _had_newsletter(self, record: dict[str, Any], keys: list[str]) -> set[str]:
        """For a breaking-news alert: the recipients the article's newsletter was sent to (or is being sent to),
        by its ledger, one read per batch. They moved into its audience after fan-out left them out."""
        if record.get("kind") != DeliveryKind.BREAKING.value:
            return set()
        newsletter = newsletter_id(str(record.get("article_id", "")))
        found = self._ledger.records(ledger_shape(newsletter, self._publications.publication(newsletter)), keys)
        unsent = (LedgerState.SUPPRESSED, LedgerState.FAILED)
        return {key for key, found_record in found.items() if found_record.state not in unsent}

    def _content(self, record: dict[str, Any]) -> _Content | _AlertContent | None:
        """The message(s) of a delivery; None when its articles were unpublished or deleted meanwhile."""
        topics = set(record.get("topics") or [])
        catalog = {topic.slug: topic for topic in self._catalog()} if topics else {}
        live = {slug: catalog[slug] for slug in sorted(topics) if slug in catalog}
        if record.get("kind") == "digest":
            found = (self._articles.get(article_id) for article_id in record.get("article_ids", []))
            articles = [a for a in found if a is not None and a.status is ArticleStatus.PUBLISHED]
            return _Content(self._composer, articles, live, digest=True) if articles else None
        article = self._articles.get(str(record.get("article_id", "")))
        if article is None or article.status is not ArticleStatus.PUBLISHED:
            return None
        if record.get("kind") == DeliveryKind.BREAKING.value:
            return _AlertContent(self._composer.breaking(article))
        return _Content(self._composer, [article], live, digest=False)

    def _send(
        self, batch: SendBatch, links: LinkSigner, target: _Target, seconds_left: Callable[[], float]
    ) -> datetime | None:
        """Send to a claimed recipient; when SES's answer left it unknown whether the email was accepted, the
        moment its batch should come back to settle it. Only what SES certainly did not accept is given back;
        anything else stays `pending` for SES's Send event (or the reconciliation window) to settle."""
        try:
            raw = target.plan.message.render(
                personal(links, target.recipient.email, target.recipient.name, delivery_id=batch.delivery_id)
            )
        except ValueError:  # an address no email can be addressed to: never sendable
            self._fail(target, "the stored address cannot be written in an email header")
            return None
        tags = {TAG_DELIVERY: batch.delivery_id, TAG_RECIPIENT: target.key, TAG_ATTEMPT: str(target.attempt)}
        if target.ledger.shards is not None:
            tags[TAG_LEDGER_SHARDS] = str(target.ledger.shards)
        throttled = 0
        while True:
            if not self._limiter.acquire(max_wait=seconds_left() - SAFETY_MARGIN_SECONDS):
                self._give_back(target)
                raise _OutOfTime
            try:
                self._sender.send(sender=self._composer.sender, recipient=target.recipient.email, raw=raw, tags=tags)
                return None
            except SendThrottled:
                delay = backoff_delay(throttled)
                throttled += 1
                if seconds_left() - delay < SAFETY_MARGIN_SECONDS:
                    self._give_back(target)
                    raise _OutOfTime from None
                self._sleep(delay)
            except SendQuotaExceeded:
                logger.warning("SES's daily quota is spent: delivery paused", extra={"delivery_id": batch.delivery_id})
                raise self._pause(batch, target, QUOTA_PAUSE, "SES's daily sending quota is spent") from None
            except SendRefusedForAccount as exc:
                # Once per batch: the batch stops here and waits, so no mailer spins on an account SES refuses.
                metrics.add_metric(name=ACCOUNT_REFUSED_METRIC, unit=MetricUnit.Count, value=1)
                where = {"delivery_id": batch.delivery_id, "batch_id": batch.batch_id}
                logger.error(
                    "SES refuses to send for this account: delivery paused", extra={**where, "reason": str(exc)}
                )
                raise self._pause(
                    batch, target, ACCOUNT_PAUSE, f"SES refuses to send for this account ({exc})"
                ) from None
            except SendRejected as exc:
                logger.warning("SES rejected a newsletter", extra={"batch_id": batch.batch_id, "reason": str(exc)})
                self._fail(target, f"SES refused the email ({exc})")
                return None
            except SendUncertain as exc:
                # It may have been accepted: sending it again now could make a second email. SES's Send event
                # settles it, or the reconciliation window, after which it is sent again as the next attempt.
                logger.warning("SES's answer leaves it unknown whether it sent the email; its Send event will tell",
                               extra={"batch_id": batch.batch_id, "reason": str(exc)})  # fmt: skip
                return self._clock() + self._window

    def _pause(self, batch: SendBatch, target: _Target, length: timedelta, reason: str) -> _Paused:
        """Give back a claim SES certainly did not accept and pause the delivery: its batches wait on the queue
        until then, and the first to come back asks SES again."""
        self._give_back(target)
        until = self._clock() + length
        self._publications.pause(batch.delivery_id, until, reason=reason)
        return _Paused(until)

    def _fail(self, target: _Target, detail: str) -> None:
        self._ledger.move(target.ledger, target.key, to=LedgerState.FAILED, allowed_from=[LedgerState.PENDING],
                          now=self._clock(), attempt=target.attempt, detail=detail)  # fmt: skip

    def _give_back(self, target: _Target) -> None:
        """Undo the claim of an attempt SES certainly did not accept."""
        if target.attempt == 1:
            self._ledger.release(target.ledger, target.key, attempt=1)
        else:
            # Back to the previous attempt, decided already: the next pass at the batch retries at once.
            now = self._clock()
            self._ledger.back_off(target.ledger, target.key, attempt=target.attempt,
                                  pending_since=now - self._window, now=now)  # fmt: skip


# ---------------------------------------------------------------------------------------------- tally


@dataclass(frozen=True)
class LedgerChange:
    """One change of one ledger record, as the table's stream reports it."""

    delivery_id: str
    sequence: str
    old_state: str | None
    new_state: str | None
    late_send: bool


class Tally:
    """Keeps each delivery's counts by ledger state from the ledger's stream, exactly once per change, and
    finishes a delivery once nobody is queued or pending."""

    def __init__(self, *, publications: PublicationRepository, clock: Callable[[], datetime] = utc_now) -> None:
        self._publications = publications
        self._clock = clock

    def apply(self, stream_shard: str, changes: list[LedgerChange]) -> None:
        by_delivery: dict[str, list[LedgerChange]] = defaultdict(list)
        for change in changes:
            by_delivery[change.delivery_id].append(change)
        for delivery_id, own in by_delivery.items():
            counts: Counter[str] = Counter()
            for change in own:
                if change.old_state:
                    counts[change.old_state] -= 1
                if change.new_state:
                    counts[change.new_state] += 1
                counts["late_send"] += change.late_send
            sequences = sorted((change.sequence for change in own), key=int)
            applied = self._publications.apply_counts(
                delivery_id,
                stream_shard,
                first=sequences[0],
                last=sequences[-1],
                changes={name: value for name, value in counts.items() if value},
            )
            if applied:
                self._publications.finish_if_complete(delivery_id, self._clock())


# -------------------------------------------------------------------------------------------- reports

EXPORT_PAGE = 5000
EXPORT_COLUMNS = ("email", "state", "message_id", "detail", "updated_at")


class DeliveryReports:
    """What editors ask about deliveries: progress, the ledger of each, and a test copy of a newsletter."""

    def __init__(
        self,
        *,
        articles: ArticleRepository,
        publications: PublicationRepository,
        ledger: LedgerRepository,
        sender: SesSender,
        composer: EmailComposer,
        links: Callable[[], LinkSigner],
        subscribers: SubscriberRepository,
        test_emails: Callable[[], TestEmailLimit],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._articles = articles
        self._publications = publications
        self._ledger = ledger
        self._sender = sender
        self._composer = composer
        self._links = links
        self._subscribers = subscribers
        self._test_emails = test_emails
        self._clock = clock

    def of_article(self, article: Article) -> DeliveryProgress:
        progress = self._publications.progress(newsletter_id(article.id), self._clock())
        if progress is None:
            raise NotFound("this article has not been published, so no newsletter went out")
        return progress

    def get(self, delivery_id: str) -> DeliveryProgress:
        progress = self._publications.progress(delivery_id, self._clock()) if _plausible(delivery_id) else None
        if progress is None:
            raise NotFound(f"no delivery {delivery_id!r}")
        return progress

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[DeliveryProgress], str | None]:
        return self._publications.deliveries(limit=limit, cursor=cursor, now=self._clock())

    def recipients(
        self, delivery_id: str, *, state: LedgerState | None, limit: int, cursor: str | None
    ) -> tuple[list[LedgerEntry], str | None]:
        record = self._publications.publication(delivery_id) if _plausible(delivery_id) else None
        if record is None:
            raise NotFound(f"no delivery {delivery_id!r}")
        ledger = ledger_shape(delivery_id, record)
        records, next_cursor = self._ledger.page(ledger, state=state, limit=limit, cursor=cursor)
        return [_entry(record) for record in records], next_cursor

    def export_csv(self, delivery_id: str, *, state: LedgerState | None, cursor: str | None) -> tuple[str, str | None]:
        """One page of a delivery's ledger as CSV (with a header row), and the cursor of the next page."""
        entries, next_cursor = self.recipients(delivery_id, state=state, limit=EXPORT_PAGE, cursor=cursor)
        return csv_page(EXPORT_COLUMNS, (entry.model_dump(mode="json") for entry in entries)), next_cursor

    def send_test(self, article: Article, to: str, *, token: str | None) -> None:
        """The newsletter as subscribers will get it, to one address; no delivery record is touched. Never
        to an address that bounced, complained or unsubscribed, and at most TestEmailsPerTokenPerHour for
        the editor `token`."""
        subscriber = self._subscribers.get(to)
        if subscriber is not None and subscriber.status in _NOT_MAILED:
            # A bounce again or a complaint again costs the SES account's reputation; and a newsletter to
            # someone who left is what they opted out of, whoever sends it.
            raise Conflict(f"this address is {subscriber.status.value}: no email goes to it, a test neither",
                           code="recipient_suppressed", details={"status": subscriber.status.value})  # fmt: skip
        now = self._clock()
        wait = self._test_emails().take(token, now)
        if wait is not None:
            raise TooManyRequests(f"this token sent its {self._test_emails().per_hour} test emails of the hour; "
                                  f"try again in {wait} s", code="too_many_test_emails", retry_after=wait)  # fmt: skip
        # No personal links: the address may be nobody's subscription, and a link must not pretend otherwise.
        raw = self._composer.newsletter(article, test=True).render(Recipient(to))
        try:
            self._sender.send(sender=self._composer.sender, recipient=to, raw=raw)
        except SendRejected as exc:
            self._test_emails().give_back(token, now)
            raise InvalidInput(f"SES refused to send to this address ({exc})", code="send_rejected") from exc
        except SendRefusedForAccount as exc:
            self._test_emails().give_back(token, now)
            raise ServiceBusy(f"SES refuses to send for this account ({exc})") from exc
        except (SendThrottled, SendQuotaExceeded) as exc:
            self._test_emails().give_back(token, now)
            raise ServiceBusy("SES is busy; try again in a moment") from exc
        except SendUncertain as exc:  # it may have gone: it stays counted
            raise ServiceBusy("SES is busy; try again in a moment") from exc


_NOT_MAILED = frozenset({SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED, SubscriberStatus.UNSUBSCRIBED})


def _plausible(delivery_id: str) -> bool:
    return 0 < len(delivery_id) <= 100 and all(ch.isalnum() or ch == "-" for ch in delivery_id)


def _entry(record: LedgerRecord) -> LedgerEntry:
    return LedgerEntry(email=record.email or None, state=record.state, message_id=record.message_id,
                       detail=record.detail, updated_at=record.updated_at)  # fmt: skip
