"""Editor routes for deliveries (newsletters and digests): progress, the ledger of every recipient, and an
article's newsletter (its progress, a test email)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from newsdesk.api.access import requires
from newsdesk.api.resolver import AUTH_ERRORS, EditorRouter, documented
from newsdesk.dependencies import article_service, delivery_reports
from newsdesk.models.delivery import DeliveryPage, DeliveryProgress, LedgerPage, LedgerState, TestEmailRequest
from newsdesk.models.people import Role
from newsdesk.services.articles import ArticleService
from newsdesk.services.delivery import DeliveryReports
from newsdesk.services.tokens import bearer_token

router = EditorRouter()

Deliveries = Annotated[DeliveryReports, Depends(delivery_reports)]
Articles = Annotated[ArticleService, Depends(article_service)]
Cursor = Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")]
State = Annotated[LedgerState | None, Query(description="Only recipients in this state.")]
NO_STORE = {"Cache-Control": "no-store"}


@router.get(
    "/deliveries",
    summary="List deliveries (newsletters and digests), newest first",
    tags=["Deliveries"],
    responses=documented(200, "One page of deliveries, each with its progress.", *AUTH_ERRORS, 503),
)
@requires(Role.EDITOR)
def list_deliveries(
    deliveries: Deliveries, limit: Annotated[int, Query(ge=1, le=50)] = 20, cursor: Cursor = None
) -> DeliveryPage:
    items, next_cursor = deliveries.page(limit=limit, cursor=cursor)
    return DeliveryPage(items=items, next_cursor=next_cursor)


@router.get(
    "/deliveries/<delivery_id>",
    summary="How a delivery is going",
    tags=["Deliveries"],
    responses=documented(200, "Progress, with the counts by ledger state.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.EDITOR)
def get_delivery(delivery_id: str, deliveries: Deliveries) -> DeliveryProgress:
    return deliveries.get(delivery_id)


@router.get(
    "/deliveries/<delivery_id>/recipients",
    summary="The ledger of a delivery: every recipient and their state",
    tags=["Deliveries"],
    responses=documented(
        200, "One page; with `state`, a page may hold fewer than `limit` (at most `limit` are examined).",
        *AUTH_ERRORS, 404, 503,
    ),
)  # fmt: skip
@requires(Role.ADMIN)
def list_recipients(
    delivery_id: str,
    deliveries: Deliveries,
    state: State = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
) -> LedgerPage:
    items, next_cursor = deliveries.recipients(delivery_id, state=state, limit=limit, cursor=cursor)
    return LedgerPage(items=items, next_cursor=next_cursor)


@router.get(
    "/deliveries/<delivery_id>/recipients/export",
    summary="The ledger of a delivery as CSV, 5,000 per page (the next page's cursor is in X-Next-Cursor)",
    tags=["Deliveries"],
    responses=documented(
        200, "CSV with a header row.", *AUTH_ERRORS, 404, 503, content_type="text/csv", headers=("X-Next-Cursor",)
    ),
)
@requires(Role.ADMIN)
def export_recipients(
    delivery_id: str, deliveries: Deliveries, state: State = None, cursor: Cursor = None
) -> Response[str]:
    body, next_cursor = deliveries.export_csv(delivery_id, state=state, cursor=cursor)
    headers = {"Content-Disposition": f'attachment; filename="{delivery_id}.csv"', **NO_STORE}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return Response(200, "text/csv; charset=utf-8", body, headers=headers)


@router.get(
    "/articles/<article_id>/delivery",
    summary="How the article's newsletter is going",
    tags=["Editor"],
    responses=documented(
        200, "Delivery progress, with the counts by ledger state (they add up to `total`).", *AUTH_ERRORS, 404, 503
    ),
)
@requires(Role.EDITOR)
def delivery_progress(article_id: str, articles: Articles, deliveries: Deliveries) -> DeliveryProgress:
    return deliveries.of_article(articles.get(article_id))


@router.post(
    "/articles/<article_id>/test-email",
    summary="Send the article's newsletter to one address (drafts too); subscribers are not touched",
    tags=["Editor"],
    responses=documented(202, "Sent (no body).", *AUTH_ERRORS, 400, 404, 409, 415, 429, 503, body=False),
)
@requires(Role.EDITOR)
def send_test_email(
    article_id: str,
    request: Annotated[TestEmailRequest, Body()],
    articles: Articles,
    deliveries: Deliveries,
) -> Response[None]:
    # The token API Gateway's authorizer accepted: the allowance of test emails is per token.
    token = bearer_token(router.current_event.headers.get("authorization"))
    deliveries.send_test(articles.get(article_id), request.to, token=token)
    return Response(202)
