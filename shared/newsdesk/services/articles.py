"""Writing, publishing and reading articles. `ArticleService.publish` is the one publish path."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from aws_lambda_powertools.metrics import MetricUnit

from newsdesk.clock import iso, utc_now
from newsdesk.dal.articles import AlreadyAnnounced, ArticleRepository, SlugTaken, VersionConflict
from newsdesk.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, PreconditionFailed
from newsdesk.models.articles import (
    Article,
    ArticleStatus,
    ArticleSummary,
    CreateArticleRequest,
    PublicArticle,
    UpdateArticleRequest,
)
from newsdesk.models.types import SLUG_PATTERN
from newsdesk.observability import logger, metrics
from newsdesk.rendering import MEDIA_BASE_URL, reading_time_minutes, render_markdown, summarize
from newsdesk.slugs import make_slug, normalize_tag


class Dated(Protocol):
    @property
    def published_at(self) -> datetime: ...


Readable = TypeVar("Readable", bound=Dated)

MAX_HTML_BYTES = 192 * 1024
_ARTICLE_ID = re.compile(r"[0-9a-f]{16}")
_SLUG = re.compile(SLUG_PATTERN)
_NUMBERED_SLUG_TRIES = 20


class ArticleService:
    def __init__(
        self,
        repository: ArticleRepository,
        *,
        media_base_url: str = "",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._media_base_url = media_base_url
        self._clock = clock

    # ------------------------------------------------------------------ editor
    def create(self, request: CreateArticleRequest, *, article_id: str | None = None) -> Article:
        """A new draft; `article_id` (16 hex digits) is for callers that must name it before it exists,
        such as an upload that may be retried."""
        now = self._clock()
        html = self._render(request.body)
        draft = Article(
            id=article_id or new_article_id(),
            slug=request.slug or "",
            title=request.title,
            body=request.body,
            html=html,
            author=request.author,
            summary=request.summary if request.summary is not None else summarize(html),
            custom_summary=request.summary is not None,
            tags=_normalize_tags(request.tags),
            status=ArticleStatus.DRAFT,
            version=1,
            reading_time_minutes=reading_time_minutes(html),
            created_at=now,
            updated_at=now,
        )
        if request.slug:
            self._repo.save(None, draft)
            created = draft
        else:
            created = self._create_with_free_slug(draft)
        metrics.add_metric(name="ArticlesCreated", unit=MetricUnit.Count, value=1)
        logger.info("article created", extra={"article_id": created.id, "slug": created.slug})
        return created

    def _create_with_free_slug(self, draft: Article) -> Article:
        base = make_slug(draft.title)
        candidates = [base, *(f"{base}-{n}" for n in range(2, _NUMBERED_SLUG_TRIES + 1))]
        for slug in candidates:
            if self._repo.slug_owner(slug) is not None:
                continue
            article = draft.model_copy(update={"slug": slug})
            try:
                self._repo.save(None, article)
            except SlugTaken:
                continue  # taken between our look and our write; try the next one
            return article
        article = draft.model_copy(update={"slug": f"{base}-{secrets.token_hex(3)}"})
        self._repo.save(None, article)
        return article

    def get(self, article_id: str) -> Article:
        article = self._repo.get(article_id) if _ARTICLE_ID.fullmatch(article_id) else None
        if article is None:
            raise NotFound(f"no article with id {article_id!r}")
        return article

    def list_admin(
        self, *, status: ArticleStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Article], str | None]:
        return self._repo.list_admin(status=status, limit=limit, cursor=cursor)

    def update(self, article_id: str, request: UpdateArticleRequest, *, if_match: int | None) -> Article:
        current = self._current(article_id, if_match)
        changes = request.model_dump(exclude_unset=True)
        if not changes:
            return current
        update: dict[str, object] = {k: v for k, v in changes.items() if k != "summary"}
        html = self._render(changes["body"]) if "body" in changes else current.html
        if "body" in changes:
            update.update(html=html, reading_time_minutes=reading_time_minutes(html))
        if "tags" in changes:
            update["tags"] = _normalize_tags(changes["tags"])
        if "summary" in changes:
            explicit = changes["summary"]
            update.update(summary=explicit if explicit is not None else summarize(html),
                          custom_summary=explicit is not None)  # fmt: skip
        elif not current.custom_summary:
            update["summary"] = summarize(html)
        updated = current.model_copy(update={**update, "version": current.version + 1, "updated_at": self._clock()})
        self._repo.save(current, updated)
        return updated

    def delete(self, article_id: str, *, if_match: int | None) -> None:
        current = self._current(article_id, if_match)
        self._repo.save(current, None)
        logger.info("article deleted", extra={"article_id": article_id})

    def publish(self, article_id: str, *, if_match: int | None = None) -> Article:
        """Make the article public. The first publish also records the publication (the newsletter's
        outbox) in the same transaction; publishing a published article changes nothing.

        An article under an embargo that has not lifted is published but held: nothing of it is public, no
        newsletter is recorded, and PublishDue makes it public (through here) once the embargo lifts."""
        current = self._current(article_id, if_match)
        if current.public:
            return current
        now = self._clock()
        if current.published_at is None and current.embargo_until is not None and current.embargo_until > now:
            return current if current.held else self._hold(current, now)
        return self.go_public(current, now)

    def _hold(self, current: Article, now: datetime) -> Article:
        held = current.model_copy(
            update={
                "status": ArticleStatus.PUBLISHED,
                "publish_at": None,
                "version": current.version + 1,
                "updated_at": now,
            }
        )
        self._repo.save(current, held)
        logger.info("article held until its embargo lifts", extra={"article_id": current.id})
        return held

    def go_public(self, current: Article, now: datetime, **changes: object) -> Article:
        """The one way an article becomes public (publish, a lifted embargo), with `changes` in the same write.
        A first publish takes the article's place in the sitemap pages and records its newsletter."""
        article_id = current.id
        first_time = current.published_at is None
        page = current.sitemap_page if current.sitemap_page is not None else self._repo.news.next_sitemap_page()
        published = current.model_copy(
            update={
                "status": ArticleStatus.PUBLISHED,
                "published_at": current.published_at or now,
                "publish_at": None,
                "version": current.version + 1,
                "updated_at": now,
                "sitemap_page": page,
                **changes,
            }
        )
        try:
            first_time = self._save_published(current, published, announce=first_time)
        except VersionConflict:
            # A concurrent publish of the same article won: that is the outcome the caller wanted.
            latest = self.get(article_id)
            if latest.public:
                return latest
            raise
        metrics.add_metric(name="ArticlesPublished", unit=MetricUnit.Count, value=1)
        logger.info("article published", extra={"article_id": article_id, "first_time": first_time})
        return published

    def _save_published(self, current: Article, published: Article, *, announce: bool) -> bool:
        """Save the publish, with the newsletter's outbox record when `announce`; True if it was recorded."""
        if not announce:
            self._repo.save(current, published)
            return False
        try:
            self._repo.save(current, published, announce=True)
        except AlreadyAnnounced:
            # The id was announced before: an editor deleted its article and its uploaded file made it again.
            # Publish it; its readers had their email, and the record is what keeps them from a second one.
            logger.info("article published again under an id already announced", extra={"article_id": current.id})
            self._repo.save(current, published)
            return False
        return True

    def schedule(self, article_id: str, publish_at: datetime, *, if_match: int | None = None) -> Article:
        """Publish at `publish_at` (the scheduler does it, through `publish`)."""
        current = self._current(article_id, if_match)
        if current.status is ArticleStatus.PUBLISHED:
            raise Conflict("the article is already published", code="already_published")
        if publish_at <= self._clock():
            raise InvalidInput("publish_at must be in the future", details=[{"loc": ["body", "publish_at"]}])
        scheduled = current.model_copy(
            update={
                "status": ArticleStatus.SCHEDULED,
                "publish_at": publish_at,
                "version": current.version + 1,
                "updated_at": self._clock(),
            }
        )
        self._repo.save(current, scheduled)
        logger.info("article scheduled", extra={"article_id": article_id, "publish_at": publish_at.isoformat()})
        return scheduled

    def unschedule(self, article_id: str, *, if_match: int | None = None) -> Article:
        """Back to draft; a draft or published article is left as it is."""
        current = self._current(article_id, if_match)
        if current.status is not ArticleStatus.SCHEDULED:
            return current
        draft = current.model_copy(
            update={
                "status": ArticleStatus.DRAFT,
                "publish_at": None,
                "version": current.version + 1,
                "updated_at": self._clock(),
            }
        )
        self._repo.save(current, draft)
        return draft

    def publish_due(self, *, limit: int = 100) -> list[Article]:
        """Publish every scheduled article whose time has come (oldest first). Safe to run twice at once:
        each publish is conditional on the version it read, and an article is only announced once.

        A run pages past what it has seen, so it looks at each due article once: one that cannot be
        published now waits for the next run instead of being read again and again in this one."""
        published: list[Article] = []
        now = self._clock()
        cursor: str | None = None
        while True:
            due, cursor = self._repo.due_scheduled(now_iso=iso(now), limit=limit, cursor=cursor)
            for article in due:
                result = self._publish_if_due(article.id, now)
                if result is not None:
                    published.append(result)
            if cursor is None:
                break
        # Then every held article whose embargo has lifted (one scheduled for a time within its embargo was
        # held just now: it waits for its own time).
        while True:
            released, cursor = self._repo.news.due_releases(now_iso=iso(now), limit=limit, cursor=cursor)
            for article_id in released:
                result = self._release_if_due(article_id, now)
                if result is not None:
                    published.append(result)
            if cursor is None:
                return published

    def _release_if_due(self, article_id: str, now: datetime) -> Article | None:
        try:
            current = self.get(article_id)
            if not current.held or (current.embargo_until is not None and current.embargo_until > now):
                return None  # released, unpublished or moved since the query
            return self.publish(article_id, if_match=current.version)
        except (NotFound, PreconditionFailed):
            return None  # deleted or changed meanwhile: the next run looks again

    def _publish_if_due(self, article_id: str, now: datetime) -> Article | None:
        try:
            current = self.get(article_id)
            if current.status is not ArticleStatus.SCHEDULED or current.publish_at is None or current.publish_at > now:
                return None  # rescheduled, unscheduled or published since the query
            return self.publish(article_id, if_match=current.version)
        except (NotFound, PreconditionFailed):
            return None  # deleted or changed meanwhile: the next run looks again

    def unpublish(self, article_id: str, *, if_match: int | None = None) -> Article:
        current = self._current(article_id, if_match)
        if current.status is not ArticleStatus.PUBLISHED:
            return current
        draft = current.model_copy(
            update={"status": ArticleStatus.DRAFT, "version": current.version + 1, "updated_at": self._clock()}
        )
        self._repo.save(current, draft)
        logger.info("article unpublished", extra={"article_id": article_id})
        return draft

    def _current(self, article_id: str, if_match: int | None) -> Article:
        return self.current(article_id, if_match)

    def current(self, article_id: str, if_match: int | None) -> Article:
        """The article, if it is still at version `if_match` (any version when None); else PreconditionFailed."""
        current = self.get(article_id)
        if if_match is not None and if_match != current.version:
            raise PreconditionFailed(
                f"the article is at version {current.version}, not {if_match}",
                details={"current_version": current.version},
            )
        return current

    def restore_feeds(self, *, attempts: int = 3) -> int:
        """Give every published article each feed entry it should have. Articles published before a feed
        existed (such as `tag-author`, for `?tag=&author=`) lack its entries until then; an edit writes
        only the entries it changes. Safe to run at any time, and again; returns the articles looked at."""
        looked_at = 0
        cursor: str | None = None
        while True:
            page, cursor = self._repo.list_admin(status=ArticleStatus.PUBLISHED, limit=100, cursor=cursor)
            for listed in page:
                article: Article | None = listed
                for _ in range(attempts):
                    if article is None or article.status is not ArticleStatus.PUBLISHED:
                        break  # deleted or unpublished meanwhile: no feed entries to restore
                    if article.public and article.sitemap_page is None:
                        # Published before the sitemaps: its page is given now (a version of its own).
                        article = self._give_sitemap_page(article)
                        if article is None:
                            article = self._repo.get(listed.id)
                            continue
                    if self._repo.restore_feed_entries(article):
                        break
                    article = self._repo.get(listed.id)  # changed meanwhile: the list may be behind
                looked_at += 1
            if cursor is None:
                return looked_at

    def _give_sitemap_page(self, article: Article) -> Article | None:
        paged = article.model_copy(
            update={"sitemap_page": self._repo.news.next_sitemap_page(), "version": article.version + 1}
        )
        try:
            self._repo.save(article, paged)
        except VersionConflict:
            return None
        return paged

    # ------------------------------------------------------------------ readers
    def list_public(
        self, *, tag: str | None, author: str | None, limit: int, cursor: str | None
    ) -> tuple[list[ArticleSummary], str | None]:
        items, next_cursor = self._repo.list_public(
            tag=normalize_tag(tag) if tag else None, author=author, limit=limit, cursor=cursor
        )
        return self.readable(items), next_cursor

    def feed_articles(self, limit: int) -> list[PublicArticle]:
        """The newest published articles with their HTML, newest first: one Query and one BatchGetItem."""
        items, _ = self._repo.list_public(tag=None, author=None, limit=limit, cursor=None)
        found = self._repo.get_public_many([item.slug for item in self.readable(items)])
        # An article unpublished between the two reads is left out.
        return [found[item.slug] for item in items if item.slug in found]

    def get_public(self, slug: str) -> PublicArticle:
        article = self._repo.get_public(slug) if _SLUG.fullmatch(slug) and len(slug) <= 80 else None
        if article is None or not self.readable([article]):
            raise NotFound(f"no published article at {slug!r}")
        return article

    def readable(self, items: list[Readable]) -> list[Readable]:
        """What readers may see of `items` now. Checked on every public read, whatever was stored: an article is
        public from its `published_at` on, which a held article takes only when its embargo lifts."""
        now = self._clock()
        return [item for item in items if item.published_at <= now]

    def _render(self, body: str) -> str:
        html = render_markdown(body, env={MEDIA_BASE_URL: self._media_base_url})
        if len(html.encode("utf-8")) > MAX_HTML_BYTES:
            raise PayloadTooLarge(f"the rendered article is larger than {MAX_HTML_BYTES} bytes")
        return html


def new_article_id() -> str:
    return secrets.token_hex(8)


def _normalize_tags(tags: list[str]) -> list[str]:
    normalized: list[str] = []
    for tag in tags:
        value = normalize_tag(tag)
        if not value:
            raise InvalidInput(f"tag {tag!r} has no letters or digits", details=[{"loc": ["body", "tags"]}])
        if value not in normalized:
            normalized.append(value)
    return normalized
