"""The newsroom's people: creating and changing them, and their tokens. Every change is recorded in the
audit trail, in the same transaction as the change."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime

from newsdesk.clock import utc_now
from newsdesk.dal.people import PeopleRepository
from newsdesk.errors import Conflict, InvalidInput, NotFound, RoleRequired
from newsdesk.models.audit import AuditTarget
from newsdesk.models.authors import Author, AuthorProfile, AuthorProfileRequest
from newsdesk.models.people import (
    PERSON_ID_PATTERN,
    Actor,
    CreatePersonRequest,
    CreateTokenRequest,
    Person,
    Role,
    UpdatePersonRequest,
)
from newsdesk.models.tokens import IssuedToken, Token
from newsdesk.services.audit import AuditLog
from newsdesk.services.tokens import TokenService
from newsdesk.slugs import make_slug

_PERSON_ID = re.compile(PERSON_ID_PATTERN)


class PeopleService:
    def __init__(
        self,
        repository: PeopleRepository,
        *,
        tokens: TokenService,
        audit: AuditLog,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._tokens = tokens
        self._audit = audit
        self._clock = clock

    def create(self, request: CreatePersonRequest, *, actor: Actor | None) -> Person:
        now = self._clock()
        person = Person(
            id=secrets.token_hex(8), name=request.name, email=request.email, role=request.role,
            created_at=now, updated_at=now,
        )  # fmt: skip
        audit = self._audit.entry(actor, "person.created", AuditTarget.PERSON, person.id, role=person.role.value)
        self._repo.save(None, person, audit=audit)
        return person

    def get(self, person_id: str) -> Person:
        person = self._repo.get(person_id) if _PERSON_ID.fullmatch(person_id) else None
        if person is None:
            raise NotFound(f"no person with id {person_id!r}")
        return person

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[Person], str | None]:
        return self._repo.page(limit=limit, cursor=cursor)

    def update(self, person_id: str, request: UpdatePersonRequest, *, actor: Actor) -> Person:
        current = self.get(person_id)
        changes = request.model_dump(exclude_unset=True)
        changed = {name: value for name, value in changes.items() if getattr(current, name) != value}
        if not changed:
            return current
        if actor.person_id == person_id and ("role" in changed or changed.get("disabled")):
            # An admin locking themselves out would leave a newsroom without one: another admin does it.
            raise Conflict("you cannot change your own role or disable yourself", code="own_account")
        updated = current.model_copy(update={**changed, "updated_at": self._clock()})
        details = {f"new_{name}": str(value) for name, value in changed.items() if name in ("role", "disabled")}
        audit = self._audit.entry(actor, "person.updated", AuditTarget.PERSON, person_id,
                                  changed=",".join(sorted(changed)), **details)  # fmt: skip
        self._repo.save(current, updated, audit=audit)
        return updated

    def set_author_profile(self, person_id: str, request: AuthorProfileRequest, *, actor: Actor) -> Author:
        """Give a person an author profile, or replace theirs (the slug stays): themselves, or an admin."""
        if actor.person_id != person_id and not actor.role.allows(Role.ADMIN):
            raise RoleRequired(
                "to change someone else's author profile needs the admin role", required=Role.ADMIN.value,
                role=actor.role.value,
            )  # fmt: skip
        person = self.get(person_id)
        name = request.name or person.name
        slug = person.author_slug or request.slug or make_slug(name)
        if request.slug and request.slug != slug:
            raise Conflict(
                f"{person.name}'s author page is /authors/{slug}: its slug cannot change (their articles are listed"
                " under it)",
                code="author_slug_fixed",
            )
        now = self._clock()
        profile = AuthorProfile(
            slug=slug, name=name, bio=request.bio, image_url=request.image_url, links=request.links,
            person_id=person.id, updated_at=now,
        )  # fmt: skip
        updated = person.model_copy(update={"author_slug": slug, "updated_at": now})
        audit = self._audit.entry(actor, "author.updated", AuditTarget.PERSON, person.id, slug=slug)
        self._repo.save(person, updated, audit=audit, profile=profile)
        return Author.model_validate(profile.model_dump(include=set(Author.model_fields)))

    # ------------------------------------------------------------------ tokens
    def issue_token(self, person_id: str, request: CreateTokenRequest, *, actor: Actor | None) -> IssuedToken:
        person = self.get(person_id)
        if person.disabled:
            raise Conflict("the person is disabled: enable them before giving them a token", code="person_disabled")
        if request.role is not None and not person.role.allows(request.role):
            raise InvalidInput(
                f"a token of {person.name} can have at most their role, {person.role.value}",
                details=[{"loc": ["body", "role"]}],
            )
        return self._tokens.create(request.name or person.name, person=person, role=request.role, actor=actor)

    def tokens(self, person_id: str, *, limit: int, cursor: str | None) -> tuple[list[Token], str | None]:
        return self._tokens.of_person(self.get(person_id).id, limit=limit, cursor=cursor)

    def revoke_token(self, person_id: str, token_id: str, *, actor: Actor) -> Token:
        return self._tokens.revoke_of_person(self.get(person_id).id, token_id, actor=actor)
