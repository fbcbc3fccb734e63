"""Editor routes under /admin: articles and their review. API Gateway's Lambda authorizer has checked the token
before these run. An article's newsletter (its progress, a test email) is served by api/deliveries.py."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from newsdesk.api.access import current_actor, requires
from newsdesk.api.etags import IfMatch, parse_if_match, with_etag
from newsdesk.api.resolver import AUTH_ERRORS, EditorRouter, documented
from newsdesk.dependencies import article_service
from newsdesk.models.articles import (
    AdminArticlePage,
    Article,
    ArticleStatus,
    CreateArticleRequest,
    RequestChangesRequest,
    ScheduleRequest,
    UpdateArticleRequest,
)
from newsdesk.models.people import Actor, Role
from newsdesk.services.articles import ArticleService

router = EditorRouter()

Articles = Annotated[ArticleService, Depends(article_service)]
Caller = Annotated[Actor, Depends(current_actor)]


@router.post(
    "/articles",
    summary="Create a draft article",
    tags=["Editor"],
    responses=documented(201, "The draft.", *AUTH_ERRORS, 400, 409, 413, 415, 503, headers=("ETag", "Location")),
)
@requires(Role.CONTRIBUTOR)
def create_article(
    request: Annotated[CreateArticleRequest, Body()], articles: Articles, actor: Caller
) -> Response[Article]:
    article = articles.create(request, actor=actor)
    response = with_etag(article, 201)
    response.headers["Location"] = f"/admin/articles/{article.id}"
    return response


@router.get(
    "/articles",
    summary="List articles, optionally by status (a contributor's: their own)",
    tags=["Editor"],
    responses=documented(200, "One page of articles.", *AUTH_ERRORS, 503),
)
@requires(Role.CONTRIBUTOR)
def list_articles(
    articles: Articles,
    actor: Caller,
    status: Annotated[ArticleStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> AdminArticlePage:
    items, next_cursor = articles.list_admin(status=status, limit=limit, cursor=cursor, actor=actor)
    return AdminArticlePage(items=items, next_cursor=next_cursor)


@router.get(
    "/articles/<article_id>",
    summary="Read one article (a contributor: their own)",
    tags=["Editor"],
    responses=documented(200, "The article, with its `ETag`.", *AUTH_ERRORS, 404, 503, headers=("ETag",)),
)
@requires(Role.CONTRIBUTOR)
def get_article(article_id: str, articles: Articles, actor: Caller) -> Response[Article]:
    return with_etag(articles.read(article_id, actor=actor))


@router.patch(
    "/articles/<article_id>",
    summary="Change some fields of an article (a contributor: their own draft, or one with changes requested)",
    tags=["Editor"],
    responses=documented(
        200, "The changed article.", *AUTH_ERRORS, 400, 404, 409, 412, 413, 415, 503, headers=("ETag",)
    ),
)
@requires(Role.CONTRIBUTOR)
def update_article(
    article_id: str,
    request: Annotated[UpdateArticleRequest, Body()],
    articles: Articles,
    actor: Caller,
    if_match: IfMatch = None,
) -> Response[Article]:
    return with_etag(articles.update(article_id, request, if_match=parse_if_match(if_match), actor=actor))


@router.delete(
    "/articles/<article_id>",
    summary="Delete an article (a contributor: their own draft, never published)",
    tags=["Editor"],
    responses=documented(204, "Deleted.", *AUTH_ERRORS, 404, 409, 412, 503),
)
@requires(Role.CONTRIBUTOR)
def delete_article(article_id: str, articles: Articles, actor: Caller, if_match: IfMatch = None) -> Response[None]:
    articles.delete(article_id, if_match=parse_if_match(if_match), actor=actor)
    return Response(204)


@router.post(
    "/articles/<article_id>/submit",
    summary="Submit an article for review (its author or an editor; again: no effect)",
    tags=["Review"],
    responses=documented(200, "The article, in review.", *AUTH_ERRORS, 404, 409, 412, 503, headers=("ETag",)),
)
@requires(Role.CONTRIBUTOR)
def submit_article(article_id: str, articles: Articles, actor: Caller, if_match: IfMatch = None) -> Response[Article]:
    return with_etag(articles.submit(article_id, if_match=parse_if_match(if_match), actor=actor))


@router.post(
    "/articles/<article_id>/approve",
    summary="Approve an article in review (again: no effect)",
    tags=["Review"],
    responses=documented(200, "The article, approved.", *AUTH_ERRORS, 404, 409, 412, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def approve_article(article_id: str, articles: Articles, actor: Caller, if_match: IfMatch = None) -> Response[Article]:
    return with_etag(articles.approve(article_id, if_match=parse_if_match(if_match), actor=actor))


@router.post(
    "/articles/<article_id>/request-changes",
    summary="Send an article in review (or approved) back to its author with a comment",
    tags=["Review"],
    responses=documented(
        200, "The article, with changes requested.", *AUTH_ERRORS, 400, 404, 409, 412, 415, 503, headers=("ETag",)
    ),
)
@requires(Role.EDITOR)
def request_changes(
    article_id: str,
    request: Annotated[RequestChangesRequest, Body()],
    articles: Articles,
    actor: Caller,
    if_match: IfMatch = None,
) -> Response[Article]:
    changed = articles.request_changes(article_id, request.comment, if_match=parse_if_match(if_match), actor=actor)
    return with_etag(changed)


@router.post(
    "/articles/<article_id>/publish",
    summary="Publish an article, from any status (again: no effect); its first publish sends the newsletter",
    tags=["Editor"],
    responses=documented(200, "The article.", *AUTH_ERRORS, 404, 412, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def publish_article(article_id: str, articles: Articles, actor: Caller, if_match: IfMatch = None) -> Response[Article]:
    return with_etag(articles.publish(article_id, if_match=parse_if_match(if_match), actor=actor))


@router.post(
    "/articles/<article_id>/unpublish",
    summary="Take an article off the public routes (back to draft)",
    tags=["Editor"],
    responses=documented(200, "The article.", *AUTH_ERRORS, 404, 412, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def unpublish_article(
    article_id: str, articles: Articles, actor: Caller, if_match: IfMatch = None
) -> Response[Article]:
    return with_etag(articles.unpublish(article_id, if_match=parse_if_match(if_match), actor=actor))


@router.post(
    "/articles/<article_id>/schedule",
    summary="Schedule an article to be published at a time (ISO 8601 with an offset)",
    tags=["Editor"],
    responses=documented(200, "The scheduled article.", *AUTH_ERRORS, 400, 404, 409, 412, 415, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def schedule_article(
    article_id: str,
    request: Annotated[ScheduleRequest, Body()],
    articles: Articles,
    actor: Caller,
    if_match: IfMatch = None,
) -> Response[Article]:
    scheduled = articles.schedule(article_id, request.publish_at, if_match=parse_if_match(if_match), actor=actor)
    return with_etag(scheduled)


@router.delete(
    "/articles/<article_id>/schedule",
    summary="Cancel the schedule: the article goes back to the status it was scheduled from (draft, approved...)",
    tags=["Editor"],
    responses=documented(200, "The article.", *AUTH_ERRORS, 404, 412, 503, headers=("ETag",)),
)
@requires(Role.EDITOR)
def unschedule_article(
    article_id: str, articles: Articles, actor: Caller, if_match: IfMatch = None
) -> Response[Article]:
    return with_etag(articles.unschedule(article_id, if_match=parse_if_match(if_match), actor=actor))
