"""The HTTP API in one place: which routers each function serves, and the documentation routes, whose
OpenAPI document is built from the routers of both functions.

Each list imports its routers when it is first asked for: a function loads only the routes it serves.
"""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from newsdesk.api.openapi import include, openapi_document, swagger_page
from newsdesk.api.resolver import create_resolver, documented

docs = Router()


def public_routers() -> list[Router]:
    """PublicFunction's: articles, the feed, the mailing list's pages, topics, and this API's documentation."""
    from newsdesk.api import news, public, subscriptions, topics

    return [public.router, docs, subscriptions.router, topics.router, news.router]


def editor_routers() -> list[Router]:
    """EditorFunction's: everything under /admin (API Gateway's authorizer checks the token first)."""
    from newsdesk.api import deliveries, editor, news, subscriptions, topics, uploads, webhooks

    return [
        editor.router,
        news.admin_router,
        subscriptions.admin_router,
        topics.admin_router,
        uploads.router,
        deliveries.router,
        webhooks.router,
    ]


def public_app() -> APIGatewayHttpResolver:
    app = create_resolver()
    include(app, public_routers())
    return app


def editor_app() -> APIGatewayHttpResolver:
    app = create_resolver()
    include(app, editor_routers())
    return app


@lru_cache(maxsize=1)
def openapi_json() -> str:
    from newsdesk.api.subscriptions import PREFERENCES_FORM

    bodies = {("/subscribers/preferences", "post"): PREFERENCES_FORM}
    return openapi_document([*public_routers(), *editor_routers()], bodies)


@docs.get(
    "/openapi.json",
    summary="This API's OpenAPI document",
    tags=["Documentation"],
    responses=documented(200, "OpenAPI 3.1 document.", content_type="application/json"),
)
def openapi_route() -> Response[str]:
    return Response(200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@docs.get("/docs", summary="Swagger UI for this API", tags=["Documentation"], include_in_schema=False)
def swagger_route() -> Response[str]:
    return Response(200, content_type="text/html; charset=utf-8", body=swagger_page(openapi_json()))
