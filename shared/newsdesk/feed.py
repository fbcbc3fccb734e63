"""The public Atom feed, built with feedgen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from feedgen.feed import FeedGenerator

from newsdesk.dependencies import site_settings

if TYPE_CHECKING:
    from newsdesk.services.articles import ArticleService

FEED_SIZE = 20


def atom_feed(articles: ArticleService) -> str:
    settings = site_settings()
    site = settings.site_base
    items, _ = articles.list_public(tag=None, author=None, limit=FEED_SIZE, cursor=None)
    generator = FeedGenerator()
    generator.id(f"{site}/")
    generator.title(settings.publication_name)
    generator.link(href=f"{site}/", rel="alternate")
    generator.link(href=f"{site}/feed.xml", rel="self")
    generator.language("en")
    if not items:
        from newsdesk.clock import utc_now

        generator.updated(utc_now())
    for item in reversed(items):  # feedgen prepends each entry: add oldest first to list newest first
        url = f"{site}/articles/{item.slug}"
        entry = generator.add_entry()
        entry.id(url)
        entry.title(item.title)
        entry.link(href=url)
        entry.author(name=item.author)
        entry.published(item.published_at)
        entry.updated(item.published_at)
        entry.summary(item.summary)
        for tag in item.tags:
            entry.category(term=tag)
    return generator.atom_str(pretty=True).decode("utf-8")
