"""The OpenAPI document and its Swagger UI page, built from the routers they are given (api/routing.py
gives every router of both functions, so the document describes exactly what the code validates)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from newsdesk.api.resolver import ADMIN_PREFIX, EditorRouter, create_resolver

TITLE = "Newsdesk API"
VERSION = "1.0.0"
SWAGGER_SPEC_LINK = 'ui.specActions.updateUrl(currentUrl.pathname + "?format=json");'


def include(app: Any, routers: Sequence[Router]) -> None:
    """Add `routers` to `app`, each editor router under /admin."""
    for router in routers:
        app.include_router(router, prefix=ADMIN_PREFIX if isinstance(router, EditorRouter) else None)


def openapi_document(routers: Sequence[Router], request_bodies: dict[tuple[str, str], Any]) -> str:
    """The document of `routers`; `request_bodies` (by path and method) replace what Powertools infers."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

    # Including a router makes it hand its routes the including app's request: give each back to the app it
    # serves, or the function's next request under it would read this document's app's (empty) request.
    serving = [(router, router.api_resolver) for router in routers]
    app = create_resolver()
    include(app, routers)
    try:
        document = json.loads(
            app.get_openapi_json_schema(
                title=TITLE,
                version=VERSION,
                description="Articles, feed and editor API of a Newsdesk publication.",
                servers=[Server(url="/")],
                security_schemes={
                    "bearerAuth": HTTPBearer(description="An editor token from `newsdesk token create`.")
                },
            )
        )
    finally:
        for router, resolver in serving:
            router.api_resolver = resolver
    for (path, method), body in request_bodies.items():
        document["paths"][path][method]["requestBody"] = body
    _drop_unreferenced_schemas(document)
    return json.dumps(document, indent=2)


def _drop_unreferenced_schemas(document: dict[str, Any]) -> None:
    """Powertools always adds its validation-error schemas; this API answers errors in its own shape, so
    nothing refers to them. Keep only the schemas the paths reach, directly or through other schemas."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    reached: set[str] = set()
    pending = _schema_refs(document["paths"])
    while pending:
        name = pending.pop()
        if name not in reached and name in schemas:
            reached.add(name)
            pending |= _schema_refs(schemas[name])
    for name in set(schemas) - reached:
        del schemas[name]


def _schema_refs(part: Any) -> set[str]:
    return set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(part)))


def swagger_page(document: str) -> str:
    """Swagger UI showing `document`; its script and styles ship inside Powertools (no CDN)."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    assets = Path(swagger_ui.__file__).parent
    page = generate_swagger_html(
        document.replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
        False,
    )
    # The UI links to the document it shows; Powertools points that link at `/docs?format=json`, a route it
    # serves itself but this API does not: point it at /openapi.json (relative, so a base path still works).
    if SWAGGER_SPEC_LINK not in page:
        raise RuntimeError("Powertools' Swagger UI page changed: check the link to the OpenAPI document")
    return page.replace(SWAGGER_SPEC_LINK, 'ui.specActions.updateUrl("openapi.json");')
