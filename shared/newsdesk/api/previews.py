"""Draft previews: the newsroom's share links (made, listed and revoked by the article's author or an editor),
and the page a link opens for anyone, without a token."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from newsdesk.api.access import current_actor, requires
from newsdesk.api.resolver import AUTH_ERRORS, EditorRouter, ErrorResponse, GatewayError, documented
from newsdesk.dependencies import preview_service, site_settings
from newsdesk.errors import NotFound
from newsdesk.models.people import Actor, Role
from newsdesk.models.revisions import CreatePreviewRequest, Preview, PreviewPage
from newsdesk.services.previews import PreviewService, Shown, Unavailable
from newsdesk.templating import render

router = Router()
admin_router = EditorRouter()

Previews = Annotated[PreviewService, Depends(preview_service)]
Caller = Annotated[Actor, Depends(current_actor)]
TAGS = ["Revisions"]

# A preview is for the people it was shared with: no search engine, no cache, no Referer carrying the link
# (its token is the path) to the sites the draft links to; only the sanitized article's own images load.
PREVIEW_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'",
}
_UNAVAILABLE = {
    Unavailable.EXPIRED: ("This preview has expired", "The link's time is over. Ask whoever shared it for a new one."),
    Unavailable.REVOKED: ("This preview was revoked", "Whoever shared this link has withdrawn it."),
    Unavailable.GONE: ("This preview is gone", "The draft or the version it showed no longer exists."),
}


def _page(status: int, heading: str, message: str = "", shown: Shown | None = None) -> Response[str]:
    notice = ""
    if shown is not None:
        version = f"revision {shown.revision}" if shown.revision else "the current draft"
        notice = (
            f"Preview of {version}, not published: do not share. This link works until"
            f" {shown.expires_at:%Y-%m-%d %H:%M} UTC."
        )
        embargo = shown.article.embargo_until
        if embargo is not None and shown.article.published_at is None:
            notice = f"EMBARGOED until {embargo:%Y-%m-%d %H:%M} UTC: not to be published before then. {notice}"
    body = render(
        "pages/preview.html",
        publication=site_settings().publication_name,
        heading=heading,
        message=message,
        notice=notice,
        article=shown.article if shown else None,
    )
    return Response(status, "text/html; charset=utf-8", body, headers=PREVIEW_HEADERS)


def _responses() -> dict[int, Any]:
    html = {"text/html": {"schema": {"type": "string"}}}
    return {
        200: {"description": "The article as the link shows it (noindex, no-store).", "content": html},
        404: {
            "description": "Not a preview link of ours (API Gateway answers `Not Found` itself for a path it has no"
            " route for).",
            "content": {**html, content_types.APPLICATION_JSON: {"model": ErrorResponse | GatewayError}},
        },
        410: {"description": "The link expired or was revoked, or what it showed is gone: the page says which.",
              "content": html},
    }  # fmt: skip


@router.get(
    "/preview/<token>",
    summary="A draft shared by its preview link: the article, not indexed, not cached",
    tags=["Articles"],
    responses=_responses(),
)
def preview_page(token: str, previews: Previews) -> Response[str]:
    try:
        shown = previews.open(token)
    except NotFound:
        return _page(404, "This preview link does not work", "It is not a link we made, or it was altered.")
    if isinstance(shown, Unavailable):
        return _page(410, *_UNAVAILABLE[shown])
    return _page(200, shown.article.title, shown=shown)


@admin_router.post(
    "/articles/<article_id>/previews",
    summary="Share the article (or one revision) by a link anyone may open until it expires or is revoked",
    tags=TAGS,
    responses=documented(201, "The link, with its `url` (shown this once).", *AUTH_ERRORS, 400, 404, 415, 503),
)
@requires(Role.CONTRIBUTOR)
def create_preview(
    article_id: str, request: Annotated[CreatePreviewRequest, Body()], previews: Previews, actor: Caller
) -> Response[Preview]:
    preview = previews.create(article_id, request, actor=actor)
    return Response(201, content_types.APPLICATION_JSON, preview, headers={"Cache-Control": "no-store"})


@admin_router.get(
    "/articles/<article_id>/previews",
    summary="The article's preview links (without their urls), until a day after each expires",
    tags=TAGS,
    responses=documented(200, "One page of links.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.CONTRIBUTOR)
def list_previews(
    article_id: str,
    previews: Previews,
    actor: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
) -> PreviewPage:
    items, next_cursor = previews.page(article_id, actor=actor, limit=limit, cursor=cursor)
    return PreviewPage(items=items, next_cursor=next_cursor)


@admin_router.delete(
    "/articles/<article_id>/previews/<preview_id>",
    summary="Revoke a preview link: it stops at once",
    tags=TAGS,
    responses=documented(200, "The revoked link.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.CONTRIBUTOR)
def revoke_preview(article_id: str, preview_id: str, previews: Previews, actor: Caller) -> Preview:
    return previews.revoke(article_id, preview_id, actor=actor)
