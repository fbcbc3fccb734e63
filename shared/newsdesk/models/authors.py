"""Bylines and author profiles: who wrote an article, and the public page of each author."""

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from newsdesk.models.base import Model
from newsdesk.models.types import AuthorName, Slug

MAX_AUTHORS = 3
"""Bylines per article. Each author has a feed of their own, and one per tag (`?tag=&author=`): with 10 tags
an article has 1 + 3 + 10 + 30 = 44 feed entries, and an edit that changes every tag and author rewrites
them all in its one transaction (88 items, within DynamoDB's 100 with the article, slug, revision and
audit entry)."""


def _web_address(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(ch.isspace() for ch in value):
        raise ValueError("must be an http or https address")
    return value


WebAddress = Annotated[str, StringConstraints(max_length=500), AfterValidator(_web_address)]
Bio = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


class Byline(Model):
    """One author of an article, as the article was saved."""

    name: str
    slug: str | None = Field(
        default=None, description="Their author page is `/authors/{slug}`; null: a byline without a profile."
    )


class AuthorLink(Model):
    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    url: WebAddress


class Author(Model):
    """An author's public profile."""

    slug: str
    name: str
    bio: str = ""
    image_url: str | None = None
    links: list[AuthorLink] = Field(default_factory=list)
    updated_at: datetime = Field(description="When the profile last changed.")


class AuthorProfile(Author):
    """The profile as stored: whose it is."""

    person_id: str


class AuthorProfileRequest(Model):
    """A person's author profile (replaced whole). The slug is chosen once: it names the author's page and
    feed, and their published articles are listed under it."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug | None = Field(default=None, description="Made from the name when absent; cannot change later.")
    name: AuthorName | None = Field(default=None, description="The byline's name; absent: the person's name.")
    bio: Bio = ""
    image_url: WebAddress | None = None
    links: list[AuthorLink] = Field(default_factory=list, max_length=10)


class AuthorList(Model):
    items: list[Author]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


AuthorSlugs = Annotated[list[Slug], Field(min_length=1, max_length=MAX_AUTHORS)]
"""An article's authors, by the slugs of their profiles (`GET /authors`)."""
