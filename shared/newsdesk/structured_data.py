"""Each article's schema.org `NewsArticle` as JSON-LD (https://schema.org/NewsArticle), the structured data
search engines read from an article's page: its headline and dates, its authors, its publisher, its images
and its corrections (`CorrectionComment`)."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from newsdesk.models.articles import PublicArticle
from newsdesk.sitemaps import w3c

CONTEXT = "https://schema.org"
MAX_IMAGES = 5


@dataclass(frozen=True)
class Publisher:
    name: str
    logo_url: str
    site_base: str
    language: str


def news_article(article: PublicArticle, publisher: Publisher) -> dict[str, Any]:
    url = f"{publisher.site_base}/articles/{article.slug}"
    organization: dict[str, Any] = {"@type": "Organization", "name": publisher.name, "url": f"{publisher.site_base}/"}
    if publisher.logo_url:
        organization["logo"] = {"@type": "ImageObject", "url": publisher.logo_url}
    data: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "NewsArticle",
        "headline": article.title,
        "description": article.summary,
        "datePublished": w3c(article.published_at),
        "dateModified": w3c(article.changed_at),
        "author": people(article, publisher.site_base),
        "publisher": organization,
        "mainEntityOfPage": {"@type": "WebPage", "@id": url},
        "url": url,
        "inLanguage": publisher.language,
        "keywords": article.tags,
    }
    images = _images(article.html)
    if images:
        data["image"] = images
    if article.corrections:
        data["correction"] = [
            {"@type": "CorrectionComment", "text": note.text, "datePublished": w3c(note.published_at)}
            for note in article.corrections
        ]
    return data


def people(article: PublicArticle, site_base: str) -> list[dict[str, Any]]:
    """The article's bylines as schema.org `Person`s, each with their author page when they have a profile."""
    found: list[dict[str, Any]] = []
    for byline in article.authors:
        person = {"@type": "Person", "name": byline.name}
        if byline.slug:
            person["url"] = f"{site_base}/authors/{byline.slug}"
        found.append(person)
    return found or [{"@type": "Person", "name": article.author}]


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        source = dict(attrs).get("src") if tag == "img" else None
        if source and source.startswith(("https://", "http://")) and source not in self.sources:
            self.sources.append(source)


def _images(html: str) -> list[str]:
    """The article's images that have an absolute address (relative ones mean nothing off the site)."""
    parser = _Images()
    parser.feed(html)
    return parser.sources[:MAX_IMAGES]
