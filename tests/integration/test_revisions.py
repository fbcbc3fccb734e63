"""Revisions, through the HTTP API on the in-process stack: every save keeps one (who, when, title, body,
tags), they are listed and read, a restore is a new revision under the article's ETag rules, and only the
newest RevisionsKept stay."""

from __future__ import annotations

from typing import Any

import pytest

from newsdesk import dependencies
from tests.integration.conftest import Stack
from tests.integration.test_people import join, refused_for_role
from tests.integration.test_review import act, write


def revisions(stack: Stack, token: str, article_id: str, **query: str) -> list[dict[str, Any]]:
    suffix = "&".join(f"{key}={value}" for key, value in query.items())
    reply = stack.http("GET", f"/admin/articles/{article_id}/revisions?{suffix}", token=token)
    assert reply.status == 200, reply.body
    return list(reply.json()["items"])


def stored_revisions(stack: Stack, article_id: str) -> list[str]:
    return sorted(
        item["sk"]["S"] for item in stack.items("RevisionsTable") if item["pk"]["S"] == f"article#{article_id}"
    )


def test_every_save_keeps_a_revision_and_a_restore_is_a_new_one(stack: Stack, admin: str) -> None:
    writer = join(stack, admin, "contributor")
    article = write(stack, writer, tags=["harbour"])
    path = f"/admin/articles/{article['id']}"
    stack.http("PATCH", path, token=writer.token, json_body={"title": "Harbour reopens at dawn"})
    stack.http("PATCH", path, token=writer.token, json_body={"body": "Ferries too.", "tags": ["ferries"]})

    listed = revisions(stack, writer.token, article["id"])
    first = stack.http("GET", f"{path}/revisions/1", token=writer.token).json()
    restored = stack.http("POST", f"{path}/revisions/1/restore", token=writer.token)

    assert [(item["number"], item["title"], item["tags"], item["by"]) for item in listed] == [
        (3, "Harbour reopens at dawn", ["ferries"], writer.id),
        (2, "Harbour reopens at dawn", ["harbour"], writer.id),
        (1, "Harbour reopens", ["harbour"], writer.id),
    ]
    assert "body" not in listed[0]
    assert (first["title"], first["body"], first["tags"]) == ("Harbour reopens", "Boats are **back**.", ["harbour"])
    assert restored.status == 200, restored.body
    assert (restored.json()["title"], restored.json()["body"], restored.json()["tags"]) == (
        "Harbour reopens", "Boats are **back**.", ["harbour"],
    )  # fmt: skip
    assert (restored.json()["revision"], restored.json()["version"], restored.headers["etag"]) == (4, 4, '"4"')
    assert [item["number"] for item in revisions(stack, writer.token, article["id"])] == [4, 3, 2, 1]
    latest = stack.http("GET", "/admin/audit?limit=1", token=admin).json()["items"][0]
    assert (latest["action"], latest["details"]["restored"], latest["details"]["revision"]) == (
        "article.restored",
        1,
        4,
    )


def test_restoring_a_published_article_keeps_its_etag_rules_and_updates_what_readers_see(
    stack: Stack, admin: str
) -> None:
    editor = join(stack, admin, "editor")
    article = write(stack, editor)
    path = f"/admin/articles/{article['id']}"
    stack.http("PATCH", path, token=editor.token, json_body={"body": "A wrong figure."})
    published = act(stack, editor, article, "publish").json()

    stale = stack.http("POST", f"{path}/revisions/1/restore", token=editor.token, headers={"If-Match": '"1"'})
    current = stack.http(
        "POST", f"{path}/revisions/1/restore", token=editor.token, headers={"If-Match": f'"{published["version"]}"'}
    )

    assert (stale.status, stale.json()["error"]["code"]) == (412, "version_mismatch")
    assert current.status == 200, current.body
    assert current.json()["status"] == "published"
    assert (
        stack.http("GET", f"/articles/{article['slug']}").json()["html"] == "<p>Boats are <strong>back</strong>.</p>\n"
    )


def test_only_the_newest_revisions_are_kept(stack: Stack, admin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stack deployed with RevisionsKept = 3
    monkeypatch.setenv("REVISIONS_KEPT", "3")
    dependencies.reset()
    editor = join(stack, admin, "editor")
    article = write(stack, editor)

    # When the article is saved four more times
    for n in range(2, 6):
        stack.http("PATCH", f"/admin/articles/{article['id']}", token=editor.token, json_body={"title": f"Take {n}"})

    # Then revisions 3 to 5 are kept, and the older ones are gone from the table too
    assert [item["number"] for item in revisions(stack, editor.token, article["id"])] == [5, 4, 3]
    assert stored_revisions(stack, article["id"]) == ["revision#00000003", "revision#00000004", "revision#00000005"]
    gone = stack.http("GET", f"/admin/articles/{article['id']}/revisions/1", token=editor.token)
    assert (gone.status, gone.json()["error"]["code"]) == (404, "not_found")


def test_a_contributor_reads_and_restores_only_their_own_drafts(stack: Stack, admin: str) -> None:
    writer, other = join(stack, admin, "contributor"), join(stack, admin, "contributor")
    article = write(stack, writer)
    stack.http("PATCH", f"/admin/articles/{article['id']}", token=writer.token, json_body={"title": "Second"})
    act(stack, writer, article, "submit")
    path = f"/admin/articles/{article['id']}/revisions"

    theirs = stack.http("GET", path, token=other.token)
    in_review = stack.http("POST", f"{path}/1/restore", token=writer.token)
    bad_number = stack.http("GET", f"{path}/zero", token=writer.token)

    assert refused_for_role(theirs, "editor", "contributor")
    assert (in_review.status, in_review.json()["error"]["code"]) == (409, "not_editable")
    assert bad_number.status == 422
    assert stack.http("GET", f"/admin/articles/{article['id']}", token=writer.token).json()["title"] == "Second"


def test_a_deleted_article_leaves_no_revisions(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor")
    article = write(stack, editor)
    stack.http("PATCH", f"/admin/articles/{article['id']}", token=editor.token, json_body={"title": "Second"})
    assert len(stored_revisions(stack, article["id"])) == 2

    assert stack.http("DELETE", f"/admin/articles/{article['id']}", token=editor.token).status == 204

    assert stored_revisions(stack, article["id"]) == []
