"""The public Atom feed, built with feedgen: each entry with the article's full sanitized HTML."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

from feedgen.feed import FeedGenerator

from newsdesk.dependencies import api_url, news_settings, site_settings
from newsdesk.models.corrections import Correction

if TYPE_CHECKING:
    from newsdesk.services.articles import ArticleService

FEED_SIZE = 20
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
"""An empty feed's `updated`: a fixed time, so its ETag and Last-Modified hold until the first article."""


def atom_feed(articles: ArticleService) -> tuple[str, datetime]:
    """The feed's XML, and when it last changed: the newest change of an article in it (never the time of
    the request, so readers and caches can tell that nothing changed)."""
    settings = site_settings()
    site = settings.site_base
    items = articles.feed_articles(FEED_SIZE)
    updated = max((item.changed_at for item in items), default=EMPTY_FEED_UPDATED)
    generator = FeedGenerator()
    generator.id(f"{site}/")
    generator.title(settings.publication_name)
    generator.link(href=f"{site}/", rel="alternate")
    # The feed is served by the API, not by the site (which shows the articles): its own address is there.
    generator.link(href=f"{api_url()}/feed.xml", rel="self")
    generator.language(news_settings().publication_language)
    generator.updated(updated)
    for item in reversed(items):  # feedgen prepends each entry: add oldest first to list newest first
        url = f"{site}/articles/{item.slug}"
        entry = generator.add_entry()
        entry.id(url)
        entry.title(item.title)
        entry.link(href=url)
        for byline in item.authors:  # one <author> each, with their page when they have a profile
            entry.author(name=byline.name, **({"uri": f"{site}/authors/{byline.slug}"} if byline.slug else {}))
        entry.published(item.published_at)
        entry.updated(item.changed_at)
        entry.summary(item.summary)
        # Sanitized when it was stored (nh3): the same HTML the API and the emails serve.
        entry.content(item.html + notes_html(item.corrections), type="html")
        for tag in item.tags:
            entry.category(term=tag)
    return generator.atom_str(pretty=True).decode("utf-8"), updated


def notes_html(corrections: Sequence[Correction]) -> str:
    """An entry's corrections, clarifications and updates, after the article (their text is plain: escaped)."""
    if not corrections:
        return ""
    items = "".join(
        f"<li><strong>{escape(note.kind.value.capitalize())}</strong>"
        f" ({note.published_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC): {escape(note.text)}</li>"
        for note in corrections
    )
    return f'<aside class="corrections"><h2>Corrections and updates</h2><ul>{items}</ul></aside>'
