"""An article's revisions: what each save wrote (who, when, title, body, tags), kept to restore from and to
preview; and the share links that show a draft to someone without a token."""

from datetime import datetime

from pydantic import ConfigDict, Field

from newsdesk.models.authors import Byline
from newsdesk.models.base import Model


class Revision(Model):
    """One save of an article: the content as that save left it."""

    article_id: str
    number: int = Field(description="1 for the article's first save, then one more per save.")
    title: str
    body: str = Field(description="The Markdown.")
    tags: list[str]
    author: str
    authors: list[Byline] = Field(default_factory=list)
    summary: str | None = Field(default=None, description="The summary the save gave; null: derived from the body.")
    by: str = Field(description="Who saved it: a person's id (`token:<id>`, `system:upload`...).")
    at: datetime


class RevisionSummary(Model):
    """A revision as the list shows it (without its body)."""

    number: int
    title: str
    tags: list[str]
    by: str
    at: datetime


class RevisionPage(Model):
    items: list[RevisionSummary]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for older revisions.")


class StoredPreview(Model):
    """A share link's record: it exists until the link expires (and a day after, then DynamoDB's TTL removes
    it); revoking it is a mark here, so the link stops at once whatever its signature says."""

    id: str
    article_id: str
    revision: int | None = Field(default=None, description="The revision it shows; null: the current draft.")
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class Preview(StoredPreview):
    url: str | None = Field(default=None, description="The link itself: only in the answer that creates it.")


class CreatePreviewRequest(Model):
    model_config = ConfigDict(extra="forbid")

    revision: int | None = Field(default=None, ge=1, description="Show this revision; absent: the current draft.")
    expires_in_hours: int = Field(
        default=72, ge=1, le=24 * 30, description="How long the link works (at most 30 days)."
    )


class PreviewPage(Model):
    items: list[Preview]
    next_cursor: str | None = None
