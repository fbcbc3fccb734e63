"""The feed carries whole articles and changes only when they do; the public reads answer conditional
requests with 304, so readers, feed readers and a CDN in front revalidate without downloading again."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import feedparser

from tests.integration.conftest import API_URL, Reply, Stack
from tests.integration.test_articles import create, editor, public, publish

BODY = "The council **approved** it.\n\n<script>alert(1)</script>\n\n* roads\n* libraries"


def test_the_feed_carries_each_article_s_sanitized_html(stack: Stack) -> None:
    article = create(stack, title="Budget passes", body=BODY)
    publish(stack, article["id"])

    feed = feedparser.parse(public(stack, "public-feed").body)

    [entry] = feed.entries
    [content] = entry.content
    assert content.type == "text/html"
    assert "<strong>approved</strong>" in content.value
    assert "<li>libraries</li>" in content.value
    assert "<script" not in content.value


def test_the_feed_says_it_lives_at_the_api_and_its_articles_on_the_site(stack: Stack) -> None:
    publish(stack, create(stack, title="Where things are")["id"])

    feed = feedparser.parse(public(stack, "public-feed").body)

    links = {link.rel: link.href for link in feed.feed.links}
    # The API serves the feed (docs/deploy.md: link <ApiUrl>/feed.xml); the site shows the articles
    assert links == {"self": f"{API_URL}/feed.xml", "alternate": "https://example.com/"}
    assert feed.entries[0].link == "https://example.com/articles/where-things-are"


def test_the_feed_s_updated_is_the_newest_change_not_the_time_of_the_request(stack: Stack) -> None:
    first = create(stack, title="First")
    publish(stack, first["id"])
    second = create(stack, title="Second")
    publish(stack, second["id"])
    before = public(stack, "public-feed")

    # Asking again changes nothing: same document, same validators
    again = public(stack, "public-feed")
    assert again.body == before.body
    assert again.headers["etag"] == before.headers["etag"]

    # Editing the older article makes it the newest change: the feed's updated and that entry's move on
    current = editor(stack, "editor-get-article", path={"article_id": first["id"]})
    changed = editor(
        stack,
        "editor-update-article",
        path={"article_id": first["id"]},
        body={"summary": "Now with a summary."},
        headers={"if-match": current.headers["etag"]},
    )
    assert changed.status == 200, changed.body
    after = public(stack, "public-feed")
    feed = feedparser.parse(after.body)
    updated_at = datetime.fromisoformat(changed.json()["updated_at"])
    assert datetime.fromisoformat(feed.feed.updated) == updated_at
    by_title = {entry.title: entry for entry in feed.entries}
    assert by_title["First"].updated == feed.feed.updated
    assert after.headers["etag"] != before.headers["etag"]


def test_an_empty_feed_has_a_fixed_updated(stack: Stack) -> None:
    feed = feedparser.parse(public(stack, "public-feed").body)

    assert feed.feed.updated.startswith("1970-01-01")


def conditional(stack: Stack, sample: str, headers: dict[str, str], **request: object) -> Reply:
    return public(stack, sample, headers=headers, **request)


def test_each_public_read_answers_304_to_its_own_etag(stack: Stack) -> None:
    article = create(stack, title="Ferry times")
    publish(stack, article["id"])
    reads = [
        ("public-list-articles", {"query": {"limit": "5"}}),
        ("public-get-article", {"path": {"slug": "ferry-times"}}),
        ("public-feed", {}),
    ]
    for sample, request in reads:
        first = public(stack, sample, **request)
        assert first.status == 200, (sample, first.body)
        assert first.headers["cache-control"].startswith("public, max-age=")
        assert "stale-while-revalidate" in first.headers["cache-control"]
        etag, last_modified = first.headers["etag"], first.headers["last-modified"]

        again = conditional(stack, sample, {"if-none-match": etag}, **request)
        weak = conditional(stack, sample, {"if-none-match": f'"other", W/{etag}'}, **request)
        stale = conditional(stack, sample, {"if-none-match": '"not-this-one"'}, **request)
        since = conditional(stack, sample, {"if-modified-since": last_modified}, **request)
        older = conditional(
            stack, sample, {"if-modified-since": format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True)},
            **request,
        )  # fmt: skip

        assert (again.status, again.body) == (304, ""), sample
        assert again.headers["etag"] == etag
        assert again.headers["last-modified"] == last_modified
        assert weak.status == 304, sample
        assert stale.status == 200, sample
        assert since.status == 304, sample
        assert older.status == 200, sample


def test_a_changed_article_is_sent_again(stack: Stack) -> None:
    article = create(stack, title="Tide tables")
    publish(stack, article["id"])
    first = public(stack, "public-get-article", path={"slug": "tide-tables"})

    current = editor(stack, "editor-get-article", path={"article_id": article["id"]})
    editor(stack, "editor-update-article", path={"article_id": article["id"]}, body={"body": "New tides."},
           headers={"if-match": current.headers["etag"]})  # fmt: skip
    again = public(
        stack, "public-get-article", path={"slug": "tide-tables"}, headers={"if-none-match": first.headers["etag"]}
    )

    assert again.status == 200
    assert "New tides." in again.json()["html"]
