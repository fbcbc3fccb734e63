"""What a news organisation does to an article beyond publishing it (corrections, embargoes, breaking news),
and what readers and search engines read of that (the corrections list, the breaking news, the sitemaps and
each article's structured data). Every change goes through the article's own write, so its public copies,
its list entries, its events and its newsletter stay one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from newsdesk.clock import iso, utc_now
from newsdesk.dal.articles import AlreadyAnnounced, ArticleRepository
from newsdesk.errors import Conflict, InvalidInput, NotFound
from newsdesk.models.articles import Article, ArticleSummary
from newsdesk.models.audit import AuditDetail, AuditEntry
from newsdesk.models.corrections import MAX_CORRECTIONS, Correction, CorrectionEntry, CorrectionRequest
from newsdesk.models.news import SitemapPage, SitemapUrl
from newsdesk.models.people import Actor
from newsdesk.observability import logger
from newsdesk.services.articles import ArticleService

NEWS_WINDOW = timedelta(days=2)
"""Google News sitemaps list the articles published in the last two days."""


class NewsEditor:
    """The editor's side: notes on published articles, embargoes, breaking news."""

    def __init__(
        self, articles: ArticleService, repository: ArticleRepository, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._articles = articles
        self._repo = repository
        self._clock = clock

    def correct(self, article_id: str, request: CorrectionRequest, *, actor: Actor, if_match: int | None) -> Article:
        """Add a correction, clarification or update to a public article: shown with it from now on, for good.
        Its `updated_at` (schema.org's dateModified) moves; no email goes out again."""
        current = self._articles.current(article_id, if_match)
        if not current.public:
            raise Conflict("only a published article carries corrections: edit the draft instead", code="not_public")
        if len(current.corrections) >= MAX_CORRECTIONS:
            raise Conflict(f"an article carries at most {MAX_CORRECTIONS} notes", code="too_many_corrections")
        now = self._clock()
        note = Correction(kind=request.kind, text=request.text, published_at=now)
        corrected = current.model_copy(
            update={"corrections": [*current.corrections, note], "version": current.version + 1, "updated_at": now}
        )
        self._repo.save(
            current, corrected, audit=self._entry(actor, "article.corrected", corrected, kind=request.kind.value)
        )
        logger.info("article corrected", extra={"article_id": article_id, "kind": request.kind.value})
        return corrected

    def embargo(self, article_id: str, until: datetime, *, actor: Actor, if_match: int | None) -> Article:
        """Set or move the embargo of an article nobody has read yet (a draft, a scheduled or a held one)."""
        current = self._articles.current(article_id, if_match)
        if current.published_at is not None:
            raise Conflict("the article has been public already: an embargo cannot take it back",
                           code="already_public")  # fmt: skip
        now = self._clock()
        if until <= now:
            raise InvalidInput("embargo_until must be in the future", details=[{"loc": ["body", "embargo_until"]}])
        embargoed = current.model_copy(update={"embargo_until": until, "version": current.version + 1,
                                               "updated_at": now})  # fmt: skip
        audit = self._entry(actor, "article.embargoed", embargoed, embargo_until=until.isoformat())
        self._repo.save(current, embargoed, audit=audit)
        logger.info("embargo set", extra={"article_id": article_id, "embargo_until": until.isoformat()})
        return embargoed

    def lift_embargo(self, article_id: str, *, actor: Actor, if_match: int | None) -> Article:
        """Remove the embargo: a held article becomes public at once (its newsletter goes out), in one write."""
        current = self._articles.current(article_id, if_match)
        if current.embargo_until is None or current.published_at is not None:
            return current
        now = self._clock()
        if current.held:
            return self._articles.go_public(current, actor, now, embargo_until=None)
        lifted = current.model_copy(update={"embargo_until": None, "version": current.version + 1, "updated_at": now})
        self._repo.save(current, lifted, audit=self._entry(actor, "article.embargo_lifted", lifted))
        return lifted

    def mark_breaking(self, article_id: str, hours: int, *, actor: Actor, if_match: int | None) -> Article:
        """Breaking news for `hours` from now. The first time an article is marked, its alert is recorded in the
        same write (and goes out at once to the readers who asked for alerts); marking it again only moves the
        end: an article is alerted once."""
        current = self._articles.current(article_id, if_match)
        if not current.public:
            raise Conflict("only a published article can be breaking news", code="not_public")
        now = self._clock()
        marked = current.model_copy(
            update={"breaking_until": now + timedelta(hours=hours), "version": current.version + 1, "updated_at": now}
        )
        try:
            self._repo.save(
                current, marked, alert=True, audit=self._entry(actor, "article.breaking", marked, hours=hours)
            )
        except AlreadyAnnounced:
            self._repo.save(current, marked, audit=self._entry(actor, "article.breaking", marked, hours=hours))
            logger.info("breaking news extended (alerted before)", extra={"article_id": article_id})
            return marked
        logger.info("breaking news: alert recorded", extra={"article_id": article_id, "hours": hours})
        return marked

    def end_breaking(self, article_id: str, *, actor: Actor, if_match: int | None) -> Article:
        current = self._articles.current(article_id, if_match)
        if current.breaking_until is None:
            return current
        ended = current.model_copy(update={"breaking_until": None, "version": current.version + 1,
                                           "updated_at": self._clock()})  # fmt: skip
        self._repo.save(current, ended, audit=self._entry(actor, "article.breaking_ended", ended))
        return ended

    def _entry(self, actor: Actor, action: str, article: Article, **details: AuditDetail) -> AuditEntry | None:
        return self._articles.audit_entry(actor, action, article, details=details)


class NewsReader:
    """The readers' and search engines' side; each read is bounded by its page, and checks the time (an
    article is readable from its `published_at`, whatever was stored)."""

    def __init__(
        self, articles: ArticleService, repository: ArticleRepository, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._articles = articles
        self._news = repository.news
        self._clock = clock

    def corrections(self, *, limit: int, cursor: str | None) -> tuple[list[CorrectionEntry], str | None]:
        items, next_cursor = self._news.corrections(limit=limit, cursor=cursor)
        return self._articles.readable(items), next_cursor

    def breaking(self, *, limit: int, cursor: str | None) -> tuple[list[ArticleSummary], str | None]:
        items, next_cursor = self._news.breaking(now_iso=iso(self._clock()), limit=limit, cursor=cursor)
        return self._articles.readable(items), next_cursor

    def sitemap_pages(self) -> list[SitemapPage]:
        """The sitemap pages that list something, each with its newest change: one read, then one item read per
        page (a page holds 50,000 articles)."""
        pages = []
        for number in range(1, self._news.sitemap_pages() + 1):
            lastmod = self._news.sitemap_lastmod(number)
            if lastmod is not None:
                pages.append(SitemapPage(number=number, lastmod=datetime.fromisoformat(lastmod)))
        return pages

    def sitemap(self, number: int) -> list[SitemapUrl]:
        if not 1 <= number <= self._news.sitemap_pages():
            raise NotFound(f"no sitemap page {number}")
        return self._articles.readable(self._news.sitemap(number))

    def news(self) -> list[ArticleSummary]:
        """What Google News lists: the articles published in the last two days (at most 1,000), newest first."""
        now = self._clock()
        return self._articles.readable(self._news.published_since(iso(now - NEWS_WINDOW)))
