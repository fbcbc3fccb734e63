"""The newsroom's people and what each may do: roles, who made a request (the actor), and the people API's
shapes. A token belongs to a person; the person's role says which /admin routes the token opens."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from newsdesk.models.addresses import EmailAddress
from newsdesk.models.base import Model
from newsdesk.models.types import AuthorName


class Role(StrEnum):
    """What a person may do, each role including the ones before it."""

    CONTRIBUTOR = "contributor"
    """Writes and edits their own drafts and submits them for review; cannot publish, schedule or send, and
    sees no subscribers, deliveries, webhooks or uploads."""
    EDITOR = "editor"
    """Everything about articles: reviews, publishes and schedules them, the newsletter, topics, uploads."""
    ADMIN = "admin"
    """People and tokens, subscribers, webhooks, the audit trail: everything."""

    def allows(self, needed: "Role") -> bool:
        return _RANKS[self] >= _RANKS[needed]

    @staticmethod
    def lowest(*roles: "Role") -> "Role":
        return min(roles, key=_RANKS.__getitem__)


_RANKS = {Role.CONTRIBUTOR: 0, Role.EDITOR: 1, Role.ADMIN: 2}

PERSON_ID_PATTERN = r"^[0-9a-f]{16}$"
PersonId = Annotated[str, StringConstraints(pattern=PERSON_ID_PATTERN)]


class Actor(Model):
    """Who made a change: a person, a token made before people existed (`token:<id>`, an admin), or the stack
    itself (`system:<what>`), with the role it acted in. The audit trail names it by `id`."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: Role
    token_id: str | None = None

    @property
    def person_id(self) -> str | None:
        """The person's id; None for a token without a person and for the stack itself."""
        return None if ":" in self.id else self.id


# Constructed as given (they are valid): validating them would build Actor's validator in every function that
# imports this module, at import.
SYSTEM_UPLOAD = Actor.model_construct(id="system:upload", role=Role.EDITOR)
"""Markdown uploaded to the bucket: whoever may write there acts as an editor."""
SYSTEM_SCHEDULE = Actor.model_construct(id="system:schedule", role=Role.EDITOR)
"""The scheduler publishing what an editor scheduled."""


def legacy_token_actor(token_id: str) -> Actor:
    """A token made before people and roles: it could do everything, and still can."""
    return Actor(id=f"token:{token_id}", role=Role.ADMIN, token_id=token_id)


class Person(Model):
    id: str
    name: str
    email: str = Field(description="Where the newsroom's notifications reach them; never shown to readers.")
    role: Role
    disabled: bool = Field(default=False, description="A disabled person's tokens are refused.")
    author_slug: str | None = Field(default=None, description="Their author profile, `/authors/{slug}`.")
    created_at: datetime
    updated_at: datetime


class _Request(Model):
    model_config = ConfigDict(extra="forbid")


class CreatePersonRequest(_Request):
    name: AuthorName
    email: EmailAddress
    role: Role


class UpdatePersonRequest(_Request):
    """Only the fields present change."""

    name: AuthorName | None = None
    email: EmailAddress | None = None
    role: Role | None = None
    disabled: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return self


class PersonPage(Model):
    items: list[Person]
    next_cursor: str | None = None


class CreateTokenRequest(_Request):
    name: AuthorName | None = Field(default=None, description="What the token is for; the person's name if absent.")
    role: Role | None = Field(
        default=None, description="A lower role than the person's, for a token that may do less; absent: theirs."
    )


class Me(Model):
    """Who the token in this request belongs to, and what it may do."""

    actor: str = Field(description="The person's id (`token:<id>` for a token made before people).")
    role: Role
    person: Person | None = None
