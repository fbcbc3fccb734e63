"""Finds what a browser would execute in a piece of HTML: the check behind every sanitizing test."""

from __future__ import annotations

from html.parser import HTMLParser

DANGEROUS_TAGS = {"script", "style", "iframe", "object", "embed", "svg", "math", "form", "base", "link", "meta"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "srcset", "poster", "background"}
SAFE_SCHEMES = ("http:", "https:", "mailto:", "tel:")


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DANGEROUS_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            text = "".join((value or "").split()).lower()
            if name.startswith("on") or name == "style":
                self.problems.append(f"{tag}[{name}]")
            elif name in URL_ATTRIBUTES and ":" in text.split("/")[0] and not text.startswith(SAFE_SCHEMES):
                self.problems.append(f"{tag}[{name}={value}]")


def executable_content(html: str) -> list[str]:
    finder = _Finder()
    finder.feed(html)
    finder.close()
    return finder.problems
