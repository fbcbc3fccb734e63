"""Editor API token shapes."""

from __future__ import annotations

from datetime import datetime

from newsdesk.models.base import Model


class StoredToken(Model):
    token_hash: str
    token_id: str
    name: str
    created_at: datetime
    revoked: bool = False


class IssuedToken(Model):
    """What the editor sees once, when the token is created: the secret itself is never stored."""

    token_id: str
    name: str
    token: str
