"""An editor writes and publishes over HTTP on the local stack; a reader finds the article."""

from __future__ import annotations

import feedparser
import pytest

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e


def test_write_publish_read(local_stack: LocalStack) -> None:
    created = local_stack.request(
        "POST",
        "/admin/articles",
        json_body={"title": "Harbour reopens", "author": "Ada", "body": "Boats are *back*.", "tags": ["boats"]},
        editor=True,
    )
    assert created.status == 201, created.body
    article = created.json()

    assert local_stack.request("GET", f"/articles/{article['slug']}").status == 404
    published = local_stack.request("POST", f"/admin/articles/{article['id']}/publish", editor=True)
    assert published.status == 200

    read = local_stack.request("GET", f"/articles/{article['slug']}")
    assert read.status == 200
    assert read.json()["html"] == "<p>Boats are <em>back</em>.</p>\n"
    listed = local_stack.request("GET", "/articles?tag=boats").json()["items"]
    assert [item["slug"] for item in listed] == [article["slug"]]
    feed = feedparser.parse(local_stack.request("GET", "/feed.xml").body)
    assert "Harbour reopens" in [entry.title for entry in feed.entries]


def test_stale_edit_over_http_is_412(local_stack: LocalStack) -> None:
    article = local_stack.request(
        "POST", "/admin/articles", json_body={"title": "Edit me", "author": "Ada", "body": "x"}, editor=True
    ).json()
    path = f"/admin/articles/{article['id']}"

    first = local_stack.request("PATCH", path, json_body={"title": "One"}, headers={"If-Match": '"1"'}, editor=True)
    second = local_stack.request("PATCH", path, json_body={"title": "Two"}, headers={"If-Match": '"1"'}, editor=True)

    assert (first.status, first.headers["ETag"]) == (200, '"2"')
    assert second.status == 412
    assert second.json()["error"]["code"] == "version_mismatch"


def test_bad_json_is_a_400_with_the_error_shape(local_stack: LocalStack) -> None:
    reply = local_stack.request(
        "POST", "/admin/articles", data=b"{oops", headers={"Content-Type": "application/json"}, editor=True
    )

    assert reply.status == 400
    assert reply.json()["error"]["code"] == "malformed_json"


def test_a_form_encoded_body_is_told_to_send_json(local_stack: LocalStack) -> None:
    # What `curl -d '{...}'` sends without -H 'Content-Type: application/json'.
    reply = local_stack.request("POST", "/admin/articles", data=b'{"title": "x"}', editor=True)

    assert reply.status == 415
    assert "application/json" in reply.json()["error"]["message"]


def test_documentation_is_served(local_stack: LocalStack) -> None:
    document = local_stack.request("GET", "/openapi.json").json()
    assert "/admin/articles/{article_id}/publish" in document["paths"]
    docs = local_stack.request("GET", "/docs")
    assert docs.status == 200
    assert b"swagger" in docs.body.lower()
