"""Writing, publishing and reading articles. `ArticleService.publish` is the one publish path."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools.metrics import MetricUnit

from newsdesk.clock import iso, utc_now
from newsdesk.dal.articles import AlreadyAnnounced, ArticleRepository, SlugTaken, VersionConflict
from newsdesk.dal.revisions import RevisionRepository
from newsdesk.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, PreconditionFailed, RoleRequired
from newsdesk.models.articles import (
    EDITABLE_BY_AUTHOR,
    Article,
    ArticleStatus,
    ArticleSummary,
    AuthorPage,
    CreateArticleRequest,
    PublicArticle,
    Transition,
    UpdateArticleRequest,
    byline_of,
)
from newsdesk.models.audit import AuditDetail, AuditEntry, AuditTarget
from newsdesk.models.authors import Author, Byline
from newsdesk.models.people import SYSTEM_SCHEDULE, Actor, Role
from newsdesk.models.revisions import Revision, RevisionSummary
from newsdesk.models.types import SLUG_PATTERN
from newsdesk.observability import logger, metrics
from newsdesk.rendering import MEDIA_BASE_URL, reading_time_minutes, render_markdown, summarize
from newsdesk.services.audit import AuditLog
from newsdesk.slugs import make_slug, normalize_tag


class Dated(Protocol):
    @property
    def published_at(self) -> datetime: ...


Readable = TypeVar("Readable", bound=Dated)

MAX_HTML_BYTES = 192 * 1024
_ARTICLE_ID = re.compile(r"[0-9a-f]{16}")
_SLUG = re.compile(SLUG_PATTERN)
_NUMBERED_SLUG_TRIES = 20


class InvalidTransition(Conflict):
    code = "invalid_transition"


class NotEditable(Conflict):
    code = "not_editable"


class ArticleService:
    """Every write names its `actor`: who may do it is checked here (a contributor only their own articles,
    an editor's work only by an editor), and it is recorded in the audit trail in the write's transaction."""

    def __init__(
        self,
        repository: ArticleRepository,
        *,
        audit: AuditLog | None = None,
        revisions: RevisionRepository | None = None,
        media_base_url: str = "",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._audit = audit or AuditLog(None)
        self._revisions = revisions
        self._media_base_url = media_base_url
        self._clock = clock

    # ------------------------------------------------------------------ editor
    def create(self, request: CreateArticleRequest, *, actor: Actor, article_id: str | None = None) -> Article:
        """A new draft of `actor`'s; `article_id` (16 hex digits) is for callers that must name it before it
        exists, such as an upload that may be retried."""
        now = self._clock()
        html = self._render(request.body)
        authors = self._bylines(request.authors) if request.authors else byline_of(request.author or "")
        draft = Article(
            id=article_id or new_article_id(),
            slug=request.slug or "",
            title=request.title,
            body=request.body,
            html=html,
            author=_names(authors),
            authors=authors,
            summary=request.summary if request.summary is not None else summarize(html),
            custom_summary=request.summary is not None,
            tags=_normalize_tags(request.tags),
            status=ArticleStatus.DRAFT,
            version=1,
            reading_time_minutes=reading_time_minutes(html),
            created_at=now,
            updated_at=now,
            created_by=actor.id,
            revision=1,
        )
        if request.slug:
            self._repo.save(None, draft, audit=self.audit_entry(actor, "article.created", draft),
                            revision=_revision_of(draft, actor))  # fmt: skip
            created = draft
        else:
            created = self._create_with_free_slug(draft, actor)
        metrics.add_metric(name="ArticlesCreated", unit=MetricUnit.Count, value=1)
        logger.info("article created", extra={"article_id": created.id, "slug": created.slug})
        return created

    def _create_with_free_slug(self, draft: Article, actor: Actor) -> Article:
        base = make_slug(draft.title)
        candidates = [base, *(f"{base}-{n}" for n in range(2, _NUMBERED_SLUG_TRIES + 1))]
        for slug in candidates:
            if self._repo.slug_owner(slug) is not None:
                continue
            article = draft.model_copy(update={"slug": slug})
            try:
                self._repo.save(None, article, audit=self.audit_entry(actor, "article.created", article),
                                revision=_revision_of(article, actor))  # fmt: skip
            except SlugTaken:
                continue  # taken between our look and our write; try the next one
            return article
        article = draft.model_copy(update={"slug": f"{base}-{secrets.token_hex(3)}"})
        self._repo.save(None, article, audit=self.audit_entry(actor, "article.created", article),
                        revision=_revision_of(article, actor))  # fmt: skip
        return article

    def get(self, article_id: str) -> Article:
        article = self._repo.get(article_id) if _ARTICLE_ID.fullmatch(article_id) else None
        if article is None:
            raise NotFound(f"no article with id {article_id!r}")
        return article

    def read(self, article_id: str, *, actor: Actor) -> Article:
        """One article as `actor` may see it: a contributor their own only."""
        article = self.get(article_id)
        _check_author(actor, article, "read")
        return article

    def list_admin(
        self, *, status: ArticleStatus | None, limit: int, cursor: str | None, actor: Actor
    ) -> tuple[list[Article], str | None]:
        """Newest first (scheduled ones soonest first); a contributor's list holds their own articles only."""
        if not actor.role.allows(Role.EDITOR):
            return self._repo.list_owned(actor.id, status=status, limit=limit, cursor=cursor)
        return self._repo.list_admin(status=status, limit=limit, cursor=cursor)

    def update(self, article_id: str, request: UpdateArticleRequest, *, if_match: int | None, actor: Actor) -> Article:
        current = self._current(article_id, if_match)
        _check_editable(actor, current, "change")
        changes: dict[str, Any] = request.model_dump(exclude_unset=True)
        if not changes:
            return current
        if "authors" in changes:
            changes["authors"] = self._bylines(changes["authors"])
        elif "author" in changes:
            changes["authors"] = byline_of(changes["author"])
        if "authors" in changes:
            changes["author"] = _names(changes["authors"])
        return self._save_content(current, changes, actor, "article.updated")

    def _save_content(
        self, current: Article, changes: dict[str, Any], actor: Actor, action: str, **details: AuditDetail
    ) -> Article:
        """Apply `changes` (fields of UpdateArticleRequest) to the article: a new version and a new revision,
        with its audit entry, in one transaction."""
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
        now = self._clock()
        updated = current.model_copy(
            update={**update, "version": current.version + 1, "revision": current.revision + 1, "updated_at": now}
        )
        audit = self.audit_entry(actor, action, updated, details={"revision": updated.revision, **details})
        self._repo.save(current, updated, audit=audit, revision=_revision_of(updated, actor))
        return updated

    def delete(self, article_id: str, *, if_match: int | None, actor: Actor) -> None:
        current = self._current(article_id, if_match)
        _check_editable(actor, current, "delete")
        if not actor.role.allows(Role.EDITOR) and current.published_at is not None:
            raise RoleRequired("to delete an article that was published needs the editor role", required="editor",
                               role=actor.role.value)  # fmt: skip
        self._repo.save(current, None, audit=self.audit_entry(actor, "article.deleted", current))
        logger.info("article deleted", extra={"article_id": article_id})
        if self._revisions is not None:
            # After the article: a crash in between leaves revisions nobody can reach, never an article
            # without its history.
            self._revisions.forget(article_id)

    # ------------------------------------------------------------------ revisions
    def revisions(
        self, article_id: str, *, actor: Actor, limit: int, cursor: str | None
    ) -> tuple[list[RevisionSummary], str | None]:
        """The article's kept revisions, newest first (a contributor: of their own articles)."""
        article = self.read(article_id, actor=actor)
        return self._history().page(article.id, limit=limit, cursor=cursor)

    def revision(self, article_id: str, number: int, *, actor: Actor) -> Revision:
        article = self.read(article_id, actor=actor)
        found = self._history().get(article.id, number) if 0 < number <= article.revision else None
        if found is None:
            raise NotFound(f"article {article_id} has no revision {number} (the oldest ones are not kept)")
        return found

    def restore(self, article_id: str, number: int, *, actor: Actor, if_match: int | None = None) -> Article:
        """Make the article's content what revision `number` saved: a new revision (and version) of its own,
        under the same rules as any change (its ETag, and a contributor's own drafts only)."""
        current = self._current(article_id, if_match)
        _check_editable(actor, current, "restore a revision of")
        revision = self.revision(article_id, number, actor=actor)
        changes: dict[str, Any] = {
            "title": revision.title,
            "body": revision.body,
            "tags": revision.tags,
            "author": revision.author,
            "authors": revision.authors or byline_of(revision.author),
            "summary": revision.summary,
        }
        return self._save_content(current, changes, actor, "article.restored", restored=number)

    def preview_of(self, article_id: str, revision: int | None) -> Article | None:
        """The article as a preview link shows it: as it is now, or with the content of a kept `revision`
        (rendered and sanitized as a save would); None when the article or the revision is gone."""
        article = self._repo.get(article_id)
        if article is None or revision is None:
            return article
        found = self._history().get(article_id, revision)
        if found is None:
            return None
        html = render_markdown(found.body, env={MEDIA_BASE_URL: self._media_base_url})
        bylines = found.authors or byline_of(found.author)
        return article.model_copy(
            update={"title": found.title, "body": found.body, "html": html, "tags": found.tags,
                    "author": found.author, "authors": bylines}
        )  # fmt: skip

    def _history(self) -> RevisionRepository:
        assert self._revisions is not None, "this service was built without the revisions table"
        return self._revisions

    # ------------------------------------------------------------------ the review
    def submit(self, article_id: str, *, actor: Actor, if_match: int | None = None) -> Article:
        """Ask for review (its author or an editor); submitting an article in review changes nothing."""
        current = self._current(article_id, if_match)
        _check_author(actor, current, "submit")
        if current.status is ArticleStatus.IN_REVIEW:
            return current
        if current.status not in EDITABLE_BY_AUTHOR:
            raise InvalidTransition(f"a {_named(current.status)} article cannot be submitted for review")
        return self._transition(current, actor, "submit", ArticleStatus.IN_REVIEW)

    def approve(self, article_id: str, *, actor: Actor, if_match: int | None = None) -> Article:
        """An editor approves an article in review (approving it again changes nothing)."""
        current = self._current(article_id, if_match)
        _require_editor(actor, "approve")
        if current.status is ArticleStatus.APPROVED:
            return current
        if current.status is not ArticleStatus.IN_REVIEW:
            raise InvalidTransition(f"only an article in review can be approved; this one is {_named(current.status)}")
        return self._transition(current, actor, "approve", ArticleStatus.APPROVED)

    def request_changes(self, article_id: str, comment: str, *, actor: Actor, if_match: int | None = None) -> Article:
        """An editor sends an article in review (or approved) back to its author, saying what to change."""
        current = self._current(article_id, if_match)
        _require_editor(actor, "ask for changes to")
        if current.status not in (ArticleStatus.IN_REVIEW, ArticleStatus.APPROVED):
            raise InvalidTransition(
                f"changes can be asked for an article in review or approved; this one is {_named(current.status)}"
            )
        return self._transition(current, actor, "request_changes", ArticleStatus.CHANGES_REQUESTED, comment=comment)

    def _transition(
        self,
        current: Article,
        actor: Actor,
        action: str,
        status: ArticleStatus,
        *,
        comment: str | None = None,
        **changes: object,
    ) -> Article:
        now = self._clock()
        moved = current.model_copy(
            update={
                **changes,
                "status": status,
                "version": current.version + 1,
                "updated_at": now,
                "last_transition": Transition(
                    action=action, from_status=current.status, by=actor.id, at=now, comment=comment
                ),
            }
        )
        self._repo.save(current, moved, audit=self.audit_entry(actor, _AUDIT_ACTIONS[action], moved, current=current))
        logger.info("article status changed", extra={"article_id": current.id, "action": action})
        return moved

    # ------------------------------------------------------------------ publishing
    def publish(self, article_id: str, *, actor: Actor, if_match: int | None = None) -> Article:
        """Make the article public (an editor, from any status: a draft too, as before reviews existed). The
        first publish also records the publication (the newsletter's outbox) in the same transaction;
        publishing a published article changes nothing.

        An article under an embargo that has not lifted is published but held: nothing of it is public, no
        newsletter is recorded, and PublishDue makes it public (through here) once the embargo lifts."""
        current = self._current(article_id, if_match)
        _require_editor(actor, "publish")
        if current.public:
            return current
        now = self._clock()
        if current.published_at is None and current.embargo_until is not None and current.embargo_until > now:
            return current if current.held else self._hold(current, actor, now)
        return self.go_public(current, actor, now)

    def _hold(self, current: Article, actor: Actor, now: datetime) -> Article:
        held = current.model_copy(
            update={
                "status": ArticleStatus.PUBLISHED,
                "publish_at": None,
                "version": current.version + 1,
                "updated_at": now,
                "last_transition": Transition(action="publish", from_status=current.status, by=actor.id, at=now),
            }
        )
        self._repo.save(current, held, audit=self.audit_entry(actor, "article.published", held, current=current))
        logger.info("article held until its embargo lifts", extra={"article_id": current.id})
        return held

    def go_public(self, current: Article, actor: Actor, now: datetime, **changes: object) -> Article:
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
                "last_transition": Transition(action="publish", from_status=current.status, by=actor.id, at=now),
                "sitemap_page": page,
                **changes,
            }
        )
        audit = self.audit_entry(actor, "article.published", published, current=current)
        try:
            first_time = self._save_published(current, published, announce=first_time, audit=audit)
        except VersionConflict:
            # A concurrent publish of the same article won: that is the outcome the caller wanted.
            latest = self.get(article_id)
            if latest.public:
                return latest
            raise
        metrics.add_metric(name="ArticlesPublished", unit=MetricUnit.Count, value=1)
        logger.info("article published", extra={"article_id": article_id, "first_time": first_time})
        return published

    def _save_published(
        self, current: Article, published: Article, *, announce: bool, audit: AuditEntry | None
    ) -> bool:
        """Save the publish, with the newsletter's outbox record when `announce`; True if it was recorded."""
        if not announce:
            self._repo.save(current, published, audit=audit)
            return False
        try:
            self._repo.save(current, published, announce=True, audit=audit)
        except AlreadyAnnounced:
            # The id was announced before: an editor deleted its article and its uploaded file made it again.
            # Publish it; its readers had their email, and the record is what keeps them from a second one.
            logger.info("article published again under an id already announced", extra={"article_id": current.id})
            self._repo.save(current, published, audit=audit)
            return False
        return True

    def schedule(self, article_id: str, publish_at: datetime, *, actor: Actor, if_match: int | None = None) -> Article:
        """Publish at `publish_at` (the scheduler does it, through `publish`)."""
        current = self._current(article_id, if_match)
        _require_editor(actor, "schedule")
        if current.status is ArticleStatus.PUBLISHED:
            raise Conflict("the article is already published", code="already_published")
        if publish_at <= self._clock():
            raise InvalidInput("publish_at must be in the future", details=[{"loc": ["body", "publish_at"]}])
        scheduled = self._transition(current, actor, "schedule", ArticleStatus.SCHEDULED, publish_at=publish_at)
        logger.info("article scheduled", extra={"article_id": article_id, "publish_at": publish_at.isoformat()})
        return scheduled

    def unschedule(self, article_id: str, *, actor: Actor, if_match: int | None = None) -> Article:
        """Back to the status it was scheduled from (draft for articles scheduled before reviews existed); an
        article that is not scheduled is left as it is."""
        current = self._current(article_id, if_match)
        _require_editor(actor, "unschedule")
        if current.status is not ArticleStatus.SCHEDULED:
            return current
        before = current.last_transition.from_status if current.last_transition else ArticleStatus.DRAFT
        if before in (ArticleStatus.SCHEDULED, ArticleStatus.PUBLISHED):
            before = ArticleStatus.DRAFT
        return self._transition(current, actor, "unschedule", before, publish_at=None)

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
            return self.publish(article_id, if_match=current.version, actor=SYSTEM_SCHEDULE)
        except (NotFound, PreconditionFailed):
            return None  # deleted or changed meanwhile: the next run looks again

    def _publish_if_due(self, article_id: str, now: datetime) -> Article | None:
        try:
            current = self.get(article_id)
            if current.status is not ArticleStatus.SCHEDULED or current.publish_at is None or current.publish_at > now:
                return None  # rescheduled, unscheduled or published since the query
            return self.publish(article_id, if_match=current.version, actor=SYSTEM_SCHEDULE)
        except (NotFound, PreconditionFailed):
            return None  # deleted or changed meanwhile: the next run looks again

    def unpublish(self, article_id: str, *, actor: Actor, if_match: int | None = None) -> Article:
        """Back to draft (an editor)."""
        current = self._current(article_id, if_match)
        _require_editor(actor, "unpublish")
        if current.status is not ArticleStatus.PUBLISHED:
            return current
        return self._transition(current, actor, "unpublish", ArticleStatus.DRAFT)

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

    def audit_entry(
        self,
        actor: Actor,
        action: str,
        article: Article,
        *,
        current: Article | None = None,
        details: dict[str, AuditDetail] | None = None,
    ) -> AuditEntry | None:
        """The audit entry of a change of `article` (from `current`, for a change of status)."""
        moved = current is not None and current.status is not article.status
        transition = article.last_transition if moved else None
        return self._audit.entry(
            actor,
            action,
            AuditTarget.ARTICLE,
            article.id,
            version=article.version,
            **({"from": current.status.value, "to": article.status.value} if moved and current else {}),
            comment=transition.comment if transition else None,
            **(details or {}),
        )

    def _bylines(self, slugs: list[str]) -> list[Byline]:
        """The bylines of the profiles `slugs` names, in that order; a slug without a profile is a 422."""
        profiles = self._repo.authors(slugs)
        unknown = [slug for slug in slugs if slug not in profiles]
        if unknown:
            raise InvalidInput(
                f"no author profile for {', '.join(unknown)} (see GET /authors)",
                code="unknown_authors",
                details=[{"loc": ["body", "authors"], "slugs": unknown}],
            )
        return [Byline(name=profiles[slug].name, slug=slug) for slug in dict.fromkeys(slugs)]

    # ------------------------------------------------------------------ author pages
    def author_list(self, *, limit: int, cursor: str | None) -> tuple[list[Author], str | None]:
        return self._repo.author_page(limit=limit, cursor=cursor)

    def author_page(self, slug: str, *, limit: int, cursor: str | None) -> AuthorPage:
        """An author's profile and a page of their published articles (one GetItem and one Query)."""
        profile = self._repo.author(slug) if _SLUG.fullmatch(slug) and len(slug) <= 80 else None
        if profile is None:
            raise NotFound(f"no author at {slug!r}")
        items, next_cursor = self._repo.list_public(tag=None, author=slug, limit=limit, cursor=cursor)
        author = Author.model_validate(profile.model_dump(include=set(Author.model_fields)))
        return AuthorPage(author=author, items=items, next_cursor=next_cursor)

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


_AUDIT_ACTIONS = {
    "submit": "article.submitted",
    "approve": "article.approved",
    "request_changes": "article.changes_requested",
    "schedule": "article.scheduled",
    "unschedule": "article.unscheduled",
    "unpublish": "article.unpublished",
}


def _named(status: ArticleStatus) -> str:
    return status.value.replace("_", " ")


def _require_editor(actor: Actor, doing: str) -> None:
    if not actor.role.allows(Role.EDITOR):
        raise RoleRequired(
            f"to {doing} an article needs the editor role", required=Role.EDITOR.value, role=actor.role.value
        )


def _check_author(actor: Actor, article: Article, doing: str) -> None:
    """A contributor may only touch their own articles; an editor any."""
    if not actor.role.allows(Role.EDITOR) and article.created_by != actor.id:
        raise RoleRequired(
            f"to {doing} someone else's article needs the editor role", required=Role.EDITOR.value,
            role=actor.role.value,
        )  # fmt: skip


def _check_editable(actor: Actor, article: Article, doing: str) -> None:
    """A contributor changes their own article only while it is a draft or has changes requested."""
    _check_author(actor, article, doing)
    if not actor.role.allows(Role.EDITOR) and article.status not in EDITABLE_BY_AUTHOR:
        raise NotEditable(
            f"the article is {_named(article.status)}: an editor may {doing} it now, its author only once an"
            " editor asks for changes"
        )


def _names(authors: list[Byline]) -> str:
    """The authors as one line, for `author` (clients from before bylines show it): `A`, `A and B`, `A, B and C`."""
    names = [byline.name for byline in authors]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _revision_of(article: Article, actor: Actor) -> Revision:
    """The revision a save of `article` writes: its content as saved, by whom, and when."""
    return Revision(
        article_id=article.id,
        number=article.revision,
        title=article.title,
        body=article.body,
        tags=article.tags,
        author=article.author,
        authors=article.authors,
        summary=article.summary if article.custom_summary else None,
        by=actor.id,
        at=article.updated_at,
    )


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
