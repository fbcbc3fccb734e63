"""Mailing-list routes: the public sign-up, confirm and unsubscribe pages, and the editor's views."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from newsdesk.api.resolver import documented
from newsdesk.dependencies import delivery_reports, subscription_service
from newsdesk.models.subscribers import (
    Frequency,
    SubscribeAccepted,
    SubscribeRequest,
    SubscriberPage,
    SubscriberStats,
    SubscriberStatus,
)
from newsdesk.services.delivery import DeliveryReports
from newsdesk.services.links import InvalidLink
from newsdesk.services.subscriptions import ConfirmOutcome, SubscriptionService
from newsdesk.settings import get_settings
from newsdesk.templating import render

router = Router()
admin_router = Router()

Subscriptions = Annotated[SubscriptionService, Depends(subscription_service)]
Deliveries = Annotated[DeliveryReports, Depends(delivery_reports)]
Token = Annotated[str | None, Query(description="The signed token from the email's link.")]
HTML = "text/html; charset=utf-8"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
NO_STORE = {"Cache-Control": "no-store"}
NOT_CONFIRMABLE = "This subscription can no longer be confirmed with this link. Subscribe again below."


def page(status: int, heading: str, message: str, **extra: str | None) -> Response[str]:
    body = render(
        "pages/page.html",
        publication=get_settings().publication_name,
        heading=heading,
        message=message,
        action_url=extra.get("action_url"),
        action_label=extra.get("action_label"),
        frequency=extra.get("frequency"),
        subscribe_url=extra.get("subscribe_url"),
        one_click=extra.get("one_click"),
    )
    return Response(status, HTML, body, headers=NO_STORE)


def invalid_link_page(subscriptions: SubscriptionService, message: str) -> Response[str]:
    return page(400, "This link does not work", message, subscribe_url=subscriptions.subscribe_url())


def html_page(description: str) -> dict[int, Any]:
    content = {"text/html": {"schema": {"type": "string"}}}
    return {
        200: {"description": description, "content": content},
        400: {"description": "An expired, altered or unknown link.", "content": content},
    }


@router.post(
    "/subscribers",
    summary="Join the mailing list (a confirmation email follows)",
    tags=["Subscribers"],
    responses=documented(202, "Accepted; the answer is the same for every address.", 400, 415, 503),
)
def subscribe(
    request: Annotated[SubscribeRequest, Body()], subscriptions: Subscriptions
) -> Response[SubscribeAccepted]:
    # The address API Gateway saw the connection come from: a client cannot set it (X-Forwarded-For it can).
    event = router.current_event
    source_ip = event.request_context.http.source_ip if isinstance(event, APIGatewayProxyEventV2) else None
    subscriptions.subscribe(request, source_ip=source_ip)
    return Response(202, content_types.APPLICATION_JSON, SubscribeAccepted(), headers=NO_STORE)


@router.get(
    "/subscribers/confirm",
    summary="The confirmation page (the link in the confirmation email): a button that confirms",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("A page with a Confirm button; nothing is changed yet.")},
)
def confirm_page(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    # Mail scanners open every link in an email: following this one must change nothing.
    try:
        view = subscriptions.confirmation(token)
    except InvalidLink as exc:
        return invalid_link_page(subscriptions, f"{exc.message.capitalize()}. You can ask for a new one below.")
    if view.outcome is ConfirmOutcome.NOT_PENDING:
        return invalid_link_page(subscriptions, NOT_CONFIRMABLE)
    if view.outcome is ConfirmOutcome.ALREADY_CONFIRMED:
        return page(200, "You are subscribed", "Your subscription is already confirmed.")
    message = f"Press the button to receive {get_settings().publication_name} by email."
    if view.subscriber is not None and view.subscriber.name:
        message += f" Emails will be addressed to {view.subscriber.name}."
    return page(
        200,
        "Confirm your subscription",
        message,
        action_url=f"?token={quote(token or '')}",  # this same address, by POST
        action_label="Confirm my subscription",
    )


@router.post(
    "/subscribers/confirm",
    summary="Confirm a subscription (the confirmation page's button; the token in the query or the form)",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("The subscription is confirmed.")},
)
def confirm(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    if token is None:  # a form that posts the token as a field rather than in its address
        token = next(iter(parse_qs(router.current_event.decoded_body or "").get("token", [])), None)
    try:
        outcome = subscriptions.confirm(token)
    except InvalidLink as exc:
        return invalid_link_page(subscriptions, f"{exc.message.capitalize()}. You can ask for a new one below.")
    if outcome is ConfirmOutcome.NOT_PENDING:
        return invalid_link_page(subscriptions, NOT_CONFIRMABLE)
    return page(200, "You are subscribed", "Thank you: your subscription is confirmed.")


@router.get(
    "/unsubscribe",
    summary="The unsubscribe page (the link in every email)",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("A page with an Unsubscribe button.")},
)
def unsubscribe_page(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    try:
        subscriptions.check_unsubscribe_link(token)
    except InvalidLink:
        return invalid_link_page(subscriptions, "This unsubscribe link is not valid.")
    return page(
        200,
        "Unsubscribe",
        "Stop receiving these emails? One click and you are off the list.",
        action_url=f"?token={quote(token or '')}",  # this same address, by POST
        action_label="Unsubscribe",
        one_click="yes",
    )


@router.post(
    "/unsubscribe",
    summary="Unsubscribe at once (RFC 8058 one-click; no cookies, no login)",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("Unsubscribed (also when already unsubscribed).")},
)
def unsubscribe(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    # The body (List-Unsubscribe=One-Click) is not needed: the signed token says who and what.
    try:
        subscriptions.unsubscribe(token)
    except InvalidLink:
        return invalid_link_page(subscriptions, "This unsubscribe link is not valid.")
    return page(200, "You are unsubscribed", "You will not receive these emails any more.")


FREQUENCY_TEXT = {Frequency.INSTANT: "every article as it is published", Frequency.DIGEST: "one weekly digest"}


@router.get(
    "/subscribers/preferences",
    summary="The email preferences page (the link in every email)",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("Instant or weekly digest.")},
)
def preferences_page(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    try:
        subscriber = subscriptions.preferences(token)
    except InvalidLink as exc:
        return invalid_link_page(subscriptions, f"{exc.message.capitalize()}.")
    return page(
        200,
        "Email preferences",
        f"You now receive {FREQUENCY_TEXT[subscriber.frequency]}. How would you like it?",
        action_url=f"?token={quote(token or '')}",
        action_label="Save",
        frequency=subscriber.frequency.value,
    )


PREFERENCES_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["frequency"],
                "properties": {
                    "frequency": {
                        "type": "string",
                        "enum": [frequency.value for frequency in Frequency],
                        "description": "`instant`: an email per article; `digest`: one email a week.",
                    }
                },
            }
        }
    },
}
"""The preferences page's form, as the OpenAPI document declares it (the route reads the form itself)."""


@router.post(
    "/subscribers/preferences",
    summary="Save email preferences (form field `frequency`: instant or digest)",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("Saved.")},
)
def save_preferences(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    form = parse_qs(router.current_event.decoded_body or "")
    try:
        frequency = Frequency((form.get("frequency") or [""])[0])
    except ValueError:
        return page(400, "Choose how often", "Pick instant or weekly digest, then save.")
    try:
        subscriptions.set_frequency(token, frequency)
    except InvalidLink as exc:
        return invalid_link_page(subscriptions, f"{exc.message.capitalize()}.")
    return page(200, "Preferences saved", f"From now on you receive {FREQUENCY_TEXT[frequency]}.")


@admin_router.get(
    "/admin/subscribers",
    summary="List subscribers, optionally by status",
    tags=["Subscribers"],
    security=BEARER,
    responses=documented(200, "One page of subscribers.", 401, 403, 503),
)
def list_subscribers(
    subscriptions: Subscriptions,
    status: Annotated[SubscriberStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> SubscriberPage:
    items, next_cursor = subscriptions.page(status=status, limit=limit, cursor=cursor)
    return SubscriberPage(items=items, next_cursor=next_cursor)


@admin_router.get(
    "/admin/subscribers/stats",
    summary="How many subscribers there are in each status",
    tags=["Subscribers"],
    security=BEARER,
    responses=documented(200, "Counts per status.", 401, 403, 503),
)
def subscriber_stats(subscriptions: Subscriptions) -> SubscriberStats:
    return subscriptions.stats()


@admin_router.get(
    "/admin/subscribers/export",
    summary="Export subscribers as CSV, 5,000 per page (the next page's cursor is in X-Next-Cursor)",
    tags=["Subscribers"],
    security=BEARER,
    responses=documented(
        200, "CSV with a header row.", 401, 403, 503, content_type="text/csv", headers=("X-Next-Cursor",)
    ),
)
def export_subscribers(
    subscriptions: Subscriptions,
    status: Annotated[SubscriberStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    body, next_cursor = subscriptions.export_csv(status=status, cursor=cursor)
    headers = {"Content-Disposition": 'attachment; filename="subscribers.csv"', **NO_STORE}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return Response(200, "text/csv; charset=utf-8", body, headers=headers)


@admin_router.delete(
    "/admin/subscribers/<email>",
    summary="Erase a subscriber's data (privacy requests)",
    tags=["Subscribers"],
    security=BEARER,
    responses=documented(204, "Erased.", 401, 403, 404, 503),
)
def erase_subscriber(email: str, subscriptions: Subscriptions, deliveries: Deliveries) -> Response[None]:
    # API Gateway decoded the path once already: `email` is the address as the editor named it.
    subscriptions.erase(email)
    deliveries.forget(email)
    return Response(204)
