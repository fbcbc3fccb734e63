"""One OpenAPI document for the whole HTTP API, public and editor routes alike.

The routes are served by two functions; the document is built from both routers here, so it describes
exactly what the code validates.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

from newsdesk.api.resolver import create_resolver

TITLE = "Newsdesk API"
VERSION = "1.0.0"


@lru_cache(maxsize=1)
def openapi_json() -> str:
    from newsdesk.api import deliveries, editor, public, subscriptions, uploads

    app = create_resolver()
    for router in (
        public.router,
        subscriptions.router,
        editor.router,
        subscriptions.admin_router,
        uploads.router,
        deliveries.router,
    ):
        app.include_router(router)
    return app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description="Articles, feed and editor API of a Newsdesk publication.",
        servers=[Server(url="/")],
        security_schemes={"bearerAuth": HTTPBearer(description="An editor token from `newsdesk token create`.")},
    )


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
