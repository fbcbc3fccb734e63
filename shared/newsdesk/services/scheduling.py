"""What the schedules run: due articles, the digest, and housekeeping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsdesk.clock import iso, utc_now
from newsdesk.dal.articles import ArticleRepository
from newsdesk.dal.publications import PublicationRepository
from newsdesk.dal.queues import DeadLetterQueue
from newsdesk.dal.redrives import RedriveRounds
from newsdesk.models.delivery import DeliveryState
from newsdesk.models.subscribers import Frequency
from newsdesk.observability import logger
from newsdesk.services.delivery import FanoutService

DIGEST_PERIOD = timedelta(days=7)
DIGEST_MAX_ARTICLES = 50
STUCK_AFTER = timedelta(minutes=15)
# Daily housekeeping runs in a row that may redrive a dead-letter queue that is never found empty.
MAX_REDRIVE_ROUNDS = 3
# Fan-out tasks have no concurrency limit: a redrive starts them at this pace rather than all at once.
REDRIVE_MESSAGES_PER_SECOND = 10


class DigestService:
    def __init__(
        self,
        *,
        articles: ArticleRepository,
        publications: PublicationRepository,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._articles = articles
        self._publications = publications
        self._clock = clock

    def run(self, run: str) -> int:
        """Queue one digest of what was published since the previous digest, for every digest subscriber.

        `run` names the scheduled run: the same run delivered twice records (and sends) one digest. No
        digest goes out when nothing was published; the window then stays open for the next run.
        """
        end = self._clock()
        start = self._publications.last_digest_end() or end - DIGEST_PERIOD
        articles = self._articles.published_between(iso(start), iso(end), limit=DIGEST_MAX_ARTICLES)
        if not articles:
            logger.info("no digest: nothing published", extra={"since": iso(start)})
            return 0
        # The articles' tags decide the digest's topics when it starts; each reader's digest lists the articles
        # of the topics they follow (all of them for a subscriber of everything), and a reader of none of
        # them gets none.
        tags = sorted({tag for article in articles for tag in article.tags})
        recorded = self._publications.record_digest(
            run, start=start, end=end, article_ids=[a.id for a in articles], tags=tags
        )
        if not recorded:
            logger.info("digest run already recorded", extra={"run": run})
            return 0
        logger.info("digest recorded", extra={"run": run, "articles": len(articles)})
        return len(articles)


@dataclass(frozen=True)
class RedriveReport:
    redriven: int = 0  # messages handed to SQS move tasks, back to their queues
    held: int = 0  # messages left in dead-letter queues whose redrive rounds are spent

    def __add__(self, other: RedriveReport) -> RedriveReport:
        return RedriveReport(self.redriven + other.redriven, self.held + other.held)


class DeadLetterRedrive:
    """Hands dead letters back to their queues with SQS's own move task, a bounded number of times.

    SQS makes each moved message a new one (new id, receive count and retention period), so a message
    cannot carry how often it was redriven, and one that fails whatever happens would go round forever.
    The count is kept per dead-letter queue instead: each run that finds a queue holding messages redrives
    it and counts a round; a run that finds it empty (all that was redriven went through) starts the count
    again. After MAX_REDRIVE_ROUNDS rounds in a row the messages stay put: the queue's alarm stays on,
    and an operator reads them and redrives them once the cause is fixed (README, "Alarms").
    """

    def __init__(
        self,
        queues: Sequence[DeadLetterQueue],
        rounds: RedriveRounds,
        *,
        max_rounds: int = MAX_REDRIVE_ROUNDS,
        messages_per_second: int = REDRIVE_MESSAGES_PER_SECOND,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._queues = queues
        self._rounds = rounds
        self._max_rounds = max_rounds
        self._rate = messages_per_second
        self._clock = clock

    def run(self) -> RedriveReport:
        return sum((self._redrive(queue) for queue in self._queues), RedriveReport())

    def _redrive(self, queue: DeadLetterQueue) -> RedriveReport:
        letters = queue.look()
        rounds = self._rounds.count(letters.queue)
        if not letters.waiting:
            if rounds:
                self._rounds.clear(letters.queue)
            return RedriveReport()
        if rounds >= self._max_rounds:
            logger.warning(
                "dead letters held: redriven on every run and still failing",
                extra={"queue": letters.queue, "messages": letters.waiting, "rounds": rounds},
            )
            return RedriveReport(held=letters.waiting)
        if not queue.start_redrive(letters.arn, messages_per_second=self._rate):
            logger.warning("dead letters not redriven: SQS refused a move task", extra={"queue": letters.queue})
            return RedriveReport()
        rounds = self._rounds.add(letters.queue, self._clock())
        logger.info(
            "dead letters redriven", extra={"queue": letters.queue, "messages": letters.waiting, "round": rounds}
        )
        return RedriveReport(redriven=letters.waiting)


class Housekeeping:
    """Re-drives deliveries that got stuck, and dead letters. (Unconfirmed subscribers and old upload
    records expire by DynamoDB's TTL; nothing to do for them here.)"""

    def __init__(
        self,
        *,
        publications: PublicationRepository,
        fanout: FanoutService,
        redrive: Callable[[], RedriveReport],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._publications = publications
        self._fanout = fanout
        self._redrive = redrive
        self._clock = clock

    def run(self) -> dict[str, int]:
        restarted = 0
        for delivery_id, state in self._publications.open_since(self._clock() - STUCK_AFTER):
            if state is DeliveryState.PENDING:
                # The stream never handed this publication on (its records expire after 24 hours).
                record = self._publications.publication(delivery_id) or {}
                self._fanout.start(delivery_id, Frequency(record.get("frequency", Frequency.INSTANT.value)))
                restarted += 1
        redrive = self._redrive()
        report = {"restarted": restarted, "redriven": redrive.redriven, "held": redrive.held}
        logger.info("housekeeping done", extra=report)
        return report
