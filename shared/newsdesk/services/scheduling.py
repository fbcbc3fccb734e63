"""What the schedules run: due articles, the digest, and housekeeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from newsdesk.clock import iso, utc_now
from newsdesk.dal.articles import ArticleRepository
from newsdesk.dal.publications import PublicationRepository
from newsdesk.models.delivery import DeliveryState
from newsdesk.models.subscribers import Frequency
from newsdesk.observability import logger
from newsdesk.services.delivery import FanoutService

DIGEST_PERIOD = timedelta(days=7)
DIGEST_MAX_ARTICLES = 50
STUCK_AFTER = timedelta(minutes=15)


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
        if not self._publications.record_digest(run, start=start, end=end, article_ids=[a.id for a in articles]):
            logger.info("digest run already recorded", extra={"run": run})
            return 0
        logger.info("digest recorded", extra={"run": run, "articles": len(articles)})
        return len(articles)


class Housekeeping:
    """Re-drives deliveries that got stuck. (Unconfirmed subscribers and old upload records expire by
    DynamoDB's TTL; nothing to do for them here.)"""

    def __init__(
        self,
        *,
        publications: PublicationRepository,
        fanout: FanoutService,
        redrive: Callable[[], int],
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
        redriven = self._redrive()
        logger.info("housekeeping done", extra={"restarted": restarted, "redriven": redriven})
        return {"restarted": restarted, "redriven": redriven}
