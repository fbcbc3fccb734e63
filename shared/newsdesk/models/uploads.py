"""Uploads to the UploadsBucket: the S3 object an event names, an article file's front matter, the
upload records editors list, and the import queue's messages."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from newsdesk.models.articles import ArticleStatus, PublishTime
from newsdesk.models.base import Model
from newsdesk.models.subscribers import Frequency
from newsdesk.models.types import AuthorName, Slug, Summary, Tags, Title

MAX_ROW_NOTES = 100
"""Row numbers kept per kind of note (invalid, skipped) on an import's record; the counts are exact."""


class UploadKind(StrEnum):
    ARTICLE = "article"
    SUBSCRIBERS = "subscribers"


class UploadOutcome(StrEnum):
    CREATED = "created"
    """A new article, left as a draft (`status: draft`)."""
    UPDATED = "updated"
    PUBLISHED = "published"
    SCHEDULED = "scheduled"
    UNPUBLISHED = "unpublished"
    """A published article taken off the public routes (`status: draft`)."""
    REJECTED = "rejected"
    IMPORTING = "importing"
    """A subscriber import still running (large files continue over several invocations)."""
    IMPORTED = "imported"


class ObjectUpload(Model):
    """One object version an S3 event announces, with its key decoded."""

    bucket: str
    key: str
    size: int | None = None
    etag: str = ""
    version_id: str | None = None
    sequencer: str = Field(description="S3's order of events for this key (hex; compare left-padded).")


class ArticleFile(Model):
    """The front matter of an uploaded Markdown file: the API's article fields, plus what to do with it."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    author: AuthorName | None = None
    summary: Summary | None = None
    tags: Tags = Field(default_factory=list)
    slug: Slug | None = None
    status: ArticleStatus | None = None
    publish_at: PublishTime | None = None

    @model_validator(mode="after")
    def _schedule_needs_a_time(self) -> Self:
        if self.status is ArticleStatus.SCHEDULED and self.publish_at is None:
            raise ValueError("status: scheduled needs publish_at")
        if self.publish_at is not None and self.status not in (None, ArticleStatus.SCHEDULED):
            raise ValueError(f"publish_at goes with status: scheduled, not {self.status}")
        return self

    @property
    def wanted_status(self) -> ArticleStatus:
        """Published unless the file says otherwise; a publish_at alone means scheduled."""
        if self.status is not None:
            return self.status
        return ArticleStatus.SCHEDULED if self.publish_at is not None else ArticleStatus.PUBLISHED


class RowNote(Model):
    row: int = Field(description="Row number as a spreadsheet shows it: the header is row 1.")
    reason: str


class Upload(Model):
    """What became of one uploaded file (one object version)."""

    id: str
    key: str
    kind: UploadKind
    outcome: UploadOutcome
    reason: str | None = Field(default=None, description="Why the file was rejected.")
    article_id: str | None = None
    slug: str | None = None
    version_id: str | None = None
    etag: str | None = None
    confirmed: bool | None = Field(default=None, description="Imported as confirmed (`subscribers/confirmed/`).")
    imported: int | None = None
    skipped: int | None = Field(default=None, description="Already on the list, or repeated in the file.")
    invalid: int | None = None
    invalid_rows: list[RowNote] | None = Field(default=None, description=f"The first {MAX_ROW_NOTES}.")
    skipped_rows: list[RowNote] | None = Field(default=None, description=f"The first {MAX_ROW_NOTES}.")
    rows: int | None = Field(default=None, description="Data rows in the file (the header not counted).")
    next_row: int | None = Field(default=None, description="While importing: the next row to read.")
    received_at: datetime
    updated_at: datetime


class UploadPage(Model):
    items: list[Upload]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


class ImportedRecipient(Model):
    email: str
    name: str | None = None
    frequency: Frequency = Frequency.INSTANT


class ImportChunk(Model):
    """Continue a subscriber import at `start_row` (the ImportQueue)."""

    kind: Literal["import"] = "import"
    upload_id: str
    bucket: str
    key: str
    version_id: str | None = None
    etag: str = ""
    start_row: int


class ConfirmationBatch(Model):
    """Send confirmation emails to addresses an import added as pending (the ConfirmationQueue)."""

    kind: Literal["confirm"] = "confirm"
    upload_id: str
    key: str | None = Field(default=None, description="The uploaded file's key: the consent record names it.")
    recipients: list[ImportedRecipient]


ImportTask = Annotated[ImportChunk | ConfirmationBatch, Field(discriminator="kind")]
