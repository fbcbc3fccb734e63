"""Markdown to sanitized HTML, plain-text summaries, reading time and slugs."""

from __future__ import annotations

import html
import math
import posixpath
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import nh3

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_core import StateCore

# markdown-it and python-slugify are imported where they are used: most functions never render or make a
# slug, and importing them cost every cold start about 25 ms on the benchmark machine (bench/cold_start.py).

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
MEDIA_BASE_URL = "media_base_url"
"""Key of the rendering environment that holds the public address relative images resolve against."""


def media_url(base_url: str, src: str) -> str:
    """`src` made absolute under `base_url` when it is a relative path; any other address as it is.

    Relative paths are taken from the root of the uploads bucket, where `media/` lives, wherever the
    Markdown file sits: `media/x.png`, `./media/x.png` and `../media/x.png` all name `<base>/media/x.png`.
    """
    parts = urlsplit(src)
    if not base_url or not parts.path or parts.scheme or parts.netloc or src.startswith(("/", "#", "?")):
        return src
    path = posixpath.normpath(parts.path)
    while path.startswith("../"):
        path = path[3:]
    if path in (".", ".."):
        return src
    return urlunsplit(("", "", f"{base_url.rstrip('/')}/{path}", parts.query, parts.fragment))


def _absolute_media_urls(state: StateCore) -> None:
    # On the token stream, not the HTML: only what Markdown itself calls an image is rewritten.
    base_url = state.env.get(MEDIA_BASE_URL) if isinstance(state.env, dict) else None
    if not base_url:
        return
    for block in state.tokens:
        for token in block.children or ():
            src = token.attrGet("src") if token.type == "image" else None
            if isinstance(src, str):
                token.attrSet("src", media_url(base_url, src))


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.core.ruler.push("absolute_media_urls", _absolute_media_urls)
    return md


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
    """Render with markdown-it, then sanitize: raw HTML in the Markdown is allowed only if it is safe.
    With `env[MEDIA_BASE_URL]`, relative image paths become absolute addresses under it."""
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
