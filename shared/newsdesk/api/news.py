"""A news site's routes: the corrections list and the sitemaps (public), and the editor's corrections,
embargoes and breaking news (under /admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from newsdesk.api.access import current_actor, requires
from newsdesk.api.caching import CDN_CACHE, FEED_CACHE, validators
from newsdesk.api.etags import IfMatch, parse_if_match, with_etag
from newsdesk.api.resolver import AUTH_ERRORS, CONDITIONAL_READ, EditorRouter, documented
from newsdesk.dependencies import api_url, news_editor, news_reader, news_settings, site_settings
from newsdesk.errors import NotFound
from newsdesk.models.articles import Article
from newsdesk.models.corrections import CorrectionPage, CorrectionRequest
from newsdesk.models.news import BreakingRequest, EmbargoRequest
from newsdesk.models.people import Actor, Role
from newsdesk.services.news import NewsEditor, NewsReader

router = Router()
admin_router = EditorRouter()

Editor = Annotated[NewsEditor, Depends(news_editor)]
Reader = Annotated[NewsReader, Depends(news_reader)]
Caller = Annotated[Actor, Depends(current_actor)]
XML = "application/xml"
_PAGE_NAME_DIGITS = 6


@router.get(
    "/corrections",
    summary="Corrections, clarifications and updates to published articles, newest first",
    tags=["Articles"],
    responses=documented(200, "One page of notes, each with its article.", 503, headers=CONDITIONAL_READ),
)
def list_corrections(
    reader: Reader,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
) -> Response[CorrectionPage]:
    items, next_cursor = reader.corrections(limit=limit, cursor=cursor)
    page = CorrectionPage(items=items, next_cursor=next_cursor)
    changed = max((item.published_at for item in items), default=None)
    headers = validators(router.current_event.headers, page.model_dump_json(), changed, cache_control=CDN_CACHE)
    return Response(200, content_types.APPLICATION_JSON, page, headers=headers)


@router.get(
    "/sitemap.xml",
    summary="Sitemap index: the pages listing every published article",
    tags=["Articles"],
    responses=documented(200, "A sitemap index (sitemaps.org).", content_type=XML, headers=CONDITIONAL_READ),
)
def sitemap_index(reader: Reader) -> Response[str]:
    from newsdesk import sitemaps

    pages = reader.sitemap_pages()
    xml = sitemaps.sitemap_index(pages, api_url())
    return _xml(xml, max((page.lastmod for page in pages), default=None))


@router.get(
    "/sitemaps/<page>",
    summary="One sitemap page (`1.xml`, `2.xml`, …): at most 50,000 articles, each with its last change",
    tags=["Articles"],
    responses=documented(200, "A sitemap (sitemaps.org).", 404, content_type=XML, headers=CONDITIONAL_READ),
)
def sitemap_page(page: str, reader: Reader) -> Response[str]:
    from newsdesk import sitemaps

    number = page.removesuffix(".xml")
    # API Gateway routes whole path segments only, so the page is `<n>.xml` under /sitemaps/.
    plain = number.isascii() and number.isdigit()  # "²".isdigit() is True too, and int() refuses it
    if not (page.endswith(".xml") and plain and len(number) <= _PAGE_NAME_DIGITS and number[0] != "0"):
        raise NotFound(f"no sitemap page {page!r}: pages are named 1.xml, 2.xml, …")
    urls = reader.sitemap(int(number))
    xml = sitemaps.sitemap(urls, site_settings().site_base)
    return _xml(xml, max((url.updated_at for url in urls), default=None))


@router.get(
    "/news-sitemap.xml",
    summary="Google News sitemap: the articles published in the last two days (at most 1,000)",
    tags=["Articles"],
    responses=documented(200, "A Google News sitemap.", content_type=XML, headers=CONDITIONAL_READ),
)
def news_sitemap(reader: Reader) -> Response[str]:
    from newsdesk import sitemaps

    articles = reader.news()
    site = site_settings()
    xml = sitemaps.news_sitemap(
        articles, site.site_base, name=site.publication_name, language=news_settings().publication_language
    )
    return _xml(xml, max((article.changed_at for article in articles), default=None))


def _xml(xml: str, changed: datetime | None) -> Response[str]:
    headers = validators(router.current_event.headers, xml, changed, cache_control=FEED_CACHE)
    return Response(200, content_type=f"{XML}; charset=utf-8", body=xml, headers=headers)


# ------------------------------------------------------------------------------------------------ editors


@admin_router.post(
    "/articles/<article_id>/corrections",
    summary="Add a correction, clarification or update to a published article (notes are never removed)",
    tags=["Editor"],
    responses=documented(
        201, "The article with its notes.", *AUTH_ERRORS, 400, 404, 409, 412, 415, 503, headers=("ETag",)
    ),
)
@requires(Role.EDITOR)
def add_correction(
    article_id: str,
    request: Annotated[CorrectionRequest, Body()],
    editor: Editor,
    actor: Caller,
    if_match: IfMatch = None,
) -> Response[Article]:
    return with_etag(editor.correct(article_id, request, actor=actor, if_match=parse_if_match(if_match)), 201)


@admin_router.post(
    "/articles/<article_id>/embargo",
    summary="Set or move the embargo: the article is public from then on, never before",
    tags=["Editor"],
    responses=documented(200, "The article.", *AUTH_ERRORS, 400, 404, 409, 412, 415, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def set_embargo(
    article_id: str, request: Annotated[EmbargoRequest, Body()], editor: Editor, actor: Caller, if_match: IfMatch = None
) -> Response[Article]:
    return with_etag(editor.embargo(article_id, request.embargo_until, actor=actor, if_match=parse_if_match(if_match)))


@admin_router.delete(
    "/articles/<article_id>/embargo",
    summary="Lift the embargo: an article published under it becomes public now",
    tags=["Editor"],
    responses=documented(200, "The article.", *AUTH_ERRORS, 404, 412, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def lift_embargo(article_id: str, editor: Editor, actor: Caller, if_match: IfMatch = None) -> Response[Article]:
    return with_etag(editor.lift_embargo(article_id, actor=actor, if_match=parse_if_match(if_match)))


@admin_router.post(
    "/articles/<article_id>/breaking",
    summary="Mark a published article breaking news for some hours; the first time, alert the readers who asked",
    tags=["Editor"],
    responses=documented(200, "The article.", *AUTH_ERRORS, 400, 404, 409, 412, 415, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def mark_breaking(
    article_id: str,
    request: Annotated[BreakingRequest, Body()],
    editor: Editor,
    actor: Caller,
    if_match: IfMatch = None,
) -> Response[Article]:
    return with_etag(editor.mark_breaking(article_id, request.hours, actor=actor, if_match=parse_if_match(if_match)))


@admin_router.delete(
    "/articles/<article_id>/breaking",
    summary="End breaking news now",
    tags=["Editor"],
    responses=documented(200, "The article.", *AUTH_ERRORS, 404, 412, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def end_breaking(article_id: str, editor: Editor, actor: Caller, if_match: IfMatch = None) -> Response[Article]:
    return with_etag(editor.end_breaking(article_id, actor=actor, if_match=parse_if_match(if_match)))
