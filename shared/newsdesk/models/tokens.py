"""Editor API token shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class StoredToken(BaseModel):
    token_hash: str
    token_id: str
    name: str
    created_at: datetime
    revoked: bool = False


class IssuedToken(BaseModel):
    """What the editor sees once, when the token is created: the secret itself is never stored."""

    token_id: str
    name: str
    token: str
