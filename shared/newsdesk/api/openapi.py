"""One OpenAPI document for the whole HTTP API, public and editor routes alike.

The routes are served by two functions; the document is built from both routers here, so it describes
exactly what the code validates.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

from newsdesk.api.resolver import create_resolver

TITLE = "Newsdesk API"
VERSION = "1.0.0"


@lru_cache(maxsize=1)
def openapi_json() -> str:
    from newsdesk.api import deliveries, editor, public, subscriptions, topics, uploads, webhooks

    app = create_resolver()
    for router in (
        public.router,
        subscriptions.router,
        topics.router,
        editor.router,
        subscriptions.admin_router,
        topics.admin_router,
        uploads.router,
        deliveries.router,
        webhooks.router,
    ):
        app.include_router(router)
    document = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description="Articles, feed and editor API of a Newsdesk publication.",
            servers=[Server(url="/")],
            security_schemes={"bearerAuth": HTTPBearer(description="An editor token from `newsdesk token create`.")},
        )
    )
    document["paths"]["/subscribers/preferences"]["post"]["requestBody"] = subscriptions.PREFERENCES_FORM
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


@lru_cache(maxsize=1)
def swagger_html() -> str:
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    # The UI's script and styles ship inside Powertools, so the page works without reaching a CDN.
    assets = Path(swagger_ui.__file__).parent
    page = generate_swagger_html(
        openapi_json().replace("</", "<\\/"),
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


SWAGGER_SPEC_LINK = 'ui.specActions.updateUrl(currentUrl.pathname + "?format=json");'
