"""Who may call which /admin route. Each route declares its lowest role with `@requires(Role.X)` under its
route decorator; `EditorRouter` refuses a route without one and documents the role in the OpenAPI document
(`x-newsdesk-role` and the description), and the resolver checks it before anything of the route runs,
request validation included (newsdesk.api.resolver).

API Gateway's authorizer has checked the token and passed on who it belongs to and their role
(`requestContext.authorizer.lambda`); the route reads that actor with `Depends(current_actor)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from pydantic import ValidationError

from newsdesk.errors import RoleRequired
from newsdesk.models.people import Actor, Role

F = TypeVar("F", bound=Callable[..., Any])
ROLE_EXTENSION = "x-newsdesk-role"
_ROLE_ATTRIBUTE = "__newsdesk_role__"
_actor: ContextVar[Actor | None] = ContextVar("newsdesk_actor", default=None)


def requires(role: Role) -> Callable[[F], F]:
    """Declare the lowest role that may call the route below this decorator."""

    def mark(route: F) -> F:
        setattr(route, _ROLE_ATTRIBUTE, role)
        return route

    return mark


def declared_role(route: Callable[..., Any]) -> Role:
    role = getattr(route, _ROLE_ATTRIBUTE, None)
    if not isinstance(role, Role):
        raise TypeError(f"/admin route {route.__name__} declares no role: add @requires(Role...) under its route")
    return role


def actor_of(event: Any) -> Actor | None:
    """The actor the authorizer named (None when the request carries none, which no /admin route serves)."""
    raw = getattr(event, "raw_event", event) or {}
    context = ((raw.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}
    try:
        return Actor(id=context["actor"], role=context["role"], token_id=context.get("token_id"))
    except (KeyError, TypeError, ValidationError):
        return None


def authorized_actor(event: Any, role: Role) -> Actor:
    """The caller, if their role is at least `role`; RoleRequired (403) otherwise."""
    actor = actor_of(event)
    if actor is None or not actor.role.allows(role):
        raise RoleRequired(
            f"{event.http_method} {event.path} needs the {role.value} role"
            + (f"; this token has the {actor.role.value} role" if actor else ""),
            required=role.value,
            role=actor.role.value if actor else None,
        )
    return actor


@contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """Make `actor` the caller of the route that runs inside (what `current_actor` answers)."""
    bound = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(bound)


def current_actor() -> Actor:
    """Who is calling (for `Depends`): set by the role check, which runs before the route."""
    actor = _actor.get()
    if actor is None:
        raise RuntimeError("no actor: the route runs without its role check")
    return actor


def role_description(role: Role, description: str | None) -> str:
    lead = f"Needs the `{role.value}` role (or above)."
    return f"{lead}\n\n{description}" if description else lead
