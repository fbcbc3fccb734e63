"""Markdown to sanitized HTML, plain-text summaries, reading time and slugs."""

from __future__ import annotations

import html
import math
import re
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from slugify import slugify

WORDS_PER_MINUTE = 230
SUMMARY_CHARS = 280

# Markup a newsroom needs and nothing that can run: no script, style, forms, frames or event handlers,
# and links only to web, mail and phone addresses.
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "figcaption", "figure", "h1", "h2",
        "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup",
        "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "code": {"class"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def sanitize_html(markup: str) -> str:
    return nh3.clean(
        markup,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def render_markdown(body: str, *, env: dict[str, Any] | None = None) -> str:
    """Render with markdown-it, then sanitize: raw HTML in the Markdown is allowed only if it is safe."""
    return sanitize_html(_markdown().render(body, env or {}))


def plain_text(markup: str) -> str:
    text = html.unescape(nh3.clean(markup, tags=set()))
    return re.sub(r"\s+", " ", text).strip()


def summarize(markup: str) -> str:
    """The first SUMMARY_CHARS characters of the text, cut at a word boundary."""
    text = plain_text(markup)
    if len(text) <= SUMMARY_CHARS:
        return text
    cut = text[:SUMMARY_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def reading_time_minutes(markup: str) -> int:
    words = len(plain_text(markup).split())
    return max(1, math.ceil(words / WORDS_PER_MINUTE))


def make_slug(text: str) -> str:
    return slugify(text, max_length=70, word_boundary=True) or "article"


def normalize_tag(tag: str) -> str:
    return slugify(tag, max_length=40)
