"""What a news site asks of an article beyond a blog's: an embargo, breaking news, its place in the sitemaps,
and its schema.org structured data (corrections have their own module)."""

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from newsdesk.models.articles import PublicArticle, PublishTime
from newsdesk.models.base import Model

MAX_BREAKING_HOURS = 48
"""Longest an article stays breaking news: after that it is news."""


class _Request(Model):
    model_config = ConfigDict(extra="forbid")


class EmbargoRequest(_Request):
    embargo_until: PublishTime = Field(
        description="ISO 8601 with a UTC offset, in the future: the article is public from then on, never before."
    )


class BreakingRequest(_Request):
    hours: int = Field(
        ge=1, le=MAX_BREAKING_HOURS, description=f"How long it is breaking news: 1 to {MAX_BREAKING_HOURS}."
    )


class SitemapUrl(Model):
    """One article of a sitemap: where it is (its slug under SiteUrl) and when it was published and changed."""

    slug: str
    title: str
    published_at: datetime
    updated_at: datetime


class SitemapPage(Model):
    """One page of the sitemap index: its number (from 1) and its newest change."""

    number: int
    lastmod: datetime


class ReaderArticle(PublicArticle):
    """A published article as readers (and search engines) get it."""

    json_ld: dict[str, Any] = Field(
        description='schema.org `NewsArticle` as JSON-LD, for a `<script type="application/ld+json">` on its page.'
    )
