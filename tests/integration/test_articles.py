"""Articles through the handlers: what an editor and a reader see, and what is stored."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import boto3
import feedparser
import pytest

from newsdesk import dependencies
from newsdesk.cli import main
from newsdesk.models.articles import Article, ArticleStatus
from newsdesk.settings import ArticleSettings
from newsdesk.slugs import make_slug
from tests.integration.conftest import Reply, Stack
from tests.support import times
from tests.support.events import sample_event
from tests.support.html_safety import executable_content

ARTICLE = {"title": "Council approves budget", "author": "Ada Lovelace", "body": "The council **approved** it."}

A_MONTH_AGO = times.now() - timedelta(days=30)


def editor(stack: Stack, sample: str, **request: Any) -> Reply:
    return stack.call("EditorFunction", sample_event(sample, **request))


def public(stack: Stack, sample: str, **request: Any) -> Reply:
    return stack.call("PublicFunction", sample_event(sample, **request))


def create(stack: Stack, **fields: Any) -> dict[str, Any]:
    reply = editor(stack, "editor-create-article", body={**ARTICLE, **fields})
    assert reply.status == 201, reply.body
    return dict(reply.json())


def publish(stack: Stack, article_id: str) -> dict[str, Any]:
    reply = editor(stack, "editor-publish-article", path={"article_id": article_id})
    assert reply.status == 200, reply.body
    return dict(reply.json())


def article_items(stack: Stack) -> list[dict[str, Any]]:
    return [item for item in stack.items("ArticlesTable") if item["pk"]["S"].startswith("article#")]


# ---------------------------------------------------------------------- create and read


def test_a_new_article_is_a_draft_readers_cannot_see(stack: Stack) -> None:
    reply = editor(stack, "editor-create-article", body={**ARTICLE, "tags": ["Local News", "council"]})

    assert reply.status == 201
    article = reply.json()
    assert reply.headers["etag"] == '"1"'
    assert reply.headers["location"] == f"/admin/articles/{article['id']}"
    assert article["status"] == "draft"
    assert article["slug"] == "council-approves-budget"
    assert article["html"] == "<p>The council <strong>approved</strong> it.</p>\n"
    assert article["tags"] == ["local-news", "council"]
    assert article["summary"] == "The council approved it."
    assert article["reading_time_minutes"] == 1
    assert public(stack, "public-get-article", path={"slug": article["slug"]}).status == 404
    assert public(stack, "public-list-articles", query={}).json()["items"] == []


def test_published_article_is_public_with_sanitized_html(stack: Stack) -> None:
    article = create(stack, body="Hi <script>alert(1)</script><img src=x onerror=alert(1)>", summary="Short")
    published = publish(stack, article["id"])

    reply = public(stack, "public-get-article", path={"slug": article["slug"]})

    assert reply.status == 200
    body = reply.json()
    assert body["title"] == ARTICLE["title"]
    assert body["published_at"] == published["published_at"]
    assert executable_content(body["html"]) == []
    assert body["summary"] == "Short"
    assert reply.headers["content-type"] == "application/json"


def test_same_title_gets_a_new_slug_and_an_explicit_clash_is_409(stack: Stack) -> None:
    first = create(stack)
    second = create(stack)
    assert (first["slug"], second["slug"]) == ("council-approves-budget", "council-approves-budget-2")

    reply = editor(stack, "editor-create-article", body={**ARTICLE, "slug": "council-approves-budget"})

    assert reply.status == 409
    assert reply.json()["error"]["code"] == "slug_taken"
    assert len(article_items(stack)) == 2


@pytest.mark.parametrize(
    ("request_body", "status", "field"),
    [
        ("{not json", 400, None),
        (json.dumps({**ARTICLE, "title": 7}), 422, "title"),
        (json.dumps({"title": "t", "author": "a"}), 422, "body"),
        (json.dumps({**ARTICLE, "title": "x" * 201}), 422, "title"),
        (json.dumps({**ARTICLE, "body": "x" * (64 * 1024 + 1)}), 422, "body"),
        (json.dumps({**ARTICLE, "colour": "red"}), 422, "colour"),
        (json.dumps({**ARTICLE, "tags": ["!!!"]}), 422, None),
        (json.dumps([1, 2]), 422, None),
    ],
)
def test_bad_input_is_a_4xx_and_stores_nothing(stack: Stack, request_body: str, status: int, field: str | None) -> None:
    reply = editor(stack, "editor-create-article", raw_body=request_body)

    assert reply.status == status
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if field:
        assert field in json.dumps(error["details"])
    assert stack.items("ArticlesTable") == []


def test_unknown_ids_and_slugs_are_404(stack: Stack) -> None:
    assert editor(stack, "editor-get-article", path={"article_id": "0000000000000000"}).status == 404
    assert editor(stack, "editor-get-article", path={"article_id": "../../etc"}).status == 404
    assert public(stack, "public-get-article", path={"slug": "x" * 3000}).status == 404


# ---------------------------------------------------------------------- edit, concurrency


def test_stale_if_match_is_412_and_changes_nothing(stack: Stack) -> None:
    article = create(stack)
    changed = editor(
        stack,
        "editor-update-article",
        path={"article_id": article["id"]},
        headers={"If-Match": '"1"'},
        body={"title": "New"},
    )
    assert (changed.status, changed.headers["etag"], changed.json()["title"]) == (200, '"2"', "New")

    stale = editor(
        stack,
        "editor-update-article",
        path={"article_id": article["id"]},
        headers={"If-Match": '"1"'},
        body={"title": "Old"},
    )

    assert stale.status == 412
    assert stale.json()["error"]["details"] == {"current_version": 2}
    assert editor(stack, "editor-get-article", path={"article_id": article["id"]}).json()["title"] == "New"


def test_concurrent_edits_of_one_version_let_exactly_one_win(stack: Stack) -> None:
    article = create(stack)

    def edit(n: int) -> int:
        event = sample_event(
            "editor-update-article",
            path={"article_id": article["id"]},
            headers={"If-Match": '"1"'},
            body={"title": f"T{n}"},
        )
        return int(stack.invoke("EditorFunction", event)["statusCode"])

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(edit, range(8)))

    assert statuses == [200] + [412] * 7
    assert editor(stack, "editor-get-article", path={"article_id": article["id"]}).json()["version"] == 2


def test_editing_a_published_article_updates_what_readers_see(stack: Stack) -> None:
    article = publish(stack, create(stack, tags=["council"])["id"])

    reply = editor(
        stack,
        "editor-update-article",
        path={"article_id": article["id"]},
        headers={"If-Match": f'"{article["version"]}"'},
        body={"body": "Now *longer*.", "tags": ["schools"], "slug": "budget-approved"},
    )

    assert reply.status == 200
    assert public(stack, "public-get-article", path={"slug": article["slug"]}).status == 404
    moved = public(stack, "public-get-article", path={"slug": "budget-approved"}).json()
    assert moved["html"] == "<p>Now <em>longer</em>.</p>\n"
    assert public(stack, "public-list-articles", query={"tag": "council"}).json()["items"] == []
    assert [a["slug"] for a in public(stack, "public-list-articles", query={"tag": "schools"}).json()["items"]] == [
        "budget-approved"
    ]


def test_delete_frees_the_slug(stack: Stack) -> None:
    article = publish(stack, create(stack)["id"])

    assert editor(stack, "editor-delete-article", path={"article_id": article["id"]}).status == 204

    assert public(stack, "public-get-article", path={"slug": article["slug"]}).status == 404
    assert editor(stack, "editor-get-article", path={"article_id": article["id"]}).status == 404
    assert create(stack)["slug"] == article["slug"]
    # The new draft and its slug claim, nothing left over (beside the sitemap pages' counter, the table's own)
    assert len([item for item in stack.items("ArticlesTable") if item["pk"]["S"] != "sitemap#counter"]) == 2


# ---------------------------------------------------------------------- publish


def publication_records(stack: Stack) -> list[dict[str, Any]]:
    return [item for item in stack.items("PublicationsTable") if item["sk"]["S"] == "#publication"]


def test_publishing_twice_publishes_once(stack: Stack) -> None:
    article = create(stack)
    first = publish(stack, article["id"])
    again = publish(stack, article["id"])

    assert first["status"] == "published"
    assert again["version"] == first["version"]
    assert again["published_at"] == first["published_at"]
    assert len(publication_records(stack)) == 1


def test_concurrent_publishes_record_one_publication(stack: Stack) -> None:
    article = create(stack)

    def call(_: int) -> int:
        event = sample_event("editor-publish-article", path={"article_id": article["id"]})
        return int(stack.invoke("EditorFunction", event)["statusCode"])

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(call, range(6)))

    assert statuses == [200] * 6
    assert len(publication_records(stack)) == 1


def test_unpublish_and_republish_does_not_announce_again(stack: Stack) -> None:
    article = publish(stack, create(stack)["id"])

    unpublished = editor(stack, "editor-unpublish-article", path={"article_id": article["id"]})

    assert unpublished.json()["status"] == "draft"
    assert public(stack, "public-get-article", path={"slug": article["slug"]}).status == 404
    assert public(stack, "public-list-articles", query={}).json()["items"] == []
    republished = publish(stack, article["id"])
    assert republished["published_at"] == article["published_at"]
    assert len(publication_records(stack)) == 1


# ---------------------------------------------------------------------- lists and feed


def test_lists_page_newest_first_with_filters(stack: Stack) -> None:
    for n in range(7):
        created = create(
            stack, title=f"Story {n}", author="Grace Hopper" if n % 2 else "Ada", tags=["t"] if n < 5 else []
        )
        publish(stack, created["id"])

    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = public(stack, "public-list-articles", query=query).json()
        seen += [item["title"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [f"Story {n}" for n in reversed(range(7))]
    tagged = public(stack, "public-list-articles", query={"tag": "T", "limit": "100"}).json()["items"]
    assert [a["title"] for a in tagged] == [f"Story {n}" for n in (4, 3, 2, 1, 0)]
    by_author = public(stack, "public-list-articles", query={"author": "grace hopper"}).json()["items"]
    assert [a["title"] for a in by_author] == ["Story 5", "Story 3", "Story 1"]
    both = public(stack, "public-list-articles", query={"author": "Grace Hopper", "tag": "t", "limit": "1"}).json()
    assert [a["title"] for a in both["items"]] == ["Story 3"]
    assert set(tagged[0]) == {
        "id", "slug", "title", "summary", "author", "authors", "tags", "published_at", "reading_time_minutes",
        "updated_at",
    }  # fmt: skip


class ItemsExamined:
    """Counts the items DynamoDB examines for the functions' requests (a query's ScannedCount, one per GetItem)."""

    def __init__(self) -> None:
        self.count = 0
        self.queries = 0

    def __call__(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            self.count += int(parsed.get("ScannedCount", 0))
            self.queries += 1
        elif model.name == "GetItem":
            self.count += 1


def seed_published(count: int, *, title: str, tags: list[str], author: str, start: datetime) -> list[Article]:
    """Published articles one minute apart, stored as the repository stores them (quicker than the API)."""
    repository = dependencies.container().article_repository
    articles = [
        Article(
            id=secrets.token_hex(8),
            slug=f"{make_slug(title)}-{n}",
            title=f"{title} {n}",
            body="Text.",
            html="<p>Text.</p>",
            author=author,
            summary="Text.",
            tags=tags,
            status=ArticleStatus.PUBLISHED,
            version=2,
            reading_time_minutes=1,
            created_at=start + timedelta(minutes=n),
            updated_at=start + timedelta(minutes=n),
            published_at=start + timedelta(minutes=n),
        )
        for n in range(count)
    ]
    items = [item for article in articles for item in repository.stored_items(article)]
    client = boto3.client("dynamodb")
    table = dependencies.container().settings(ArticleSettings).articles_table
    for first in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]
        client.batch_write_item(RequestItems={table: batch})
    return articles


def test_a_rare_tag_and_author_pair_is_one_bounded_read(stack: Stack) -> None:
    # Given a tag with 300 articles, of which only the two oldest are by Grace Hopper
    start = A_MONTH_AGO
    seed_published(2, title="Compilers", tags=["harbour"], author="Grace Hopper", start=start)
    seed_published(300, title="Engines", tags=["harbour", "boats"], author="Ada", start=start + timedelta(hours=1))
    examined = ItemsExamined()
    dependencies.container().dynamodb.meta.events.register("after-call.dynamodb", examined)

    # When a reader pages through that tag and author, one article a page
    pages = []
    cursor: str | None = None
    for _ in range(3):
        query = {"tag": "harbour", "author": "grace hopper", "limit": "1", **({"cursor": cursor} if cursor else {})}
        reply = public(stack, "public-list-articles", query=query)
        assert reply.status == 200, reply.body
        pages.append(reply.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            break

    # Then each page is one query of at most limit + 1 items, and the pages hold exactly that author's articles
    assert [[item["title"] for item in page["items"]] for page in pages] == [["Compilers 1"], ["Compilers 0"]]
    assert examined.queries == 2
    assert examined.count <= 2 * 2


def test_restore_feeds_gives_articles_published_before_the_pair_feed_their_entries(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given articles stored before tag and author had a feed of their own (no tag-author entries)
    start = A_MONTH_AGO
    seed_published(3, title="Compilers", tags=["harbour", "boats"], author="Grace Hopper", start=start)
    client = boto3.client("dynamodb")
    table = stack.table("ArticlesTable")
    for item in stack.items("ArticlesTable"):
        if item["pk"]["S"].startswith("feed#tag-author#"):
            client.delete_item(TableName=table, Key={"pk": item["pk"]})
    query = {"tag": "harbour", "author": "Grace Hopper"}
    assert public(stack, "public-list-articles", query=query).json()["items"] == []

    # When the operator runs the command the README names for it (twice: it is safe to repeat)
    for _ in range(2):
        assert main(["articles", "restore-feeds", "--articles-table", table]) == 0
    assert "restored the feed entries of 3 published articles" in capsys.readouterr().out

    # Then the combined filter lists them, and each has its feed entries exactly once
    titles = [item["title"] for item in public(stack, "public-list-articles", query=query).json()["items"]]
    assert titles == ["Compilers 2", "Compilers 1", "Compilers 0"]
    pair_entries = [i for i in stack.items("ArticlesTable") if i["pk"]["S"].startswith("feed#tag-author#")]
    assert len(pair_entries) == 3 * 2


def test_a_cursor_is_bound_to_the_filters_that_produced_it(stack: Stack) -> None:
    seed_published(3, title="Engines", tags=["harbour"], author="Ada", start=A_MONTH_AGO)
    tagged = public(stack, "public-list-articles", query={"tag": "harbour", "limit": "1"}).json()["next_cursor"]
    unfiltered = public(stack, "public-list-articles", query={"limit": "1"}).json()["next_cursor"]

    # The same filters, however spelled, go on from where the page ended
    again = public(stack, "public-list-articles", query={"tag": "Harbour", "limit": "1", "cursor": tagged})
    assert [item["title"] for item in again.json()["items"]] == ["Engines 1"]

    # Another tag, the tag left out, or a tag added: a 422 naming the cursor, not a silent first page
    for query in ({"tag": "boats", "cursor": tagged}, {"cursor": tagged}, {"tag": "harbour", "cursor": unfiltered}):
        reply = public(stack, "public-list-articles", query=query)
        assert reply.status == 422, query
        assert reply.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "garbage!"}])
def test_bad_list_parameters_are_422(stack: Stack, query: dict[str, str]) -> None:
    reply = public(stack, "public-list-articles", query=query)

    assert reply.status == 422
    assert "error" in reply.json()


def test_admin_lists_by_status(stack: Stack) -> None:
    draft = create(stack, title="Draft")
    live = publish(stack, create(stack, title="Live")["id"])

    def titles(status: str | None) -> list[str]:
        query = {"status": status} if status else {}
        return [a["title"] for a in editor(stack, "editor-list-articles", query=query).json()["items"]]

    assert titles("draft") == [draft["title"]]
    assert titles("published") == [live["title"]]
    assert titles(None) == ["Live", "Draft"]
    assert editor(stack, "editor-list-articles", query={"status": "deleted"}).status == 422


def test_feed_is_atom_a_feed_reader_parses(stack: Stack) -> None:
    for n in range(22):
        publish(stack, create(stack, title=f"Story {n}", tags=["x"])["id"])

    reply = public(stack, "public-feed")

    assert reply.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(reply.body)
    assert not feed.bozo
    assert feed.version == "atom10"
    assert len(feed.entries) == 20
    assert feed.entries[0].title == "Story 21"
    assert feed.entries[0].link.endswith("/articles/story-21")
