"""Public routes: published articles and the feed (the API's documentation routes are in api/routing.py)."""

from __future__ import annotations

from html import escape
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from newsdesk.api.caching import CDN_CACHE, FEED_CACHE, validators
from newsdesk.api.resolver import CONDITIONAL_READ, documented
from newsdesk.dependencies import article_service, news_reader, news_settings, site_settings
from newsdesk.errors import InvalidInput
from newsdesk.models.articles import ArticlePage, AuthorPage
from newsdesk.models.authors import AuthorList
from newsdesk.models.base import Model
from newsdesk.models.news import ReaderArticle
from newsdesk.services.articles import ArticleService
from newsdesk.services.news import NewsReader

router = Router()

# The index differs by Accept (HTML for a browser, JSON otherwise): a cache in front must keep both.
INDEX_HEADERS = {"Cache-Control": "public, max-age=300", "Vary": "Accept"}
Articles = Annotated[ArticleService, Depends(article_service)]
News = Annotated[NewsReader, Depends(news_reader)]


class ApiIndex(Model):
    """Where to go from the API's root."""

    name: str = Field(description="The publication's name.")
    links: dict[str, str] = Field(description="`articles`, `feed`, `docs`, `openapi`; locally also `local`.")


@router.get(
    "/",
    summary="Where to start: links to the articles, the feed and this API's documentation",
    tags=["Documentation"],
    responses=documented(200, "The index: JSON, or a small HTML page for a browser (`Accept: text/html`)."),
)
def index() -> Response[ApiIndex | str]:
    settings = site_settings()
    links = {"articles": "/articles", "feed": "/feed.xml", "docs": "/docs", "openapi": "/openapi.json"}
    if settings.local_pages:
        links["local"] = settings.local_pages
    body = ApiIndex(name=settings.publication_name, links=links)
    accept = router.current_event.headers.get("accept") or ""
    if "text/html" in accept:
        items = "".join(
            f'<li><a href="{escape(url)}">{escape(name)}</a>: {escape(url)}</li>' for name, url in links.items()
        )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(body.name)} API</title></head><body><h1>{escape(body.name)} API</h1>"
            f"<ul>{items}</ul></body></html>"
        )
        return Response(200, "text/html; charset=utf-8", page, headers=INDEX_HEADERS)
    return Response(200, content_types.APPLICATION_JSON, body, headers=INDEX_HEADERS)


@router.get(
    "/articles",
    summary="List published articles, newest first",
    tags=["Articles"],
    responses=documented(200, "One page of articles.", 503, headers=CONDITIONAL_READ),
)
def list_articles(
    articles: Articles,
    news: News,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    author: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    breaking: Annotated[
        bool, Query(description="`true`: only breaking news, the latest to expire first (not with `tag` or `author`).")
    ] = False,
) -> Response[ArticlePage]:
    if breaking and (tag or author):
        raise InvalidInput("breaking=true lists breaking news only: leave out tag and author",
                           details=[{"loc": ["query", "breaking"]}])  # fmt: skip
    if breaking:
        items, next_cursor = news.breaking(limit=limit, cursor=cursor)
    else:
        items, next_cursor = articles.list_public(tag=tag, author=author, limit=limit, cursor=cursor)
    page = ArticlePage(items=items, next_cursor=next_cursor)
    changed = max((item.changed_at for item in items), default=None)
    headers = validators(router.current_event.headers, page.model_dump_json(), changed, cache_control=CDN_CACHE)
    return Response(200, content_types.APPLICATION_JSON, page, headers=headers)


@router.get(
    "/articles/<slug>",
    summary="Read one published article",
    tags=["Articles"],
    responses=documented(200, "The article.", 404, 503, headers=CONDITIONAL_READ),
)
def get_article(slug: str, articles: Articles) -> Response[ReaderArticle]:
    from newsdesk.structured_data import Publisher, news_article

    stored = articles.get_public(slug)
    site, news = site_settings(), news_settings()
    publisher = Publisher(site.publication_name, news.publisher_logo_url, site.site_base, news.publication_language)
    article = ReaderArticle(**stored.model_dump(), json_ld=news_article(stored, publisher))
    headers = validators(
        router.current_event.headers, article.model_dump_json(), article.changed_at, cache_control=CDN_CACHE
    )
    return Response(200, content_types.APPLICATION_JSON, article, headers=headers)


@router.get(
    "/authors",
    summary="The publication's authors, by slug",
    tags=["Articles"],
    responses=documented(200, "One page of author profiles.", 503, headers=CONDITIONAL_READ),
)
def list_authors(
    articles: Articles,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 50,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
) -> Response[AuthorList]:
    items, next_cursor = articles.author_list(limit=limit, cursor=cursor)
    page = AuthorList(items=items, next_cursor=next_cursor)
    changed = max((item.updated_at for item in items), default=None)
    headers = validators(router.current_event.headers, page.model_dump_json(), changed, cache_control=CDN_CACHE)
    return Response(200, content_types.APPLICATION_JSON, page, headers=headers)


@router.get(
    "/authors/<slug>",
    summary="An author's profile and their published articles, newest first",
    tags=["Articles"],
    responses=documented(200, "The author and one page of their articles.", 404, 503, headers=CONDITIONAL_READ),
)
def get_author(
    slug: str,
    articles: Articles,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
) -> Response[AuthorPage]:
    page = articles.author_page(slug, limit=limit, cursor=cursor)
    changed = max([page.author.updated_at, *(item.changed_at for item in page.items)])
    headers = validators(router.current_event.headers, page.model_dump_json(), changed, cache_control=CDN_CACHE)
    return Response(200, content_types.APPLICATION_JSON, page, headers=headers)


@router.get(
    "/feed.xml",
    summary="Atom feed of the 20 newest articles",
    tags=["Articles"],
    responses=documented(200, "An Atom 1.0 feed.", content_type="application/atom+xml", headers=CONDITIONAL_READ),
)
def feed(articles: Articles) -> Response[str]:
    from newsdesk.feed import atom_feed  # feedgen pulls in lxml: load it only for this route

    xml, updated = atom_feed(articles)
    headers = validators(router.current_event.headers, xml, updated, cache_control=FEED_CACHE)
    return Response(200, content_type="application/atom+xml; charset=utf-8", body=xml, headers=headers)
