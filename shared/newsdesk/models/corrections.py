"""Corrections, clarifications and updates: notes on a published article, kept for good (an editor adds a
note, never removes one), shown with the article, in its feed entry and in the public corrections list."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from newsdesk.models.base import Model

MAX_CORRECTIONS = 20
"""Notes one article may carry. Each is written with the article, its public copy and its entry in the
corrections list, in the article's transaction (DynamoDB's 100 items, and the item's 400 KB, bound it)."""


def _no_control_characters(value: str) -> str:
    # Shown in feeds, JSON-LD and pages as text: line breaks are fine, other control characters are not.
    if any((ord(ch) < 32 and ch not in "\n\t") or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


CorrectionText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), AfterValidator(_no_control_characters)
]


class CorrectionKind(StrEnum):
    CORRECTION = "correction"
    """Something the article said was wrong."""
    CLARIFICATION = "clarification"
    """Something it said could be misread."""
    UPDATE = "update"
    """Something happened since."""


class CorrectionRequest(Model):
    model_config = ConfigDict(extra="forbid")

    kind: CorrectionKind
    text: CorrectionText = Field(description="Plain text (not Markdown), up to 1,000 characters.")


class Correction(Model):
    """One note, as the article carries it."""

    kind: CorrectionKind
    text: str
    published_at: datetime


class CorrectionEntry(Correction):
    """One entry of the public corrections list: the note and the article it is about."""

    article_id: str
    slug: str
    title: str


class CorrectionPage(Model):
    items: list[CorrectionEntry]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")
