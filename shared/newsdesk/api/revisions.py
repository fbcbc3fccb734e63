"""An article's revisions: list them, read one, restore one (a contributor: of their own articles)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from newsdesk.api.access import current_actor, requires
from newsdesk.api.etags import IfMatch, parse_if_match, with_etag
from newsdesk.api.resolver import AUTH_ERRORS, EditorRouter, documented
from newsdesk.dependencies import article_service
from newsdesk.models.articles import Article
from newsdesk.models.people import Actor, Role
from newsdesk.models.revisions import Revision, RevisionPage
from newsdesk.services.articles import ArticleService

router = EditorRouter()

Articles = Annotated[ArticleService, Depends(article_service)]
Caller = Annotated[Actor, Depends(current_actor)]
Number = Annotated[int, Path(ge=1, le=10**8, description="The revision's number (1 for the first save).")]
TAGS = ["Revisions"]


@router.get(
    "/articles/<article_id>/revisions",
    summary="The article's revisions, newest first (the newest RevisionsKept are kept)",
    tags=TAGS,
    responses=documented(200, "One page of revisions, without their bodies.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.CONTRIBUTOR)
def list_revisions(
    article_id: str,
    articles: Articles,
    actor: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
) -> RevisionPage:
    items, next_cursor = articles.revisions(article_id, actor=actor, limit=limit, cursor=cursor)
    return RevisionPage(items=items, next_cursor=next_cursor)


@router.get(
    "/articles/<article_id>/revisions/<number>",
    summary="One revision: who saved what, when",
    tags=TAGS,
    responses=documented(200, "The revision, with its Markdown body.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.CONTRIBUTOR)
def get_revision(article_id: str, number: Number, articles: Articles, actor: Caller) -> Revision:
    return articles.revision(article_id, number, actor=actor)


@router.post(
    "/articles/<article_id>/revisions/<number>/restore",
    summary="Make the article what this revision saved (a new revision; `If-Match` as for any change)",
    tags=TAGS,
    responses=documented(200, "The article.", *AUTH_ERRORS, 404, 409, 412, 413, 503, headers=("ETag",)),
)
@requires(Role.CONTRIBUTOR)
def restore_revision(
    article_id: str, number: Number, articles: Articles, actor: Caller, if_match: IfMatch = None
) -> Response[Article]:
    return with_etag(articles.restore(article_id, number, actor=actor, if_match=parse_if_match(if_match)))
