"""Creating, checking and revoking editor API tokens, and what a token may do: the role of the person it
belongs to (at most the token's own role), or admin for a token made before people."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime

from newsdesk.clock import utc_now
from newsdesk.dal.people import PeopleRepository
from newsdesk.dal.tokens import TokenRepository
from newsdesk.errors import InvalidInput, NotFound
from newsdesk.models.audit import AuditTarget
from newsdesk.models.people import Actor, Person, Role, legacy_token_actor
from newsdesk.models.tokens import IssuedToken, StoredToken, Token
from newsdesk.services.audit import AuditLog

TOKEN_PREFIX = "nd_"  # noqa: S105 - a label that makes leaked tokens easy to spot, not a secret
MAX_TOKEN_LENGTH = 512


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None for any other header, or none)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def listed(token: StoredToken) -> Token:
    return Token.model_validate(token.model_dump(exclude={"token_hash"}))


class TokenService:
    def __init__(
        self,
        repository: TokenRepository,
        *,
        people: PeopleRepository | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """`people` None: tokens of people are refused (a stack set-up that only mints its own token)."""
        self._repo = repository
        self._people = people
        self._audit = audit or AuditLog(None)
        self._clock = clock

    def create(
        self,
        name: str,
        *,
        token: str | None = None,
        person: Person | None = None,
        role: Role | None = None,
        actor: Actor | None = None,
    ) -> IssuedToken:
        """Mint a token (or register a chosen one, such as the local stack's dev token), for `person` if given,
        limited to `role` if given; `actor` is who asked (recorded in the audit trail)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("a token needs a name of 1 to 100 characters")
        secret = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
        if len(secret) < 16 or len(secret) > MAX_TOKEN_LENGTH:
            raise InvalidInput("a token must be 16 to 512 characters long")
        token_hash = hash_token(secret)
        stored = StoredToken(
            token_hash=token_hash,
            token_id=token_hash[:8],
            name=name,
            created_at=self._clock(),
            person_id=person.id if person else None,
            role=role,
        )
        audit = self._audit.entry(actor, "token.created", AuditTarget.TOKEN, stored.token_id,
                                  person=stored.person_id, role=role.value if role else None)  # fmt: skip
        self._repo.put(stored, audit=audit)
        acts_as = Role.lowest(role or Role.ADMIN, person.role if person else Role.ADMIN)
        return IssuedToken(token_id=stored.token_id, name=name, token=secret, person_id=stored.person_id, role=acts_as)

    def authorize(self, token: str) -> Actor | None:
        """Who `token` acts for, and in which role; None when it opens nothing (unknown, revoked, or its person
        disabled or gone)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        stored = self._repo.get(hash_token(token))
        if stored is None or stored.revoked:
            return None
        if stored.person_id is None:
            actor = legacy_token_actor(stored.token_id)
            return actor if stored.role is None else actor.model_copy(update={"role": stored.role})
        person = self._people.get(stored.person_id) if self._people else None
        if person is None or person.disabled:
            return None
        role = Role.lowest(person.role, stored.role or person.role)
        return Actor(id=person.id, role=role, token_id=stored.token_id)

    def is_valid(self, token: str) -> bool:
        """Whether `token` opens /admin at all (in any role)."""
        return self.authorize(token) is not None

    def every_token(self) -> list[StoredToken]:
        return sorted(self._repo.all(), key=lambda t: t.created_at)

    def of_person(self, person_id: str, *, limit: int, cursor: str | None) -> tuple[list[Token], str | None]:
        tokens, next_cursor = self._repo.of_person(person_id, limit=limit, cursor=cursor)
        return [listed(token) for token in tokens], next_cursor

    def revoke(self, token_id: str, *, actor: Actor | None = None) -> StoredToken:
        """Revoke by the short id shown by `newsdesk token list`."""
        matches = [t for t in self._repo.all() if t.token_id == token_id]
        if len(matches) != 1:
            raise NotFound(f"no token with id {token_id!r}")
        return self._revoke(matches[0], actor)

    def revoke_of_person(self, person_id: str, token_id: str, *, actor: Actor) -> Token:
        found = self._repo.find(person_id, token_id)
        if found is None:
            raise NotFound(f"the person has no token with id {token_id!r}")
        return listed(self._revoke(found, actor))

    def _revoke(self, token: StoredToken, actor: Actor | None) -> StoredToken:
        audit = self._audit.entry(actor, "token.revoked", AuditTarget.TOKEN, token.token_id, person=token.person_id)
        self._repo.revoke(token.token_hash, audit=audit)
        return token.model_copy(update={"revoked": True})
