"""Creating, checking and revoking editor API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime

from newsdesk.clock import utc_now
from newsdesk.dal.tokens import TokenRepository
from newsdesk.errors import InvalidInput, NotFound
from newsdesk.models.tokens import IssuedToken, StoredToken

TOKEN_PREFIX = "nd_"  # noqa: S105 - a label that makes leaked tokens easy to spot, not a secret
MAX_TOKEN_LENGTH = 512


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None for any other header, or none)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenService:
    def __init__(self, repository: TokenRepository, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repository
        self._clock = clock

    def create(self, name: str, *, token: str | None = None) -> IssuedToken:
        """Mint a token (or register a chosen one, such as the local stack's dev token)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("a token needs a name of 1 to 100 characters")
        secret = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
        if len(secret) < 16 or len(secret) > MAX_TOKEN_LENGTH:
            raise InvalidInput("a token must be 16 to 512 characters long")
        token_hash = hash_token(secret)
        stored = StoredToken(token_hash=token_hash, token_id=token_hash[:8], name=name, created_at=self._clock())
        self._repo.put(stored)
        return IssuedToken(token_id=stored.token_id, name=name, token=secret)

    def is_valid(self, token: str) -> bool:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return False
        stored = self._repo.get(hash_token(token))
        return stored is not None and not stored.revoked

    def list(self) -> list[StoredToken]:
        return sorted(self._repo.all(), key=lambda t: t.created_at)

    def revoke(self, token_id: str) -> StoredToken:
        """Revoke by the short id shown by `newsdesk token list`."""
        matches = [t for t in self._repo.all() if t.token_id == token_id]
        if len(matches) != 1:
            raise NotFound(f"no token with id {token_id!r}")
        self._repo.revoke(matches[0].token_hash)
        return matches[0].model_copy(update={"revoked": True})
