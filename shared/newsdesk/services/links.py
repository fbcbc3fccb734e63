"""Signed personal links: confirm a subscription, unsubscribe, change preferences.

Each link names the address it was made for, encrypted (AES-GCM, with the purpose as associated data) so
that nobody who sees the link (a mail scanner, a proxy log, a forwarded email) can read the address, and
signed with HMAC (itsdangerous) under a purpose-specific salt, so a link cannot be forged, altered to name
another address, or used for another purpose. Both keys derive from one signing key of the keyring
(models/keys.py): a token starts with that key's id (`<kid>~`), so a link made before a rotation opens with
the key that made it; a token without one was made before key ids, with the first key.

Links made before the address was encrypted carry it in readable form; they stay valid for their
lifetime (7 days for a confirmation, for good for unsubscribe and preferences links in sent emails).

A link may carry a few details beside the address, sealed with it: a confirmation link how consent was
asked for (so the consent recorded is the one the person confirmed), an unsubscribe link the delivery it
was sent with (so one click leaves the topics that email was sent for).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from newsdesk.errors import InvalidInput
from newsdesk.models.keys import key_id_of, labelled

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from itsdangerous import URLSafeTimedSerializer

    from newsdesk.services.keys import SigningKeys

CONFIRM_DAYS = 7
MAX_TOKEN_LENGTH = 4096
"""A confirmation link carries its request's topics (40 slugs of 40 characters at most): about 3 KB at worst."""
_NONCE_BYTES = 12
_SEALED = "s"
"""The payload's key for the encrypted address (a legacy payload is the address itself, a string)."""
_SEALED_WITH_DETAILS = "j"
"""The payload's key for the encrypted JSON object of the address (`e`) and the link's details."""


class LinkPurpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    PREVIEW = "preview"
    """A draft's share link (services/previews.py): it names a preview's id, and its token is in the path."""


_PATHS = {
    LinkPurpose.CONFIRM: "/subscribers/confirm",
    LinkPurpose.UNSUBSCRIBE: "/unsubscribe",
    LinkPurpose.PREFERENCES: "/subscribers/preferences",
}
READER_LINKS = tuple(_PATHS)
"""The links of a reader's emails (`url`); a preview's link is made by services/previews.py."""
# Confirmation links expire; links in sent newsletters must keep working.
_MAX_AGE = {LinkPurpose.CONFIRM: CONFIRM_DAYS * 86400}


class InvalidLink(InvalidInput):
    code = "invalid_link"


@dataclass(frozen=True)
class OpenedLink:
    email: str
    issued_at: datetime
    """When the link was made (whole seconds, UTC)."""
    details: dict[str, Any] = field(default_factory=dict)
    """What the link carries beside the address (empty for links made without)."""


def _derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, f"newsdesk.{label}".encode(), hashlib.sha256).digest()


class Pseudonyms:
    """Stable keyed ids of addresses and IPs, to name them in stored keys (the limits' counters) without
    revealing them: from the keyring's identifiers key, which never rotates (models/keys.py)."""

    def __init__(self, identifiers_key: bytes) -> None:
        self._key = _derive(identifiers_key, "pseudonyms")

    def of(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:32]


class LinkSigner:
    def __init__(self, keys: SigningKeys, api_base_url: str) -> None:
        self._keys = keys
        self._ciphers: dict[str, AESGCM] = {}
        self._base = api_base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._base

    def _cipher(self, kid: str, key: bytes) -> AESGCM:
        # cryptography and itsdangerous load with the first link: routes that sign nothing skip them.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if kid not in self._ciphers:
            self._ciphers[kid] = AESGCM(_derive(key, "link-address-encryption"))
        return self._ciphers[kid]

    @staticmethod
    def _serializer(key: bytes, purpose: LinkPurpose) -> URLSafeTimedSerializer:
        from itsdangerous import URLSafeTimedSerializer

        return URLSafeTimedSerializer(key, salt=f"newsdesk.{purpose.value}")

    def token(self, purpose: LinkPurpose, email: str, details: dict[str, Any] | None = None) -> str:
        """A link's token for `email`, with `details` (short JSON values) sealed beside it, made with the
        current key."""
        kid, key = self._keys.current
        plain, field_name = email.encode(), _SEALED
        if details:
            plain = json.dumps({"e": email, **details}, separators=(",", ":")).encode()
            field_name = _SEALED_WITH_DETAILS
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._cipher(kid, key).encrypt(nonce, plain, purpose.value.encode())
        payload = {field_name: base64.urlsafe_b64encode(sealed).decode().rstrip("=")}
        return labelled(kid, str(self._serializer(key, purpose).dumps(payload)))

    def url(self, purpose: LinkPurpose, email: str, details: dict[str, Any] | None = None) -> str:
        return f"{self._base}{_PATHS[purpose]}?token={quote(self.token(purpose, email, details))}"

    def open(self, purpose: LinkPurpose, token: str | None) -> OpenedLink:
        """The address a link was made for, and when; InvalidLink when it is expired, altered, not ours, or
        made with a key the keyring no longer holds."""
        from itsdangerous import BadData

        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidLink("this link is not valid")
        kid, signed = key_id_of(token)
        key = self._keys.get(kid) if kid is not None else None
        if kid is None or key is None:
            raise InvalidLink("this link is not valid")
        try:
            value, issued_at = self._serializer(key, purpose).loads(
                signed, max_age=_MAX_AGE.get(purpose), return_timestamp=True
            )
        except BadData as exc:
            raise InvalidLink("this link is not valid or has expired") from exc
        if isinstance(value, str):  # made before addresses were encrypted
            return OpenedLink(value, issued_at)
        if isinstance(value, dict) and isinstance(value.get(_SEALED_WITH_DETAILS), str):
            try:
                details = json.loads(self._unseal(purpose, kid, key, value[_SEALED_WITH_DETAILS]))
            except ValueError as exc:
                raise InvalidLink("this link is not valid") from exc
            if not isinstance(details, dict) or not isinstance(details.get("e"), str):
                raise InvalidLink("this link is not valid")
            return OpenedLink(details.pop("e"), issued_at, details)
        if not isinstance(value, dict) or not isinstance(value.get(_SEALED), str):
            raise InvalidLink("this link is not valid")
        return OpenedLink(self._unseal(purpose, kid, key, value[_SEALED]), issued_at)

    def email(self, purpose: LinkPurpose, token: str | None) -> str:
        return self.open(purpose, token).email

    def _unseal(self, purpose: LinkPurpose, kid: str, key: bytes, sealed: str) -> str:
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
            plain = self._cipher(kid, key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.value.encode())
            return plain.decode()
        except (binascii.Error, ValueError, InvalidTag) as exc:
            # Only reachable with our own signature on it: a key change, never a client's doing.
            raise InvalidLink("this link is not valid") from exc
