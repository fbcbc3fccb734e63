"""Draft previews: signed, expiring, revocable share links that show an article (its current content or one
revision) to someone without a token.

The link's token is made by the link signer (an HMAC over the preview's id and article, under a key only
the stack holds), so it cannot be forged or pointed at another article; its record says when it expires
and whether it was revoked, so revoking stops it at once whatever its signature says.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from newsdesk.clock import utc_now
from newsdesk.dal.revisions import PreviewRepository
from newsdesk.errors import NotFound
from newsdesk.models.articles import Article
from newsdesk.models.audit import AuditTarget
from newsdesk.models.people import Actor
from newsdesk.models.revisions import CreatePreviewRequest, Preview, StoredPreview
from newsdesk.services.articles import ArticleService
from newsdesk.services.audit import AuditLog
from newsdesk.services.links import InvalidLink, LinkPurpose, LinkSigner

_ID = re.compile(r"[0-9a-f]{16}")


class Unavailable(StrEnum):
    """Why a link that was made here shows nothing (a 410 page says which)."""

    EXPIRED = "expired"
    REVOKED = "revoked"
    GONE = "gone"
    """The article was deleted, or the revision is no longer kept."""


@dataclass(frozen=True)
class Shown:
    """What a working link shows: the article's title, byline and HTML (sanitized), as of `revision`."""

    article: Article
    revision: int | None
    expires_at: datetime


class PreviewService:
    def __init__(
        self,
        previews: PreviewRepository,
        *,
        articles: ArticleService,
        links: Callable[[], LinkSigner],
        audit: AuditLog,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._previews = previews
        self._articles = articles
        self._links = links
        self._audit = audit
        self._clock = clock

    # ------------------------------------------------------------------ the newsroom
    def create(self, article_id: str, request: CreatePreviewRequest, *, actor: Actor) -> Preview:
        """A link to the article (its author, or an editor), or to one of its kept revisions."""
        article = self._articles.read(article_id, actor=actor)
        if request.revision is not None:
            self._articles.revision(article_id, request.revision, actor=actor)  # 404 unless it is kept
        now = self._clock()
        stored = StoredPreview(
            id=secrets.token_hex(8),
            article_id=article.id,
            revision=request.revision,
            created_by=actor.id,
            created_at=now,
            expires_at=now + timedelta(hours=request.expires_in_hours),
        )
        self._previews.put(stored)
        self._audit.record(actor, "preview.created", AuditTarget.ARTICLE, article.id, preview=stored.id,
                           revision=request.revision, expires_at=stored.expires_at.isoformat())  # fmt: skip
        links = self._links()
        token = links.token(LinkPurpose.PREVIEW, stored.id, {"a": article.id})
        return Preview(**stored.model_dump(), url=f"{links.base_url}/preview/{token}")

    def page(
        self, article_id: str, *, actor: Actor, limit: int, cursor: str | None
    ) -> tuple[list[Preview], str | None]:
        article = self._articles.read(article_id, actor=actor)
        items, next_cursor = self._previews.page(article.id, limit=limit, cursor=cursor)
        return [Preview(**item.model_dump()) for item in items], next_cursor

    def revoke(self, article_id: str, preview_id: str, *, actor: Actor) -> Preview:
        """Stop the link at once (revoking it again changes nothing)."""
        article = self._articles.read(article_id, actor=actor)
        found = self._previews.get(article.id, preview_id) if _ID.fullmatch(preview_id) else None
        if found is None or not self._previews.revoke(article.id, preview_id, self._clock()):
            raise NotFound(f"the article has no preview link {preview_id!r}")
        if found.revoked_at is None:
            self._audit.record(actor, "preview.revoked", AuditTarget.ARTICLE, article.id, preview=preview_id)
        revoked = self._previews.get(article.id, preview_id)
        return Preview(**(revoked or found).model_dump())

    # ------------------------------------------------------------------ whoever has the link
    def open(self, token: str) -> Shown | Unavailable:
        """What the link shows, or why it shows nothing; NotFound for a token that is not one of ours."""
        try:
            opened = self._links().open(LinkPurpose.PREVIEW, token)
        except InvalidLink as exc:
            raise NotFound("this preview link is not valid") from exc
        article_id = opened.details.get("a")
        if not isinstance(article_id, str) or not _ID.fullmatch(article_id) or not _ID.fullmatch(opened.email):
            raise NotFound("this preview link is not valid")
        record = self._previews.get(article_id, opened.email)
        now = self._clock()
        if record is None:
            # Deleted with its article, or forgotten a day after it expired.
            return Unavailable.GONE if self._articles.preview_of(article_id, None) is None else Unavailable.EXPIRED
        if record.revoked_at is not None:
            return Unavailable.REVOKED
        if record.expires_at <= now:
            return Unavailable.EXPIRED
        shown = self._articles.preview_of(article_id, record.revision)
        if shown is None:
            return Unavailable.GONE
        return Shown(shown, record.revision, record.expires_at)
