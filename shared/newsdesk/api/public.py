"""Public routes: published articles and the feed (the API's documentation is api/openapi.py)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Query

from newsdesk.api.resolver import documented
from newsdesk.dependencies import article_service
from newsdesk.models.articles import ArticlePage, PublicArticle
from newsdesk.services.articles import ArticleService

router = Router()

PUBLIC_CACHE = {"Cache-Control": "public, max-age=60"}
Articles = Annotated[ArticleService, Depends(article_service)]


@router.get(
    "/articles",
    summary="List published articles, newest first",
    tags=["Articles"],
    responses=documented(200, "One page of articles.", 503),
)
def list_articles(
    articles: Articles,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    author: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> Response[ArticlePage]:
    items, next_cursor = articles.list_public(tag=tag, author=author, limit=limit, cursor=cursor)
    page = ArticlePage(items=items, next_cursor=next_cursor)
    return Response(200, content_types.APPLICATION_JSON, page, headers=PUBLIC_CACHE)


@router.get(
    "/articles/<slug>",
    summary="Read one published article",
    tags=["Articles"],
    responses=documented(200, "The article.", 404, 503),
)
def get_article(slug: str, articles: Articles) -> Response[PublicArticle]:
    return Response(200, content_types.APPLICATION_JSON, articles.get_public(slug), headers=PUBLIC_CACHE)


@router.get(
    "/feed.xml",
    summary="Atom feed of the 20 newest articles",
    tags=["Articles"],
    responses=documented(200, "An Atom 1.0 feed.", content_type="application/atom+xml"),
)
def feed(articles: Articles) -> Response[str]:
    from newsdesk.feed import atom_feed  # feedgen pulls in lxml: load it only for this route

    return Response(200, content_type="application/atom+xml; charset=utf-8", body=atom_feed(articles),
                    headers=PUBLIC_CACHE)  # fmt: skip
