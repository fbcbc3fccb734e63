"""Markdown to sanitized HTML, plain-text summaries, reading time and slugs."""

from __future__ import annotations

import html
import math
import posixpath
import re
from functools import lru_cache
from html.parser import HTMLParser
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
    """The words of `markup` on one line (for summaries and word counts)."""
    text = html.unescape(nh3.clean(markup, tags=set()))
    return re.sub(r"\s+", " ", text).strip()


# Marks the parser leaves between blocks and lines; control characters, so no article text can hold them
# (they are removed from its text first).
_PARAGRAPH, _LINE = "\x00", "\x01"
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLOCK_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol", "table", "figure", "hr"}
)
_BREAKS = re.compile(r" *[\x00\x01][ \x00\x01]*")


class _TextWithLinks(HTMLParser):
    """Sanitized HTML (the stored article) as text: paragraphs, lines and list items kept, links as
    `text (url)`. The standard library's parser suffices: the markup is nh3's output, a small set of tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._links: list[tuple[str, int]] = []  # (href, where its text starts) of each open <a>
        self._lists: list[int | None] = []  # the next number of each open <ol>, None for <ul>
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.pieces)))
        elif tag == "br" or tag == "tr":
            self.pieces.append(_LINE)
        elif tag in ("td", "th"):
            self.pieces.append(" ")
        elif tag == "li":
            number = self._lists[-1] if self._lists else None
            if number is not None:
                self._lists[-1] = number + 1
            self.pieces.append(_LINE + (f"{number}. " if number is not None else "- "))
        elif tag in _BLOCK_TAGS:
            self.pieces.append(_PARAGRAPH)
            if tag == "ol":
                self._lists.append(int(dict(attrs).get("start") or 1))
            elif tag == "ul":
                self._lists.append(None)
            elif tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._links:
            href, start = self._links.pop()
            text = " ".join("".join(self.pieces[start:]).split())
            if href and _without_scheme(href) != _without_scheme(text):
                self.pieces.append(f" ({href})")
        elif tag in _BLOCK_TAGS:
            self.pieces.append(_PARAGRAPH)
            if tag in ("ol", "ul") and self._lists:
                self._lists.pop()
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        data = _CONTROLS.sub("", data)
        self.pieces.append(data.replace("\n", _LINE) if self._pre else data)


def _without_scheme(address: str) -> str:
    # A link whose text is its own address (an autolink, a mail address) is written once, not twice.
    return re.sub(r"^(mailto:|tel:)", "", address.strip()).rstrip("/")


def text_with_links(markup: str) -> str:
    """`markup` as the text part of an email: paragraphs apart, list items on their lines, and every link's
    address after its text (`See the timetable (https://example.org/timetable).`)."""
    parser = _TextWithLinks()
    parser.feed(markup)
    parser.close()
    text = re.sub(r"[ \t\r\n\f\v]+", " ", "".join(parser.pieces))
    text = _BREAKS.sub(lambda breaks: "\n\n" if _PARAGRAPH in breaks.group() else "\n", text)
    return text.strip()


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
