"""The HTTP API in one place: which routers each function serves, and the documentation routes, whose
OpenAPI document is built from the routers of both functions.

A function imports a router's module (with the services and models it uses) only when a request first asks
for a path under it: each router is declared with the paths its routes start with, and tests check that
every route and every path of the template is claimed by exactly its own router.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from newsdesk import snapstart
from newsdesk.api.openapi import include, openapi_document, swagger_page
from newsdesk.api.resolver import ADMIN_PREFIX, HttpApiResolver, create_resolver, documented

docs = Router()


@dataclass(frozen=True)
class Routes:
    """A router (the `attribute` of `module`) and the paths its routes are under. A path is claimed by the
    router with the most specific pattern that starts it: a pattern's segments match the path's first
    segments, `{name}` any one of them, a literal beating a `{name}` ("/" claims the index alone)."""

    module: str
    attribute: str
    paths: tuple[str, ...]

    def router(self) -> Router:
        router: Router = getattr(importlib.import_module(self.module), self.attribute)
        return router

    def specificity(self, path: str) -> int:
        """How closely the best of these patterns matches `path`; -1 when none does."""
        asked = _segments(path)
        return max((_specificity(_segments(mine), asked) for mine in self.paths), default=-1)


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _specificity(pattern: list[str], asked: list[str]) -> int:
    if not pattern:
        return 0 if not asked else -1
    if len(asked) < len(pattern):
        return -1
    score = 0
    for mine, theirs in zip(pattern, asked, strict=False):
        if mine.startswith("{"):
            score += 1
        elif mine == theirs:
            score += 2
        else:
            return -1
    return score


def router_for(routes: Sequence[Routes], path: str) -> Routes | None:
    """The router among `routes` that claims `path` (the first of equals), or None."""
    best = max(routes, key=lambda mine: mine.specificity(path), default=None)
    return best if best is not None and best.specificity(path) >= 0 else None


_ARTICLE = f"{ADMIN_PREFIX}/articles/{{article_id}}"

PUBLIC_ROUTES = (
    # Articles and authors, the feed, the mailing list's pages, topics, draft previews, corrections and
    # sitemaps, and this API's documentation.
    Routes("newsdesk.api.public", "router", ("/", "/articles", "/authors", "/feed.xml")),
    Routes("newsdesk.api.routing", "docs", ("/openapi.json", "/docs")),
    Routes("newsdesk.api.subscriptions", "router", ("/subscribers", "/unsubscribe")),
    Routes("newsdesk.api.topics", "router", ("/topics",)),
    Routes("newsdesk.api.previews", "router", ("/preview",)),
    Routes("newsdesk.api.news", "router", ("/corrections", "/sitemap.xml", "/sitemaps", "/news-sitemap.xml")),
)
"""PublicFunction's routers."""

EDITOR_ROUTES = (
    # Everything under /admin (API Gateway's authorizer checks the token first).
    Routes("newsdesk.api.editor", "router", (f"{ADMIN_PREFIX}/articles",)),
    Routes("newsdesk.api.revisions", "router", (f"{_ARTICLE}/revisions",)),
    Routes("newsdesk.api.previews", "admin_router", (f"{_ARTICLE}/previews",)),
    Routes(
        "newsdesk.api.news", "admin_router", (f"{_ARTICLE}/corrections", f"{_ARTICLE}/embargo", f"{_ARTICLE}/breaking")
    ),
    Routes("newsdesk.api.people", "router", (f"{ADMIN_PREFIX}/people", f"{ADMIN_PREFIX}/me")),
    Routes("newsdesk.api.audit", "router", (f"{ADMIN_PREFIX}/audit",)),
    Routes("newsdesk.api.subscriptions", "admin_router", (f"{ADMIN_PREFIX}/subscribers", f"{ADMIN_PREFIX}/erasures")),
    Routes("newsdesk.api.topics", "admin_router", (f"{ADMIN_PREFIX}/topics",)),
    Routes("newsdesk.api.uploads", "router", (f"{ADMIN_PREFIX}/uploads",)),
    Routes(
        "newsdesk.api.deliveries",
        "router",
        (f"{ADMIN_PREFIX}/deliveries", f"{_ARTICLE}/delivery", f"{_ARTICLE}/test-email"),
    ),
    Routes("newsdesk.api.webhooks", "router", (f"{ADMIN_PREFIX}/webhooks",)),
)
"""EditorFunction's routers."""


class RoutedApp(HttpApiResolver):
    """A function's resolver, which includes each of its routers when a request first asks for a path it
    claims. A path no router claims loads none and is answered 404, as before."""

    def __init__(self, routes: Sequence[Routes], **options: Any) -> None:
        super().__init__(**options)
        self._routes = tuple(routes)
        self._waiting = list(routes)
        # With SnapStart the snapshot holds every router: a resumed environment then imports none.
        snapstart.before_snapshot(self.include_all)

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        claimant = router_for(self._routes, str(event.get("rawPath") or "/"))
        self._include(lambda routes: routes is claimant)
        return super().resolve(event, context)

    def include_all(self) -> None:
        """Include every router now (what a SnapStart snapshot should hold)."""
        self._include(lambda _: True)

    def _include(self, wanted: Callable[[Routes], bool]) -> None:
        for routes in [routes for routes in self._waiting if wanted(routes)]:
            include(self, [routes.router()])
            self._waiting.remove(routes)


def public_routers() -> list[Router]:
    return [routes.router() for routes in PUBLIC_ROUTES]


def editor_routers() -> list[Router]:
    return [routes.router() for routes in EDITOR_ROUTES]


def public_app() -> HttpApiResolver:
    return create_resolver(lambda **options: RoutedApp(PUBLIC_ROUTES, **options))


def editor_app() -> HttpApiResolver:
    return create_resolver(lambda **options: RoutedApp(EDITOR_ROUTES, **options))


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
