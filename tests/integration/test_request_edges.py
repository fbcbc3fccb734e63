"""Requests at the edges of what API Gateway hands over: path parameters it has already decoded, and bodies
nested deeper than a parser can follow. Each is answered as the client's request, never as a fault.

Requests are built by the local runner's event builder and routed by its route matcher, so they reach the
functions as API Gateway (and `make dev`) would hand them over.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler import Response, content_types

from local.apigateway.server import match_route
from local.lambda_runtime.events import HttpRequest, http_api_event
from local.stack import project_template
from local.template.model import Template
from newsdesk import dependencies
from newsdesk.api.resolver import create_resolver
from newsdesk.api.routing import openapi_json
from newsdesk.clock import utc_now
from newsdesk.models.subscribers import Subscriber, SubscriberStatus
from tests.integration.conftest import ROOT, Reply, Stack
from tests.support.events import ADMIN_CONTEXT

ARTICLE = {"title": "Harbour reopens", "author": "Ada", "body": "Boats are **back**."}


def send(stack: Stack, method: str, path: str, body: bytes = b"", content_type: str | None = None) -> Reply:
    """`path` as the client sends it (percent-encoded): decoded once, matched and wrapped like API Gateway does."""
    request = HttpRequest(
        method=method,
        path=path,
        headers=[("content-type", content_type)] if content_type else [],
        body=body,
    )
    found = match_route(stack.template.routes, method, request.decoded_path)
    assert found is not None, f"no route for {method} {request.decoded_path}"
    route, parameters = found
    authorizer: dict[str, Any] | None = ADMIN_CONTEXT if route.authorizer else None
    event = http_api_event(request, route.route_key, parameters, authorizer_context=authorizer)
    return stack.call(route.function_id, event)


def stored_subscriber(address: str) -> Subscriber:
    now = utc_now()
    subscriber = Subscriber(email=address, status=SubscriberStatus.PENDING, created_at=now, updated_at=now)
    assert dependencies.container().subscriber_repository.create_pending(subscriber)
    return subscriber


# ---------------------------------------------------------------------- path parameters, decoded once


def test_erasing_names_exactly_the_address_in_the_path(stack: Stack) -> None:
    # Given two people whose addresses differ only in an escape that decodes to the other
    stored_subscriber("x%41y@example.org")
    stored_subscriber("xay@example.org")

    # When an editor erases the first, percent-encoding it in the path as any HTTP client does
    reply = send(stack, "DELETE", "/admin/subscribers/x%2541y%40example.org")

    # Then exactly that person is erased, and the other is still there
    assert reply.status == 204, reply.body
    repository = dependencies.container().subscriber_repository
    assert repository.get("x%41y@example.org") is None
    assert repository.get("xay@example.org") is not None


@pytest.mark.parametrize("address", ["a#b@example.org", "a?b@example.org", 'a"b"@example.org', "a\\b@example.org"])
def test_an_address_with_characters_a_url_must_escape_can_be_erased(stack: Stack, address: str) -> None:
    stored_subscriber(address)
    encoded = "".join(ch if ch.isalnum() or ch in ".-_" else f"%{ord(ch):02X}" for ch in address)

    reply = send(stack, "DELETE", f"/admin/subscribers/{encoded}")

    assert reply.status == 204, reply.body
    assert dependencies.container().subscriber_repository.get(address) is None


def test_an_unknown_address_with_an_escape_is_a_404_and_erases_nothing(stack: Stack) -> None:
    stored_subscriber("xay@example.org")

    reply = send(stack, "DELETE", "/admin/subscribers/x%2561y%40example.org")

    assert reply.status == 404
    assert set(reply.json()["error"]) == {"code", "message", "details"}
    assert dependencies.container().subscriber_repository.get("xay@example.org") is not None


TRICKY_VALUES = ["x%41y", "100%", "a#b", "a?b=c", 'say "hi"', "back\\slash", "caf\u00e9", "a b", "~!$&'()*+,;=:@"]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_every_route_gets_its_path_parameter_exactly_as_api_gateway_decoded_it(value: str) -> None:
    # Given a route with a parameter, in the resolver every HTTP function uses
    app = create_resolver()

    @app.get("/things/<name>/parts")
    def echo(name: str) -> Response[str]:
        return Response(200, content_types.APPLICATION_JSON, json.dumps({"name": name}))

    # When the client percent-encodes the value in the path, as API Gateway expects
    encoded = "".join(f"%{byte:02X}" for byte in value.encode())
    request = HttpRequest(method="GET", path=f"/things/{encoded}/parts")
    event = http_api_event(request, "GET /things/{name}/parts", {"name": value})
    reply = app.resolve(event, cast(Any, None))  # no Lambda context: the route needs none

    # Then the handler sees the value itself: decoded once, never twice
    assert reply["statusCode"] == 200, reply
    assert json.loads(reply["body"]) == {"name": value}


def test_no_handler_decodes_a_path_parameter_again() -> None:
    # Every template route with a {parameter} is served by a handler taking it as it comes; a second
    # decoding anywhere in the routes' modules is the mistake this guards against.
    template: Template = project_template()
    assert any("{" in route.path for route in template.routes)
    for module in sorted((ROOT / "shared" / "newsdesk" / "api").glob("*.py")):
        source = module.read_text()
        assert "unquote" not in source, f"{module.name} decodes something API Gateway already decoded"


# ---------------------------------------------------------------------- bodies nested too deeply


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"title": ' + deep_json(depth) + b', "author": "Ada", "body": "x"}'


def routes_reading_json() -> list[tuple[str, str]]:
    """Every route whose OpenAPI operation takes a JSON body (the document the code validates with)."""
    paths = json.loads(openapi_json())["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "application/json" in (operation.get("requestBody") or {}).get("content", {})
    )


JSON_ROUTES = routes_reading_json()
OTHER_BODY_ROUTES = sorted(
    {(route.method, route.path) for route in project_template().routes}
    - set(JSON_ROUTES)
    - {(route.method, route.path) for route in project_template().routes
       if route.method not in ("POST", "PUT", "PATCH")}
)  # fmt: skip
DEEP_BODIES = [deep_json(1000), deep_json(100_000), deep_object(3000)]
DEEP_IDS = ["1000-arrays", "100000-arrays", "in-a-field"]
STORED = ("ArticlesTable", "SubscribersTable", "PublicationsTable")


def an_article(stack: Stack) -> str:
    created = send(stack, "POST", "/admin/articles", json.dumps(ARTICLE).encode(), "application/json")
    assert created.status == 201, created.body
    return str(created.json()["id"])


def test_the_json_routes_are_the_ones_expected() -> None:
    assert ("POST", "/subscribers") in JSON_ROUTES
    assert ("POST", "/admin/articles") in JSON_ROUTES
    assert ("PATCH", "/admin/articles/{article_id}") in JSON_ROUTES


@pytest.mark.parametrize("body", DEEP_BODIES, ids=DEEP_IDS)
@pytest.mark.parametrize(("method", "route_path"), JSON_ROUTES, ids=[f"{m} {p}" for m, p in JSON_ROUTES])
def test_deeply_nested_json_is_a_400_and_changes_nothing(
    stack: Stack, method: str, route_path: str, body: bytes
) -> None:
    # Given an article (for the routes that name one) and the stored items as they are
    path = route_path.replace("{article_id}", an_article(stack))
    before = {name: stack.items(name) for name in STORED}

    # When the body nests arrays deeper than a parser can follow (about 1,000 fit in 2 KB)
    reply = send(stack, method, path, body, "application/json")

    # Then the body is malformed, as one that is not JSON at all, and nothing changed
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert error["code"] == "malformed_json"
    assert set(error) == {"code", "message", "details"}
    assert {name: stack.items(name) for name in STORED} == before


@pytest.mark.parametrize(("method", "route_path"), OTHER_BODY_ROUTES, ids=[f"{m} {p}" for m, p in OTHER_BODY_ROUTES])
def test_routes_that_ignore_a_body_are_not_upset_by_a_deep_one(stack: Stack, method: str, route_path: str) -> None:
    path = route_path.replace("{article_id}", an_article(stack))

    reply = send(stack, method, path, deep_json(100_000), "application/json")

    assert reply.status < 500, reply.body
