"""Mailing-list routes: the public sign-up and topics, the confirm, unsubscribe and preferences pages, and
the editor's views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from newsdesk.api.access import current_actor, requires
from newsdesk.api.resolver import EditorRouter, documented
from newsdesk.dependencies import audit_log, erasure_service, site_settings, subscription_service
from newsdesk.models.audit import AuditTarget
from newsdesk.models.erasures import Erasure, ErasureState
from newsdesk.models.people import Actor, Role
from newsdesk.models.subscribers import (
    ConsentSource,
    Frequency,
    SubscribeAccepted,
    Subscriber,
    SubscribeRequest,
    SubscriberPage,
    SubscriberStats,
    SubscriberStatus,
)
from newsdesk.models.topics import Topic
from newsdesk.services.audit import AuditLog
from newsdesk.services.erasure import ErasureService
from newsdesk.services.links import InvalidLink
from newsdesk.services.subscriptions import ConfirmOutcome, PreferencesView, SubscriptionService, UnsubscribeScope
from newsdesk.services.topics import UnknownTopics
from newsdesk.templating import render

router = Router()
admin_router = EditorRouter()

Subscriptions = Annotated[SubscriptionService, Depends(subscription_service)]
Erasures = Annotated[ErasureService, Depends(erasure_service)]
Audit = Annotated[AuditLog, Depends(audit_log)]
Caller = Annotated[Actor, Depends(current_actor)]
Token = Annotated[str | None, Query(description="The signed token from the email's link.")]
HTML = "text/html; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store"}
NOT_CONFIRMABLE = "This subscription can no longer be confirmed with this link. Subscribe again below."
INVALID_UNSUBSCRIBE = (
    "This unsubscribe link is not valid. The newest email from us has one that works; or subscribe again below."
)


@dataclass(frozen=True)
class Action:
    """A button on a page: a plain form posting to `url` (no JavaScript)."""

    url: str
    label: str
    fields: tuple[tuple[str, str], ...] = ()
    secondary: bool = False


@dataclass(frozen=True)
class Link:
    url: str
    label: str


def page(
    status: int,
    heading: str,
    message: str,
    *,
    notes: Sequence[str] = (),
    actions: Sequence[Action] = (),
    links: Sequence[Link] = (),
    preferences: dict[str, Any] | None = None,
    subscribe_url: str | None = None,
) -> Response[str]:
    settings = site_settings()
    body = render(
        "pages/page.html",
        publication=settings.publication_name,
        heading=heading,
        message=message,
        notes=notes,
        actions=actions,
        links=[*links, Link(settings.site_base, f"Go to {settings.publication_name}")],
        preferences=preferences,
        subscribe_url=subscribe_url,
        privacy_policy_url=settings.privacy_policy_url,
    )
    return Response(status, HTML, body, headers=NO_STORE)


def invalid_link_page(subscriptions: SubscriptionService, message: str, *links: Link) -> Response[str]:
    """A 400 page that always offers a way on: subscribing again, the site, and any `links`."""
    return page(400, "This link does not work", message, links=links, subscribe_url=subscriptions.subscribe_url())


def html_page(description: str) -> dict[int, Any]:
    content = {"text/html": {"schema": {"type": "string"}}}
    return {
        200: {"description": description, "content": content},
        400: {"description": "An expired, altered or unknown link.", "content": content},
    }


def _same_link(token: str | None) -> str:
    return f"?token={quote(token or '')}"  # this same address: the page posts to its own link


def _names(topics: Sequence[Topic]) -> str:
    names = [topic.name for topic in topics]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


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
    # Browsers add Origin to every POST a page makes, by form or by script; programs usually send none.
    source = ConsentSource.FORM if event.headers.get("origin") else ConsentSource.API
    subscriptions.subscribe(request, source_ip=source_ip, source=source)
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
    message = f"Press the button to receive {site_settings().publication_name} by email."
    notes = []
    if view.topics is not None:
        notes.append(f"You chose: {_names(view.topics)}." if view.topics else "You chose no topic yet.")
    if view.subscriber is not None and view.subscriber.name:
        notes.append(f"Emails will be addressed to {view.subscriber.name}.")
    return page(200, "Confirm your subscription", message, notes=notes,
                actions=[Action(_same_link(token), "Confirm my subscription")])  # fmt: skip


@router.post(
    "/subscribers/confirm",
    summary="Confirm a subscription (the confirmation page's button; the token in the query or the form)",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("The subscription is confirmed.")},
)
def confirm(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    if token is None:  # a form that posts the token as a field rather than in its address
        token = next(iter(_form().get("token", [])), None)
    try:
        outcome = subscriptions.confirm(token)
    except InvalidLink as exc:
        return invalid_link_page(subscriptions, f"{exc.message.capitalize()}. You can ask for a new one below.")
    if outcome is ConfirmOutcome.NOT_PENDING:
        return invalid_link_page(subscriptions, NOT_CONFIRMABLE)
    return page(200, "You are subscribed", "Thank you: your subscription is confirmed.")


def _form() -> dict[str, list[str]]:
    return parse_qs(router.current_event.decoded_body or "")


UNSUBSCRIBED_MESSAGE = "You will not receive these emails any more."


@router.get(
    "/unsubscribe",
    summary="The unsubscribe page (the link in every email)",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("What the link would do, with its buttons.")},
)
def unsubscribe_page(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    try:
        view = subscriptions.unsubscribe_view(token)
    except InvalidLink:
        return invalid_link_page(subscriptions, INVALID_UNSUBSCRIBE)
    if not view.subscribed:
        # Said once, not asked again.
        return page(200, "You are unsubscribed", UNSUBSCRIBED_MESSAGE)
    one_click = Action(_same_link(token), "Unsubscribe", (("List-Unsubscribe", "One-Click"),))
    everything = Action(_same_link(token), "Unsubscribe from everything", (("scope", "everything"),), True)
    preferences = (
        [Link(view.preferences_url, "Choose topics or a weekly digest instead")] if view.preferences_url else []
    )
    if view.leaves_everything:
        return page(200, "Unsubscribe", "Stop receiving these emails? One click and you are off the list.",
                    actions=[one_click], links=preferences)  # fmt: skip
    if not view.sent_for:
        following = view.following or []
        message = "You no longer follow the topics this email was sent for." + (
            f" You still follow {_names(following)}." if following else " You follow no topic now."
        )
        return page(200, "Unsubscribe", message, actions=[replace(everything, secondary=False)], links=preferences)
    names = _names(view.sent_for)
    message = f"This email was sent because you follow {names}. Stop emails about {names}, or leave the list?"
    return page(200, "Unsubscribe", message,
                actions=[replace(one_click, label=f"Stop emails about {names}"), everything],
                links=preferences)  # fmt: skip


@router.post(
    "/unsubscribe",
    summary="Unsubscribe at once (RFC 8058 one-click; no cookies, no login)",
    tags=["Subscribers"],
    responses={
        **documented(200, "ok", 503),
        **html_page(
            "Unsubscribed (also when already unsubscribed): from the topics the email was sent for, or, for a "
            "subscriber of everything or with the form field `scope=everything`, from the list."
        ),
    },
)
def unsubscribe(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    # The body (List-Unsubscribe=One-Click) is not needed: the signed token says who and what.
    scope = UnsubscribeScope.EVERYTHING if _form().get("scope") == ["everything"] else UnsubscribeScope.EMAIL
    try:
        done = subscriptions.unsubscribe(token, scope)
    except InvalidLink:
        return invalid_link_page(subscriptions, INVALID_UNSUBSCRIBE)
    if done.everything:
        return page(200, "You are unsubscribed", UNSUBSCRIBED_MESSAGE)
    preferences = [Link(done.preferences_url, "Email preferences")] if done.preferences_url else []
    everything = Action(_same_link(token), "Unsubscribe from everything", (("scope", "everything"),), True)
    left = (
        f"You will not receive emails about {_names(done.left)} any more."
        if done.left
        else ("You had already left the topics this email was sent for.")
    )
    if done.remaining:
        note = f"You still receive emails about {_names(done.remaining)}."
    else:
        note = "You follow no topic now, so you will receive no emails."
    heading = f"You are unsubscribed from {_names(done.left)}" if done.left else "You are unsubscribed"
    return page(200, heading, left, notes=[note], actions=[everything] if done.remaining else [], links=preferences)


FREQUENCY_TEXT = {Frequency.INSTANT: "every article as it is published", Frequency.DIGEST: "one weekly digest"}


def _receives(view: PreferencesView) -> str:
    subscriber = view.subscriber
    how = FREQUENCY_TEXT[subscriber.frequency]
    if subscriber.topics is None:
        alerts = " You also get breaking-news alerts." if subscriber.breaking else ""
        return f"You receive {how}, about everything we publish.{alerts}"
    named = [topic for topic in view.topics if topic.slug in set(subscriber.topics)]
    alerts = " You also get breaking-news alerts." if subscriber.breaking else ""
    if not named:
        if subscriber.breaking:
            return "You follow no topic: you receive breaking-news alerts only. Choose topics below."
        return "You follow no topic, so you receive no emails. Choose some below."
    return f"You receive {how}, about {_names(named)}.{alerts}"


def _preferences_form(token: str | None, view: PreferencesView) -> dict[str, Any]:
    followed = view.subscriber.topics
    return {
        "action_url": _same_link(token),
        "label": "Save",
        "frequency": view.subscriber.frequency.value,
        "everything": followed is None,
        "breaking": view.subscriber.breaking,
        "topics": [
            {"slug": topic.slug, "name": topic.name, "description": topic.description,
             "checked": followed is None or topic.slug in followed}
            for topic in view.topics
        ],
    }  # fmt: skip


@router.get(
    "/subscribers/preferences",
    summary="The email preferences page (the link in every email): how often, and which topics",
    tags=["Subscribers"],
    responses={**documented(200, "ok", 503), **html_page("Instant or weekly digest; everything, or chosen topics.")},
)
def preferences_page(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    try:
        view = subscriptions.preferences(token)
    except InvalidLink as exc:
        return invalid_link_page(subscriptions, f"{exc.message.capitalize()}.")
    return page(200, "Email preferences", _receives(view), preferences=_preferences_form(token, view))


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
                    },
                    "breaking": {
                        "type": "string",
                        "enum": ["yes"],
                        "description": "`yes`: breaking-news alerts (the page's form without it turns them off).",
                    },
                },
            }
        }
    },
}
"""The preferences page's form, as the OpenAPI document declares it (the route reads the form itself)."""


@router.post(
    "/subscribers/preferences",
    summary=(
        "Save email preferences (form fields: `frequency` instant or digest; `everything=yes`, or a `topics` "
        "field per topic to follow; `breaking=yes` for breaking-news alerts)"
    ),
    tags=["Subscribers"],
    responses={
        **documented(200, "ok", 503),
        **html_page("Saved."),
        422: {
            "description": "A topic that does not exist: a page saying so; nothing is saved. A request that does "
            "not match the schema (a `token` given twice): the error body.",
            "content": {"text/html": {"schema": {"type": "string"}}, **documented(200, "ok")[422]["content"]},
        },
    },
)
def save_preferences(subscriptions: Subscriptions, token: Token = None) -> Response[str]:
    form = _form()
    try:
        frequency = Frequency((form.get("frequency") or [""])[0])
    except ValueError:
        back = Link(f"/subscribers/preferences{_same_link(token)}", "Back to your email preferences")
        return page(400, "Choose how often", "Pick instant or weekly digest, then save.", links=[back])
    # The page's form always says it chooses topics; a form that only sets the frequency leaves them alone.
    choosing = form.get("choosing") == ["topics"] or "everything" in form or "topics" in form
    topics = None if form.get("everything") == ["yes"] else form.get("topics", [])
    # An unchecked box sends nothing: the page's own form turns alerts off; a form without the box leaves them.
    breaking = True if form.get("breaking") == ["yes"] else False if form.get("choosing") == ["topics"] else None
    try:
        view = subscriptions.save_preferences(
            token, frequency=frequency, topics=topics, change_topics=choosing, breaking=breaking
        )
    except InvalidLink as exc:
        return invalid_link_page(subscriptions, f"{exc.message.capitalize()}.")
    except UnknownTopics as exc:
        # The page offered only topics that existed; one deleted since (or a form made elsewhere) saves nothing.
        current = subscriptions.preferences(token)
        named = ", ".join(f"“{slug}”" for slug in exc.unknown)
        message = f"Nothing was saved: we have no topic {named} (any more). Choose among these, then save."
        return page(422, "Unknown topic", message, preferences=_preferences_form(token, current))
    return page(200, "Preferences saved", f"Saved. {_receives(view)}", preferences=_preferences_form(token, view))


@admin_router.get(
    "/subscribers/<email>",
    summary="One subscriber: status, topics and consent record",
    tags=["Subscribers"],
    responses=documented(200, "The subscriber.", 401, 403, 404, 503),
)
@requires(Role.ADMIN)
def get_subscriber(email: str, subscriptions: Subscriptions) -> Subscriber:
    # API Gateway decoded the path once already: `email` is the address as the editor named it.
    return subscriptions.get(email)


@admin_router.get(
    "/subscribers",
    summary="List subscribers, optionally by status",
    tags=["Subscribers"],
    responses=documented(200, "One page of subscribers.", 401, 403, 503),
)
@requires(Role.ADMIN)
def list_subscribers(
    subscriptions: Subscriptions,
    status: Annotated[SubscriberStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> SubscriberPage:
    items, next_cursor = subscriptions.page(status=status, limit=limit, cursor=cursor)
    return SubscriberPage(items=items, next_cursor=next_cursor)


@admin_router.get(
    "/subscribers/stats",
    summary="How many subscribers there are in each status",
    tags=["Subscribers"],
    responses=documented(200, "Counts per status.", 401, 403, 503),
)
@requires(Role.EDITOR)
def subscriber_stats(subscriptions: Subscriptions) -> SubscriberStats:
    return subscriptions.stats()


@admin_router.get(
    "/subscribers/export",
    summary="Export subscribers as CSV, 5,000 per page (the next page's cursor is in X-Next-Cursor)",
    tags=["Subscribers"],
    responses=documented(
        200, "CSV with a header row.", 401, 403, 503, content_type="text/csv", headers=("X-Next-Cursor",)
    ),
)
@requires(Role.ADMIN)
def export_subscribers(
    subscriptions: Subscriptions,
    audit: Audit,
    actor: Caller,
    status: Annotated[SubscriberStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    body, next_cursor = subscriptions.export_csv(status=status, cursor=cursor)
    # Who took a copy of the list, and which part: the whole list, never the addresses it held.
    audit.record(actor, "subscribers.exported", AuditTarget.SUBSCRIBER, "*",
                 status=status.value if status else None, first_page=cursor is None)  # fmt: skip
    headers = {"Content-Disposition": 'attachment; filename="subscribers.csv"', **NO_STORE}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return Response(200, "text/csv; charset=utf-8", body, headers=headers)


@admin_router.delete(
    "/subscribers/<email>",
    summary="Erase a subscriber's data (privacy requests); repeat it, or poll its Location, until it is done",
    tags=["Subscribers"],
    responses={
        **documented(204, "Erased (also: erased already, within the last 14 days).", 401, 403, 404, 503),
        202: {
            "description": "Erasing: the rest continues by itself; the Location (GET) says how far it got.",
            "content": {content_types.APPLICATION_JSON: {"model": Erasure}},
        },
    },
)
@requires(Role.ADMIN)
def erase_subscriber(email: str, erasures: Erasures, audit: Audit, actor: Caller) -> Response[Erasure | None]:
    # API Gateway decoded the path once already: `email` is the address as the editor named it.
    erasure = erasures.erase(email)
    # That someone was erased (or the erasure went on), by whom and when, but not whom: nothing derived from
    # the address may outlive its erasure (not its recipient key, which is also the erasure's id).
    audit.record(actor, "subscriber.erased", AuditTarget.SUBSCRIBER, "-", state=erasure.state.value)
    if erasure.state is ErasureState.DONE:
        return Response(204)
    headers = {"Location": f"/admin/erasures/{erasure.id}", **NO_STORE}
    return Response(202, content_types.APPLICATION_JSON, erasure, headers=headers)


@admin_router.get(
    "/erasures/<erasure_id>",
    summary="How far an erasure got (the Location of a DELETE /admin/subscribers/{email} that answered 202)",
    tags=["Subscribers"],
    responses=documented(200, "The erasure: running (and its step) or done, and what it removed.", 401, 403, 404, 503),
)
@requires(Role.ADMIN)
def get_erasure(erasure_id: str, erasures: Erasures) -> Erasure:
    return erasures.status(erasure_id)
