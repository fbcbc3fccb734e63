"""Article shapes: what editors send, what the service works with, and what readers and editors get back."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from newsdesk.models.authors import Author, AuthorSlugs, Byline
from newsdesk.models.base import Model
from newsdesk.models.corrections import Correction
from newsdesk.models.types import AuthorName, MarkdownBody, Slug, Summary, Tags, Title


class ArticleStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    """Submitted: waiting for an editor to approve it or ask for changes."""
    CHANGES_REQUESTED = "changes_requested"
    """An editor asked for changes (the comment is in `last_transition`); its author edits and submits again."""
    APPROVED = "approved"
    """Reviewed and approved: an editor publishes or schedules it."""
    SCHEDULED = "scheduled"
    PUBLISHED = "published"


EDITABLE_BY_AUTHOR = frozenset({ArticleStatus.DRAFT, ArticleStatus.CHANGES_REQUESTED})
"""Where a contributor may still change their own article (in review, an editor has it)."""


class Transition(Model):
    """The article's latest change of status: what was done, from which status, by whom and when (the events
    and the audit trail name it too)."""

    action: str = Field(description="submit, approve, request_changes, publish, schedule, unschedule, unpublish")
    from_status: ArticleStatus
    by: str = Field(description="The person's id (`token:<id>` for a token made before people; `system:<job>`).")
    at: datetime
    comment: str | None = Field(default=None, description="An editor's request for changes says what to change.")


class _Request(Model):
    model_config = ConfigDict(extra="forbid")


AUTHORS_FIELD = Field(
    default=None, description="The authors' profile slugs (`GET /authors`), at most 3; `author` becomes their names."
)


class CreateArticleRequest(_Request):
    title: Title
    body: MarkdownBody = Field(description="Markdown; rendered and sanitized on save.")
    author: AuthorName | None = Field(default=None, description="A byline without a profile; or give `authors`.")
    authors: AuthorSlugs | None = AUTHORS_FIELD
    summary: Summary | None = None
    tags: Tags = Field(default_factory=list)
    slug: Slug | None = Field(default=None, description="Generated from the title when absent.")

    @model_validator(mode="after")
    def _someone_wrote_it(self) -> Self:
        if (self.author is None) == (self.authors is None):
            raise ValueError("give either `author` (a name) or `authors` (profile slugs)")
        return self


class UpdateArticleRequest(_Request):
    """Only the fields present are changed; `summary: null` goes back to a summary derived from the body."""

    title: Title | None = None
    body: MarkdownBody | None = None
    author: AuthorName | None = Field(default=None, description="A byline without a profile (replaces `authors`).")
    authors: AuthorSlugs | None = AUTHORS_FIELD
    summary: Summary | None = None
    tags: Tags | None = None
    slug: Slug | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(name for name in self.model_fields_set if name != "summary" and getattr(self, name) is None)
        if nulls:
            raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        if {"author", "authors"} <= self.model_fields_set:
            raise ValueError("give either `author` (a name) or `authors` (profile slugs)")
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


ReviewComment = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class RequestChangesRequest(_Request):
    comment: ReviewComment = Field(description="What the author should change (shown to them, and in the event).")


class ScheduleRequest(_Request):
    publish_at: PublishTime = Field(description="ISO 8601 with a UTC offset; stored and shown in UTC.")


def byline_of(author: str) -> list[Byline]:
    """The bylines of an article saved with an author's name alone (before profiles): one, without a page."""
    return [Byline(name=author)]


AUTHOR_FIELD: Any = Field(description="Every author's name, as one line (`Ada Lovelace and Alan Turing`).")
BYLINES_FIELD: Any = Field(
    default_factory=list, description="Each author (for an article from before profiles: its `author`, without a page)."
)


class Article(Model):
    """The editor's full view of an article, as stored."""

    id: str
    slug: str
    title: str
    body: str
    html: str
    author: str = AUTHOR_FIELD
    authors: list[Byline] = BYLINES_FIELD
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
    created_by: str | None = Field(
        default=None, description="Who wrote it: a person's id (absent on articles from before people)."
    )
    last_transition: Transition | None = None
    revision: int = Field(default=0, description="Its latest revision's number (0: not saved since revisions exist).")

    @model_validator(mode="after")
    def _bylines(self) -> Self:
        self.authors = self.authors or byline_of(self.author)
        return self

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


class ArticleSummary(Model):
    """One entry of a public list."""

    id: str
    slug: str
    title: str
    summary: str
    author: str = AUTHOR_FIELD
    authors: list[Byline] = BYLINES_FIELD
    tags: list[str]
    published_at: datetime
    reading_time_minutes: int
    updated_at: datetime | None = Field(
        default=None, description="When the article last changed (absent on copies made before it was recorded)."
    )

    @model_validator(mode="after")
    def _bylines(self) -> Self:
        self.authors = self.authors or byline_of(self.author)
        return self

    @property
    def changed_at(self) -> datetime:
        return self.updated_at or self.published_at


class PublicArticle(ArticleSummary):
    html: str = Field(description="Sanitized HTML rendered from the Markdown body.")
    corrections: list[Correction] = Field(
        default_factory=list, description="Corrections, clarifications and updates, oldest first."
    )
    breaking_until: datetime | None = Field(default=None, description="Breaking news until this time.")


class ArticlePage(Model):
    items: list[ArticleSummary]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


class AuthorPage(Model):
    """An author's profile and one page of their published articles, newest first."""

    author: Author
    items: list[ArticleSummary]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


class AdminArticlePage(Model):
    items: list[Article]
    next_cursor: str | None = None
