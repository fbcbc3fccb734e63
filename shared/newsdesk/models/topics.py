"""Topics: the beats a newsroom writes about, which readers may choose to follow."""

from datetime import datetime
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from newsdesk.models.base import Model
from newsdesk.models.types import SLUG_PATTERN, AuthorName, Summary

MAX_TOPICS = 40
"""Topics a publication may have. A reader's change of frequency rewrites one membership item per topic they
follow, removed and written again, in one DynamoDB transaction: 2 x 40 + 1 items, within its 100."""

TopicSlug = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=SLUG_PATTERN)]
"""A topic's slug is an article tag as it is stored (lower case, digits and single dashes, 40 at most), so that
an article belongs to the topics whose slug is among its tags."""

TopicName = AuthorName
"""One line, 100 characters at most, shown to readers."""


class CreateTopicRequest(Model):
    model_config = ConfigDict(extra="forbid")

    slug: TopicSlug = Field(description="The tag that puts an article in this topic; it cannot change later.")
    name: TopicName
    description: Summary | None = None


class UpdateTopicRequest(Model):
    """Only the fields present change; `description: null` removes the description."""

    model_config = ConfigDict(extra="forbid")

    name: TopicName | None = None
    description: Summary | None = None

    @model_validator(mode="after")
    def _name_not_null(self) -> Self:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class Topic(Model):
    slug: str
    name: str
    description: str | None = None
    created_at: datetime
    updated_at: datetime


class TopicList(Model):
    items: list[Topic]


class PublicTopic(Model):
    """What a sign-up form needs to offer a topic."""

    slug: str
    name: str
    description: str | None = None


class PublicTopicList(Model):
    items: list[PublicTopic]
