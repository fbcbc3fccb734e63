"""One OpenAPI document for the whole HTTP API, public and editor routes alike, and the routes serving it.

The routes are served by two functions; the document is built from both routers here, so it describes
exactly what the code validates. It is built on the first request for it: the OpenAPI models and the other
routers stay out of every other request's cold start.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from newsdesk.api.resolver import create_resolver, documented

router = Router()

TITLE = "Newsdesk API"
VERSION = "1.0.0"


@lru_cache(maxsize=1)
def openapi_json() -> str:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

    from newsdesk.api import deliveries, editor, public, subscriptions, uploads

    app = create_resolver()
    for routes in (
        public.router,
        router,
        subscriptions.router,
        editor.router,
        subscriptions.admin_router,
        uploads.router,
        deliveries.router,
    ):
        app.include_router(routes)
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
    return generate_swagger_html(
        openapi_json().replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
        False,
    )


@router.get(
    "/openapi.json",
    summary="This API's OpenAPI document",
    tags=["Documentation"],
    responses=documented(200, "OpenAPI 3.1 document.", content_type="application/json"),
)
def openapi_document() -> Response[str]:
    return Response(200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@router.get("/docs", summary="Swagger UI for this API", tags=["Documentation"], include_in_schema=False)
def swagger_ui() -> Response[str]:
    return Response(200, content_type="text/html; charset=utf-8", body=swagger_html())
