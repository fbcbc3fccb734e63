"""The audit trail, for admins: who did what, when, newest first."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Query

from newsdesk.api.access import requires
from newsdesk.api.resolver import AUTH_ERRORS, EditorRouter, documented
from newsdesk.dependencies import audit_log
from newsdesk.models.audit import AuditPage
from newsdesk.models.people import Role
from newsdesk.services.audit import AuditLog

router = EditorRouter()

Audit = Annotated[AuditLog, Depends(audit_log)]


@router.get(
    "/audit",
    summary="The audit trail, newest first: every change to articles, people, tokens, subscribers and webhooks",
    tags=["People"],
    responses=documented(200, "One page of entries.", *AUTH_ERRORS, 503),
)
@requires(Role.ADMIN)
def list_audit(
    audit: Audit,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
) -> AuditPage:
    items, next_cursor = audit.page(limit=limit, cursor=cursor)
    return AuditPage(items=items, next_cursor=next_cursor)
