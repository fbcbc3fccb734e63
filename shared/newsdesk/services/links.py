"""Signed personal links: confirm a subscription, unsubscribe, change preferences.

Each link carries the address it was made for, signed with HMAC (itsdangerous) under a purpose-specific
salt, so a link cannot be forged, altered to name another address, or used for another purpose.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import quote

from itsdangerous import BadData, URLSafeTimedSerializer

from newsdesk.errors import InvalidInput

CONFIRM_DAYS = 7
MAX_TOKEN_LENGTH = 1024


class LinkPurpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


_PATHS = {
    LinkPurpose.CONFIRM: "/subscribers/confirm",
    LinkPurpose.UNSUBSCRIBE: "/unsubscribe",
    LinkPurpose.PREFERENCES: "/subscribers/preferences",
}
# Confirmation links expire; links in sent newsletters must keep working.
_MAX_AGE = {LinkPurpose.CONFIRM: CONFIRM_DAYS * 86400}


class InvalidLink(InvalidInput):
    code = "invalid_link"


class LinkSigner:
    def __init__(self, secret: bytes, api_base_url: str) -> None:
        self._secret = secret
        self._base = api_base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._base

    def _serializer(self, purpose: LinkPurpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt=f"newsdesk.{purpose.value}")

    def token(self, purpose: LinkPurpose, email: str) -> str:
        return str(self._serializer(purpose).dumps(email))

    def url(self, purpose: LinkPurpose, email: str) -> str:
        return f"{self._base}{_PATHS[purpose]}?token={quote(self.token(purpose, email))}"

    def email(self, purpose: LinkPurpose, token: str | None) -> str:
        """The address a link was made for; InvalidLink when it is expired, altered or not ours."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidLink("this link is not valid")
        try:
            value = self._serializer(purpose).loads(token, max_age=_MAX_AGE.get(purpose))
        except BadData as exc:
            raise InvalidLink("this link is not valid or has expired") from exc
        if not isinstance(value, str):
            raise InvalidLink("this link is not valid")
        return value
