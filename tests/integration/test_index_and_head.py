"""`GET /` points the way, and HEAD answers wherever GET does: in the template (API Gateway matches a route by
its exact method) and in the functions (the GET's status and headers, no body)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.template.model import Template
from newsdesk import dependencies
from tests.integration.conftest import Reply, Stack
from tests.support.events import sample_event


def as_head(event: dict[str, Any]) -> dict[str, Any]:
    head = copy.deepcopy(event)
    path = head["routeKey"].split(" ", 1)[1]
    head["routeKey"] = head["requestContext"]["routeKey"] = f"HEAD {path}"
    head["requestContext"]["http"]["method"] = "HEAD"
    return head


def public(stack: Stack, event: dict[str, Any]) -> Reply:
    return stack.call("PublicFunction", event)


def test_every_get_route_has_a_head_twin_on_the_same_function_and_authorizer(template: Template) -> None:
    routes = {route.route_key: route for route in template.routes}
    gets = [route for route in template.routes if route.method == "GET"]

    assert gets
    for get in gets:
        head = routes.get(f"HEAD {get.path}")
        assert head is not None, f"GET {get.path} has no HEAD route"
        assert (head.function_id, head.auth_required) == (get.function_id, get.auth_required), get.path
    assert {route.method for route in template.routes if route.method not in ("GET", "HEAD")} <= {
        "POST", "PUT", "PATCH", "DELETE",
    }  # fmt: skip


def test_the_index_points_to_the_docs_the_feed_and_the_articles(stack: Stack) -> None:
    reply = public(stack, sample_event("public-index"))

    assert reply.status == 200
    assert reply.json()["links"] == {
        "articles": "/articles",
        "feed": "/feed.xml",
        "docs": "/docs",
        "openapi": "/openapi.json",
    }
    assert reply.headers["vary"] == "Accept"


def test_the_index_is_a_page_for_a_browser_and_names_the_local_pages_locally(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_PAGES", "/_local/")
    dependencies.reset()  # settings are read once per container
    reply = public(stack, sample_event("public-index", headers={"accept": "text/html,*/*;q=0.8"}))

    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    for link in ("/docs", "/feed.xml", "/_local/"):
        assert f'href="{link}"' in reply.body


@pytest.mark.parametrize(
    "name",
    ["public-index", "public-list-articles", "public-feed", "public-unsubscribe-page"],
)
def test_head_is_the_get_without_the_body(stack: Stack, name: str) -> None:
    get = public(stack, sample_event(name))
    head = public(stack, as_head(sample_event(name)))

    assert head.status == get.status
    assert head.body == ""
    # The GET's headers, and the length of the body a GET would have carried
    assert {key: value for key, value in head.headers.items() if key != "etag"} == {
        key: value for key, value in get.headers.items() if key != "etag"
    } | {"content-length": str(len(get.body.encode()))}
    assert get.body


def test_head_on_an_editor_route_answers_as_its_get(stack: Stack) -> None:
    event = sample_event("editor-list-articles")
    get = stack.call("EditorFunction", event)
    head = stack.call("EditorFunction", as_head(event))

    assert (head.status, head.body) == (get.status, "")
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.body.encode()))


def test_the_docs_page_links_to_the_json_document(stack: Stack) -> None:
    event = sample_event("public-index")
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /docs"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/docs"

    page = public(stack, event).body

    assert 'ui.specActions.updateUrl("openapi.json")' in page
    assert "?format=json" not in page
