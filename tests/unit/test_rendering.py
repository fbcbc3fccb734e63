"""Markdown rendering and sanitizing, as a reader of the stored HTML would notice it."""

from __future__ import annotations

import pytest

from newsdesk.rendering import reading_time_minutes, render_markdown, summarize, text_with_links
from newsdesk.slugs import make_slug, normalize_tag
from tests.support.html_safety import executable_content


def test_markdown_becomes_html() -> None:
    html = render_markdown(
        "# Title\n\nSome **bold** text and a [link](https://example.org).\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.org" rel="noopener noreferrer">link</a>' in html
    assert "<table>" in html


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        '<img src="x.png" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        "[x](javascript:alert(1))",
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<svg onload="alert(1)"></svg>',
        '<iframe src="https://evil.example"></iframe>',
        '<p style="background:url(javascript:alert(1))">x</p>',
    ],
)
def test_nothing_executable_survives(markdown: str) -> None:
    assert executable_content(render_markdown(markdown)) == []


def test_the_safety_check_itself_sees_executable_content() -> None:
    assert executable_content('<a href=" JaVaScRiPt:x">a</a><p onclick="x">b</p><script></script>') == [
        "a[href= JaVaScRiPt:x]",
        "p[onclick]",
        "<script>",
    ]


def test_reading_time_counts_words() -> None:
    assert reading_time_minutes("<p>" + "word " * 10 + "</p>") == 1
    assert reading_time_minutes("<p>" + "word " * 1000 + "</p>") == 5


def test_summary_is_plain_text_cut_at_a_word() -> None:
    summary = summarize("<p>" + "<em>lorem</em> ipsum " * 100 + "</p>")
    assert "<" not in summary
    assert summary.endswith("…")
    assert len(summary) <= 281


def test_slugs_and_tags_are_url_safe() -> None:
    assert make_slug("Héllo, Wörld! 2026") == "hello-world-2026"
    assert make_slug("!!!") == "article"
    assert normalize_tag("Local News") == "local-news"


def test_the_text_of_an_email_keeps_links_lists_and_paragraphs() -> None:
    html = render_markdown(
        "## Ferry\n\nSee [the *new* timetable](https://example.org/t) and <tel:+441234>.\n\n"
        "3. third\n4. [fourth](mailto:ada@example.org)\n\n```\nline one\nline two\n```"
    )

    assert text_with_links(html) == (
        "Ferry\n\nSee the new timetable (https://example.org/t) and tel:+441234.\n\n"
        "3. third\n4. fourth (mailto:ada@example.org)\n\nline one\nline two"
    )


def test_the_text_of_an_email_holds_only_the_article_s_characters() -> None:
    # Control characters in the article cannot pose as the converter's own paragraph marks.
    assert text_with_links("<p>a\x00b\x01c</p><p>d</p>") == "abc\n\nd"
