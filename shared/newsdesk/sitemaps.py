"""The sitemaps search engines read, built with the standard library's ElementTree (which escapes every
text): the index of sitemap pages, a page of article URLs, and the Google News sitemap."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement, register_namespace, tostring

from newsdesk.models.articles import ArticleSummary
from newsdesk.models.news import SitemapPage, SitemapUrl

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

register_namespace("news", NEWS_NS)


def w3c(moment: datetime) -> str:
    """The W3C datetime the sitemaps protocol and Google News ask for: `2026-12-01T06:00:00+00:00`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _sm(tag: str) -> str:
    return f"{{{SITEMAP_NS}}}{tag}"


def _news(tag: str) -> str:
    return f"{{{NEWS_NS}}}{tag}"


def _document(root: Element) -> str:
    return _DECLARATION + tostring(root, encoding="unicode", default_namespace=SITEMAP_NS)


def sitemap_index(pages: Sequence[SitemapPage], api_base: str) -> str:
    """Points at each sitemap page (served by this API, `/sitemaps/<n>.xml`), with its newest change."""
    root = Element(_sm("sitemapindex"))
    for page in pages:
        entry = SubElement(root, _sm("sitemap"))
        SubElement(entry, _sm("loc")).text = f"{api_base}/sitemaps/{page.number}.xml"
        SubElement(entry, _sm("lastmod")).text = w3c(page.lastmod)
    return _document(root)


def sitemap(urls: Sequence[SitemapUrl], site_base: str) -> str:
    """The articles of one page, where the site shows them (as the feed links them), with when they changed."""
    root = Element(_sm("urlset"))
    for url in urls:
        entry = SubElement(root, _sm("url"))
        SubElement(entry, _sm("loc")).text = f"{site_base}/articles/{url.slug}"
        SubElement(entry, _sm("lastmod")).text = w3c(url.updated_at)
    return _document(root)


def news_sitemap(articles: Sequence[ArticleSummary], site_base: str, *, name: str, language: str) -> str:
    """Google News' format: each article with the publication's name and language, its publication date and
    its title."""
    root = Element(_sm("urlset"))
    for article in articles:
        entry = SubElement(root, _sm("url"))
        SubElement(entry, _sm("loc")).text = f"{site_base}/articles/{article.slug}"
        news = SubElement(entry, _news("news"))
        publication = SubElement(news, _news("publication"))
        SubElement(publication, _news("name")).text = name
        SubElement(publication, _news("language")).text = language
        SubElement(news, _news("publication_date")).text = w3c(article.published_at)
        SubElement(news, _news("title")).text = article.title
    return _document(root)
