"""Article shapes: what editors send, what the service works with, and what readers and editors get back."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from newsdesk.models.corrections import Correction
from newsdesk.models.types import AuthorName, MarkdownBody, Slug, Summary, Tags, Title


class ArticleStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateArticleRequest(_Request):
    title: Title
    body: MarkdownBody = Field(description="Markdown; rendered and sanitized on save.")
    author: AuthorName
    summary: Summary | None = None
    tags: Tags = Field(default_factory=list)
    slug: Slug | None = Field(default=None, description="Generated from the title when absent.")


class UpdateArticleRequest(_Request):
    """Only the fields present are changed; `summary: null` goes back to a summary derived from the body."""

    title: Title | None = None
    body: MarkdownBody | None = None
    author: AuthorName | None = None
    summary: Summary | None = None
    tags: Tags | None = None
    slug: Slug | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> UpdateArticleRequest:
        nulls = sorted(name for name in self.model_fields_set if name != "summary" and getattr(self, name) is None)
        if nulls:
            raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return self


def _aware_future(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a UTC offset, for example 2026-12-01T06:00:00+01:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise ValueError("is out of range once converted to UTC") from None


PublishTime = Annotated[datetime, AfterValidator(_aware_future)]
"""When to publish: ISO 8601 with a UTC offset (the API and uploaded files alike), converted to UTC."""


class ScheduleRequest(_Request):
    publish_at: PublishTime = Field(description="ISO 8601 with a UTC offset; stored and shown in UTC.")


class Article(BaseModel):
    """The editor's full view of an article, as stored."""

    id: str
    slug: str
    title: str
    body: str
    html: str
    author: str
    summary: str
    custom_summary: bool = Field(default=False, description="False when the summary is derived from the body.")
    tags: list[str]
    status: ArticleStatus
    version: int
    reading_time_minutes: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = None
    publish_at: datetime | None = None
    corrections: list[Correction] = Field(default_factory=list, description="Notes added since it was published.")
    embargo_until: datetime | None = Field(
        default=None,
        description="Not public before this time, even while `published` (`published_at` is null until then).",
    )
    breaking_until: datetime | None = Field(default=None, description="Breaking news until this time.")
    sitemap_page: int | None = Field(
        default=None, description="The sitemap page that lists it (from its first publish)."
    )

    @property
    def public(self) -> bool:
        """Published, and not held by an embargo: its public copies exist."""
        return self.status is ArticleStatus.PUBLISHED and self.published_at is not None

    @property
    def held(self) -> bool:
        """Published under an embargo that has not lifted yet: nothing of it is public."""
        return self.status is ArticleStatus.PUBLISHED and self.published_at is None


class ArticleSummary(BaseModel):
    """One entry of a public list."""

    id: str
    slug: str
    title: str
    summary: str
    author: str
    tags: list[str]
    published_at: datetime
    reading_time_minutes: int
    updated_at: datetime | None = Field(
        default=None, description="When the article last changed (absent on copies made before it was recorded)."
    )

    @property
    def changed_at(self) -> datetime:
        return self.updated_at or self.published_at


class PublicArticle(ArticleSummary):
    html: str = Field(description="Sanitized HTML rendered from the Markdown body.")
    corrections: list[Correction] = Field(
        default_factory=list, description="Corrections, clarifications and updates, oldest first."
    )
    breaking_until: datetime | None = Field(default=None, description="Breaking news until this time.")


class ArticlePage(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


class AdminArticlePage(BaseModel):
    items: list[Article]
    next_cursor: str | None = None
