"""Editor API token shapes."""

from datetime import datetime

from pydantic import Field

from newsdesk.models.base import Model
from newsdesk.models.people import Role


class StoredToken(Model):
    token_hash: str
    token_id: str
    name: str
    created_at: datetime
    revoked: bool = False
    person_id: str | None = None
    """The person it belongs to; None for a token made before people (an admin's)."""
    role: Role | None = None
    """At most this role (a person's token may do less than the person); None: the person's, or admin."""


class Token(Model):
    """A token as the API lists it: never the secret, nor its hash."""

    token_id: str
    name: str
    created_at: datetime
    revoked: bool
    person_id: str | None = None
    role: Role | None = Field(default=None, description="Its own limit, below the person's role; absent: none.")


class IssuedToken(Model):
    """What the editor sees once, when the token is created: the secret itself is never stored."""

    token_id: str
    name: str
    token: str
    person_id: str | None = None
    role: Role = Role.ADMIN
    """The role it acts in now."""


class TokenPage(Model):
    items: list[Token]
    next_cursor: str | None = None
