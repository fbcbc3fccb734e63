"""Erasing a person, and the readers of a deleted topic: jobs of bounded steps that any retry resumes.

A person's erasure (`DELETE /admin/subscribers/{email}`) is keyed on the address as it is stored (its one
canonical form; a record from before addresses were normalized keeps its own spelling), and every key it
removes is derived from that form. First the tombstone: the erasure's own record (ErasureRepository), keyed
by the recipient key of the address, which says where the erasure stands and makes webhook dispatch drop
events about the person. Then, in order (models.erasures.ErasureStep): the address in every ledger record
(found by the `by-recipient` index, a page at a time), in stored webhook bodies, the topic memberships (the
person follows nothing from then on), the confirmation-limit counters named after their mailbox, the consent
record, and the subscriber record last, so that until the very end a retry still finds what to erase.

Each call does at most WORK_PER_CALL items. A request that could not finish answers 202 and queues the rest
(ErasureFunction continues it, a step at a time); a request that fails queues it too, and the editor's retry
resumes it just as well. Every step is idempotent, so two runs of one erasure only repeat harmless writes.

Deleting a topic (TopicCleanup) removes the topic from every reader's record with their membership item, a
page of readers at a time, continuing on the same queue; the slug is free again once the last is gone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from newsdesk.clock import utc_now
from newsdesk.dal.erasures import ErasureRepository, StoredErasure
from newsdesk.dal.ledger import LedgerRepository
from newsdesk.dal.queues import QueuePublisher
from newsdesk.dal.subscribers import SubscriberRepository
from newsdesk.dal.webhooks import WebhookRepository
from newsdesk.errors import NotFound
from newsdesk.models.addresses import normalize_address, stored_forms
from newsdesk.models.erasures import ERASURE_ID_PATTERN, ErasedCounts, Erasure, ErasureState, ErasureStep, ErasureTask
from newsdesk.observability import logger
from newsdesk.services.limits import ConfirmationLimits
from newsdesk.services.recipients import RecipientKeys
from newsdesk.services.topics import TopicService

WORK_PER_CALL = 500
"""Items (ledger records, webhook bodies, a topic's readers) one request or one queue step handles: a few
seconds of writes, well within API Gateway's 29 s and ErasureFunction's timeout. A person in more ledgers
than that is finished by the queue, WORK_PER_CALL records a step."""
PAGE = 100
SCRUB_THREADS = 8
_ERASURE_ID = re.compile(ERASURE_ID_PATTERN)
_STEPS = list(ErasureStep)


@dataclass
class _Done:
    """What one step did: what it removed, whether the step is finished, and if not where it stopped."""

    erased: ErasedCounts = field(default_factory=ErasedCounts)
    finished: bool = True
    position: str | None = None
    work: int = 1


class ErasureService:
    def __init__(
        self,
        jobs: ErasureRepository,
        *,
        subscribers: SubscriberRepository,
        ledger: LedgerRepository,
        webhooks: WebhookRepository,
        limits: Callable[[], ConfirmationLimits],
        recipient_keys: Callable[[], RecipientKeys],
        queue: QueuePublisher,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._jobs = jobs
        self._subscribers = subscribers
        self._ledger = ledger
        self._webhooks = webhooks
        self._limits = limits
        self._recipient_keys = recipient_keys
        self._queue = queue
        self._clock = clock

    def erase(self, email: str) -> Erasure:
        """Erase the person an editor names (any spelling: it is normalized as sign-ups are), or resume their
        erasure; where it stands after this call's share of the work. NotFound when no subscriber is stored
        under that address and none was erased lately."""
        keys = self._recipient_keys()
        forms = stored_forms(email)
        jobs = [self._jobs.begin(keys.of(form), form, self._clock()) for form in forms if self._subscribers.get(form)]
        if not jobs:  # erased already, or stopped after the subscriber record went: its tombstone says which
            jobs = [job for form in forms if (job := self._jobs.get(keys.of(form))) is not None]
        if not jobs:
            raise NotFound("no subscriber with that address")
        states = [self._run(job) for job in jobs]
        return next((state for state in states if state.state is ErasureState.RUNNING), states[0])

    def status(self, erasure_id: str) -> Erasure:
        found = self._jobs.get(erasure_id) if _ERASURE_ID.fullmatch(erasure_id) else None
        if found is None:
            raise NotFound(f"no erasure {erasure_id!r}")
        return found.erasure

    def resume(self, erasure_id: str) -> None:
        """A queued step: continue the erasure, and queue the next step unless it is done. A failure is the
        queue's to retry (the message comes back)."""
        job = self._jobs.get(erasure_id)
        if job is not None and not self._advance(job):
            self._continue_later(erasure_id)

    def _run(self, job: StoredErasure) -> Erasure:
        try:
            done = self._advance(job)
        except BaseException:
            # The request failed (a denied or failing call, a timeout coming): the queue finishes it anyway.
            self._continue_later(job.erasure.id)
            raise
        if not done:
            self._continue_later(job.erasure.id)
        return self.status(job.erasure.id)

    def _continue_later(self, erasure_id: str) -> None:
        self._queue.send([ErasureTask(kind="person", id=erasure_id).model_dump_json()])

    def _advance(self, job: StoredErasure) -> bool:
        """Do steps until done (True) or WORK_PER_CALL items are handled (False)."""
        budget = WORK_PER_CALL
        current: StoredErasure | None = job
        while budget > 0:
            if current is None or current.erasure.state is ErasureState.DONE:
                return True
            step, email = current.erasure.step, current.email
            assert step is not None  # both stay until the erasure is done
            assert email is not None
            done = self._step(step, email, current.position, budget)
            budget -= done.work
            following = _STEPS.index(step) + 1
            now = self._clock()
            if done.finished and following == len(_STEPS):
                if self._jobs.finish(current, now):
                    logger.info("subscriber erased", extra={"erasure_id": current.erasure.id})
                return True
            reached = _STEPS[following] if done.finished else step
            self._jobs.progress(current, step=reached, position=done.position, erased=done.erased, now=now)
            # Read again: another run of this erasure may have moved it on meanwhile.
            current = self._jobs.get(current.erasure.id)
        return current is None or current.erasure.state is ErasureState.DONE

    def _scrub_webhook_bodies(self, subject: str, limit: int) -> tuple[int, bool]:
        """Remove the address (`subject` is its recipient key) from up to `limit` stored delivery bodies, which
        replays then send with `"email": null`; how many held it, and whether more may."""
        found = self._webhooks.deliveries_about(subject, limit=limit)
        scrubbed = 0
        for webhook_id, event_id in found:
            stored = self._webhooks.delivery(webhook_id, event_id)
            if stored is None:
                continue
            body = json.loads(stored.body)
            body["data"]["email"] = None
            scrubbed += self._webhooks.replace_body(webhook_id, event_id, json.dumps(body, separators=(",", ":")))
        return scrubbed, len(found) >= limit

    def _step(self, step: ErasureStep, email: str, position: str | None, budget: int) -> _Done:
        key = self._recipient_keys().of(email)
        if step is ErasureStep.LEDGERS:
            partitions, more = self._ledger.partitions_of(key, limit=min(PAGE, budget), position=position)
            with ThreadPoolExecutor(max_workers=SCRUB_THREADS) as pool:
                scrubbed = sum(pool.map(lambda partition: self._ledger.scrub(partition, key), partitions))
            return _Done(ErasedCounts(ledger_records=scrubbed), more is None, more, max(1, len(partitions)))
        if step is ErasureStep.WEBHOOK_BODIES:
            limit = min(PAGE, budget)
            scrubbed, maybe_more = self._scrub_webhook_bodies(key, limit)
            return _Done(ErasedCounts(webhook_bodies=scrubbed), not maybe_more, work=limit if maybe_more else 1)
        if step is ErasureStep.TOPIC_MEMBERSHIPS:
            removed = self._subscribers.stop_mailing(email, self._clock())
            return _Done(ErasedCounts(topic_memberships=removed))
        if step is ErasureStep.RATE_LIMIT_COUNTERS:
            # Counters are named after the canonical mailbox whatever spelling the record was stored under.
            try:
                canonical = normalize_address(email)
            except ValueError:
                canonical = email
            counters = self._limits().forget(canonical, self._clock())
            return _Done(ErasedCounts(rate_limit_counters=counters))
        if step is ErasureStep.CONSENT:
            self._subscribers.forget_consent(email)
            return _Done()
        self._subscribers.erase(email)
        return _Done()


class TopicCleanup:
    """Deleting a topic: the catalog first (nobody is mailed for it from then on), then its readers, a page at
    a time, each losing the topic from their record with its membership item; the queue continues what one
    request cannot finish."""

    def __init__(
        self,
        topics: TopicService,
        subscribers: SubscriberRepository,
        *,
        queue: QueuePublisher,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._topics = topics
        self._subscribers = subscribers
        self._queue = queue
        self._clock = clock

    def delete(self, slug: str) -> None:
        self._topics.delete(slug)
        try:
            done = self._remove_readers(slug)
        except BaseException:
            self._continue_later(slug)
            raise
        if not done:
            self._continue_later(slug)

    def resume(self, slug: str) -> None:
        # Only while its marker is there: a stale message must not touch a topic of that slug created since.
        if self._topics.being_deleted(slug) and not self._remove_readers(slug):
            self._continue_later(slug)

    def _continue_later(self, slug: str) -> None:
        self._queue.send([ErasureTask(kind="topic", id=slug).model_dump_json()])

    def _remove_readers(self, slug: str) -> bool:
        budget = WORK_PER_CALL
        while budget > 0:
            readers = self._subscribers.topic_readers(slug, limit=min(PAGE, budget))
            if not readers:
                self._topics.deleted(slug)
                logger.info("deleted topic's readers removed", extra={"topic": slug})
                return True
            for email in readers:
                self._subscribers.drop_topic(email, slug, self._clock())
            budget -= len(readers)
        return False
