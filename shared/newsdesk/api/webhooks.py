"""Editor routes for webhooks: register endpoints, test them, follow and replay their deliveries."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from newsdesk.api.access import current_actor, requires
from newsdesk.api.etags import IfMatch, parse_if_match, with_etag
from newsdesk.api.resolver import AUTH_ERRORS, EditorRouter, documented
from newsdesk.dependencies import audit_log, webhook_service
from newsdesk.models.audit import AuditTarget
from newsdesk.models.people import Actor, Role
from newsdesk.models.webhooks import (
    CreateWebhookRequest,
    SendAccepted,
    UpdateWebhookRequest,
    Webhook,
    WebhookCreated,
    WebhookDeliveryPage,
    WebhookPage,
)
from newsdesk.services.audit import AuditLog
from newsdesk.services.webhooks import WebhookService

router = EditorRouter()

Webhooks = Annotated[WebhookService, Depends(webhook_service)]
Audit = Annotated[AuditLog, Depends(audit_log)]
Caller = Annotated[Actor, Depends(current_actor)]
Cursor = Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")]
TAGS = ["Webhooks"]


@router.post(
    "/webhooks",
    summary="Register a webhook endpoint (its signing secret is in this answer only)",
    tags=TAGS,
    responses=documented(
        201, "The endpoint, with its `secret`.", *AUTH_ERRORS, 400, 409, 415, 503, headers=("ETag", "Location")
    ),
)
@requires(Role.ADMIN)
def create_webhook(
    request: Annotated[CreateWebhookRequest, Body()], webhooks: Webhooks, audit: Audit, actor: Caller
) -> Response[WebhookCreated]:
    created = webhooks.create(request)
    audit.record(actor, "webhook.created", AuditTarget.WEBHOOK, created.id, events=",".join(created.events))
    response = with_etag(created, 201)
    # The secret is shown once: no cache, no proxy, may keep this answer.
    response.headers.update({"Location": f"/admin/webhooks/{created.id}", "Cache-Control": "no-store"})
    return response


@router.get(
    "/webhooks",
    summary="List webhook endpoints, newest first",
    tags=TAGS,
    responses=documented(200, "One page of endpoints.", *AUTH_ERRORS, 503),
)
@requires(Role.ADMIN)
def list_webhooks(
    webhooks: Webhooks, limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: Cursor = None
) -> WebhookPage:
    items, next_cursor = webhooks.page(limit=limit, cursor=cursor)
    return WebhookPage(items=items, next_cursor=next_cursor)


@router.get(
    "/webhooks/<webhook_id>",
    summary="Read one webhook endpoint (whether it is enabled, and why not)",
    tags=TAGS,
    responses=documented(200, "The endpoint, with its `ETag`.", *AUTH_ERRORS, 404, 503, headers=("ETag",)),
)
@requires(Role.ADMIN)
def get_webhook(webhook_id: str, webhooks: Webhooks) -> Response[Webhook]:
    return with_etag(webhooks.get(webhook_id))


@router.patch(
    "/webhooks/<webhook_id>",
    summary="Change an endpoint's URL, events or description; `enabled: true` turns it back on",
    tags=TAGS,
    responses=documented(200, "The changed endpoint.", *AUTH_ERRORS, 400, 404, 412, 415, 503, headers=("ETag",)),
)
@requires(Role.ADMIN)
def update_webhook(
    webhook_id: str,
    request: Annotated[UpdateWebhookRequest, Body()],
    webhooks: Webhooks,
    audit: Audit,
    actor: Caller,
    if_match: IfMatch = None,
) -> Response[Webhook]:
    updated = webhooks.update(webhook_id, request, if_match=parse_if_match(if_match))
    changed = ",".join(sorted(request.model_fields_set))
    audit.record(actor, "webhook.updated", AuditTarget.WEBHOOK, updated.id, changed=changed)
    return with_etag(updated)


@router.delete(
    "/webhooks/<webhook_id>",
    summary="Delete an endpoint (nothing more is sent to it)",
    tags=TAGS,
    responses=documented(204, "Deleted.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.ADMIN)
def delete_webhook(webhook_id: str, webhooks: Webhooks, audit: Audit, actor: Caller) -> Response[None]:
    webhooks.delete(webhook_id)
    audit.record(actor, "webhook.deleted", AuditTarget.WEBHOOK, webhook_id)
    return Response(204)


@router.post(
    "/webhooks/<webhook_id>/test",
    summary="Send the endpoint a `ping` event",
    tags=TAGS,
    responses=documented(202, "Queued; its attempts are listed in the endpoint's deliveries.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.ADMIN)
def test_webhook(webhook_id: str, webhooks: Webhooks, audit: Audit, actor: Caller) -> Response[SendAccepted]:
    accepted = webhooks.send_test(webhook_id)
    audit.record(actor, "webhook.tested", AuditTarget.WEBHOOK, webhook_id)
    return Response(202, content_types.APPLICATION_JSON, accepted)


@router.get(
    "/webhooks/<webhook_id>/deliveries",
    summary="The endpoint's deliveries, newest first, each with its attempts and next retry",
    tags=TAGS,
    responses=documented(200, "One page of deliveries.", *AUTH_ERRORS, 404, 503),
)
@requires(Role.ADMIN)
def list_webhook_deliveries(
    webhook_id: str, webhooks: Webhooks, limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: Cursor = None
) -> WebhookDeliveryPage:
    items, next_cursor = webhooks.deliveries(webhook_id, limit=limit, cursor=cursor)
    return WebhookDeliveryPage(items=items, next_cursor=next_cursor)


@router.post(
    "/webhooks/<webhook_id>/deliveries/<event_id>/replay",
    summary="Send a delivery again: the same event and id, with new retries",
    tags=TAGS,
    responses=documented(202, "Queued.", *AUTH_ERRORS, 404, 409, 503),
)
@requires(Role.ADMIN)
def replay_webhook_delivery(
    webhook_id: str, event_id: str, webhooks: Webhooks, audit: Audit, actor: Caller
) -> Response[SendAccepted]:
    accepted = webhooks.replay(webhook_id, event_id)
    audit.record(actor, "webhook.replayed", AuditTarget.WEBHOOK, webhook_id, event_id=event_id)
    return Response(202, content_types.APPLICATION_JSON, accepted)
