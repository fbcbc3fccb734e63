"""Bylines and author pages, through the HTTP API on the in-process stack: an article has one or more
authors (profiles), its payloads, events and the Atom feed carry every one of them, and each author's page
lists their published articles; an article with the old single `author` keeps it."""

from __future__ import annotations

from typing import Any

import feedparser

from tests.integration.conftest import BusTap, Stack
from tests.integration.test_people import ARTICLE, Member, join, refused_for_role
from tests.integration.test_review import act

PROFILE = {"bio": "Covers the harbour.", "image_url": "https://media.example.org/ada.jpg",
           "links": [{"label": "Mastodon", "url": "https://social.example/@ada"}]}  # fmt: skip


def profile(stack: Stack, token: str, member: Member, **fields: Any) -> dict[str, Any]:
    reply = stack.http("PUT", f"/admin/people/{member.id}/author", token=token, json_body={**PROFILE, **fields})
    assert reply.status == 200, reply.body
    return dict(reply.json())


def publish(stack: Stack, editor: Member, **fields: Any) -> dict[str, Any]:
    body = {key: value for key, value in {**ARTICLE, **fields}.items() if value is not None}
    created = stack.http("POST", "/admin/articles", token=editor.token, json_body=body)
    assert created.status == 201, created.body
    published = act(stack, editor, created.json(), "publish")
    assert published.status == 200, published.body
    return dict(published.json())


def test_an_article_by_two_authors_is_on_both_pages_and_carries_both_everywhere(
    stack: Stack, admin: str, bus: BusTap
) -> None:
    ada = join(stack, admin, "contributor", "Ada Brennan")
    sam = join(stack, admin, "editor", "Sam Okafor")
    profile(stack, admin, ada)
    profile(stack, sam.token, sam, slug="sam", name="Sam O.")  # an author sets their own profile

    article = publish(stack, sam, author=None, authors=["ada-brennan", "sam"])
    stack.drain()

    bylines = [{"name": "Ada Brennan", "slug": "ada-brennan"}, {"name": "Sam O.", "slug": "sam"}]
    assert (article["author"], article["authors"]) == ("Ada Brennan and Sam O.", bylines)
    public = stack.http("GET", f"/articles/{article['slug']}").json()
    assert (public["author"], public["authors"]) == ("Ada Brennan and Sam O.", bylines)
    assert [item["authors"] for item in stack.http("GET", "/articles").json()["items"]] == [bylines]
    for slug in ("ada-brennan", "sam"):
        page = stack.http("GET", f"/authors/{slug}").json()
        assert [item["id"] for item in page["items"]] == [article["id"]]
        assert stack.http("GET", f"/articles?author={slug}").json()["items"][0]["id"] == article["id"]
    ada_page = stack.http("GET", "/authors/ada-brennan").json()["author"]
    assert (ada_page["name"], ada_page["bio"], ada_page["links"][0]["label"]) == ("Ada Brennan", PROFILE["bio"],
                                                                                   "Mastodon")  # fmt: skip
    assert "person_id" not in ada_page
    assert "email" not in ada_page

    entry = feedparser.parse(stack.http("GET", "/feed.xml").body).entries[0]
    assert [(author.name, author.href) for author in entry.authors] == [
        ("Ada Brennan", "https://example.com/authors/ada-brennan"),
        ("Sam O.", "https://example.com/authors/sam"),
    ]
    (published,) = [event for event in bus() if event["detail-type"] == "article.published"]
    assert published["detail"]["data"]["authors"] == bylines


def test_the_authors_list_and_an_authors_articles_come_a_page_at_a_time(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor", "Ed Desk")
    writers = [join(stack, admin, "contributor", f"Writer {n}") for n in (1, 2, 3)]
    for writer in writers:
        profile(stack, admin, writer)
    profile(stack, admin, editor)
    stories = [publish(stack, editor, title=f"Story {n}", author=None, authors=["ed-desk"]) for n in (1, 2, 3)]

    first = stack.http("GET", "/authors?limit=2").json()
    rest = stack.http("GET", f"/authors?limit=2&cursor={first['next_cursor']}").json()
    page_one = stack.http("GET", "/authors/ed-desk?limit=2").json()
    page_two = stack.http("GET", f"/authors/ed-desk?limit=2&cursor={page_one['next_cursor']}").json()
    other = stack.http("GET", f"/authors/writer-1?cursor={page_one['next_cursor']}")

    assert [author["slug"] for author in first["items"] + rest["items"]] == [
        "ed-desk", "writer-1", "writer-2", "writer-3",
    ]  # fmt: skip
    assert rest["next_cursor"] is None
    assert [item["title"] for item in page_one["items"] + page_two["items"]] == ["Story 3", "Story 2", "Story 1"]
    assert page_two["next_cursor"] is None
    assert (other.status, other.json()["error"]["code"]) == (422, "invalid_cursor")  # another author's cursor
    assert {story["id"] for story in stories} == {item["id"] for item in page_one["items"] + page_two["items"]}


def test_an_article_with_the_old_author_string_keeps_it_and_joins_the_matching_authors_page(
    stack: Stack, admin: str
) -> None:
    editor = join(stack, admin, "editor", "Ada Lovelace")
    old_style = publish(stack, editor)  # {"author": "Ada Lovelace"}, as clients from before bylines send it

    before = stack.http("GET", "/authors/ada-lovelace")
    profile(stack, admin, editor)
    after = stack.http("GET", "/authors/ada-lovelace").json()

    assert (old_style["author"], old_style["authors"]) == ("Ada Lovelace", [{"name": "Ada Lovelace", "slug": None}])
    assert before.status == 404
    assert [item["id"] for item in after["items"]] == [old_style["id"]]
    entry = feedparser.parse(stack.http("GET", "/feed.xml").body).entries[0]
    assert [author.name for author in entry.authors] == ["Ada Lovelace"]


def test_unknown_authors_and_bad_profiles_are_refused_and_change_nothing(stack: Stack, admin: str) -> None:
    ada, other = join(stack, admin, "contributor", "Ada Brennan"), join(stack, admin, "contributor", "Bo")
    profile(stack, admin, ada)

    unknown = stack.http("POST", "/admin/articles", token=ada.token,
                         json_body={**ARTICLE, "author": None, "authors": ["ada-brennan", "nobody"]})  # fmt: skip
    both = stack.http("POST", "/admin/articles", token=ada.token, json_body={**ARTICLE, "authors": ["ada-brennan"]})
    unsigned = {key: value for key, value in ARTICLE.items() if key != "author"}
    four = stack.http(
        "POST", "/admin/articles", token=ada.token, json_body={**unsigned, "authors": ["a", "b", "c", "d"]}
    )
    taken = stack.http("PUT", f"/admin/people/{other.id}/author", token=admin, json_body={"slug": "ada-brennan"})
    renamed = stack.http("PUT", f"/admin/people/{ada.id}/author", token=admin, json_body={"slug": "ada-b"})
    script = stack.http("PUT", f"/admin/people/{ada.id}/author", token=admin,
                        json_body={"image_url": "javascript:alert(1)"})  # fmt: skip
    someone_else = stack.http("PUT", f"/admin/people/{ada.id}/author", token=other.token, json_body={"bio": "x"})

    assert (unknown.status, unknown.json()["error"]["code"]) == (422, "unknown_authors")
    assert unknown.json()["error"]["details"][0]["slugs"] == ["nobody"]
    assert (both.status, four.status) == (422, 422)
    assert (taken.status, taken.json()["error"]["code"]) == (409, "author_slug_taken")
    assert (renamed.status, renamed.json()["error"]["code"]) == (409, "author_slug_fixed")
    assert script.status == 422
    assert refused_for_role(someone_else, "admin", "contributor")
    assert stack.http("GET", "/admin/articles", token=admin).json()["items"] == []
    assert [author["slug"] for author in stack.http("GET", "/authors").json()["items"]] == ["ada-brennan"]
    assert stack.http("GET", "/authors/ada-brennan").json()["author"]["bio"] == PROFILE["bio"]


def test_changing_the_authors_moves_the_article_between_author_pages(stack: Stack, admin: str) -> None:
    ada, sam = join(stack, admin, "editor", "Ada Brennan"), join(stack, admin, "editor", "Sam Okafor")
    profile(stack, admin, ada)
    profile(stack, admin, sam)
    article = publish(stack, ada, author=None, authors=["ada-brennan"], tags=["harbour"])

    changed = stack.http(
        "PATCH", f"/admin/articles/{article['id']}", token=ada.token, json_body={"authors": ["sam-okafor"]}
    )

    assert changed.status == 200, changed.body
    assert changed.json()["author"] == "Sam Okafor"
    assert stack.http("GET", "/authors/ada-brennan").json()["items"] == []
    assert [item["id"] for item in stack.http("GET", "/authors/sam-okafor").json()["items"]] == [article["id"]]
    tagged = stack.http("GET", "/articles?tag=harbour&author=sam-okafor").json()["items"]
    assert [item["id"] for item in tagged] == [article["id"]]
    assert stack.http("GET", "/articles?tag=harbour&author=ada-brennan").json()["items"] == []
