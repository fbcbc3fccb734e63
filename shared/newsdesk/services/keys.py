"""Keys in use: the keyring as the services sign and open with it, and rotating it (`newsdesk keys`).

A rotation reaches every function within the secret's cache time (dal/parameters.py, CACHE_SECONDS): until
then a warm function still makes values with the previous key, which stays valid. A value made with the new key
that reaches a function which has not seen it yet makes that function read the secret again at once (at most
once every KEYRING_RELOAD_SECONDS, dependencies.py), so a link is never refused for being too new.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from newsdesk.clock import utc_now
from newsdesk.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from newsdesk.dal.secrets import SigningSecretStore
    from newsdesk.models.keys import Keyring

RETIRE_AFTER = timedelta(days=30)
"""The least time after a key stopped being current before it may be retired: confirmation links live 7 days,
and an unsubscribe link must keep working at least 30 days after its email was sent (CAN-SPAM)."""
RETIRE_AFTER_FORCED = timedelta(minutes=10)
"""Even forced (a leaked key), twice the secret's cache time: until every function has seen the new key, one
could still seal a webhook secret with the old one."""
NEW_KEY_BYTES = 48


class SigningKeys:
    """A keyring as a service uses it: the current key for what it makes, any kept key (by id) for what it
    opens. A key id it does not hold is looked up once more in the secret itself (`reload`), for a rotation
    newer than the cached keyring."""

    def __init__(self, keyring: Keyring, reload: Callable[[], Keyring | None] | None = None) -> None:
        self._keyring = keyring
        self._reload = reload

    @property
    def current(self) -> tuple[str, bytes]:
        return self._keyring.current, self._keyring.current_key

    @property
    def identifiers(self) -> bytes:
        return self._keyring.identifier_key

    def get(self, kid: str) -> bytes | None:
        key = self._keyring.key(kid)
        if key is None and self._reload is not None:
            reload, self._reload = self._reload, None  # once: an unknown id is not worth a second read
            fresh = reload()
            if fresh is not None:
                self._keyring = fresh
                key = fresh.key(kid)
        return key


@dataclass(frozen=True)
class Retired:
    kid: str
    resealed: int
    """Webhook secrets sealed again under the current key first."""
    unreadable: list[str]
    """Webhooks whose secret no key of the keyring opens (sealed with a key retired before): re-create them."""


class KeyRotation:
    """Rotating the signing keys: one operator at a time (Secrets Manager has no conditional write)."""

    def __init__(
        self,
        store: SigningSecretStore,
        *,
        reseal: Callable[[Keyring], tuple[int, list[str]]],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._reseal = reseal
        self._clock = clock

    def keyring(self) -> Keyring:
        return self._store.read()

    def rotate(self) -> Keyring:
        """A new current key; the previous ones stay, so everything they made keeps working."""
        rotated = self._store.read().rotated(secrets.token_urlsafe(NEW_KEY_BYTES), self._clock())
        self._store.write(rotated)
        return rotated

    def retire(self, kid: str, *, force: bool = False) -> Retired:
        """Remove key `kid`. Links it signed stop working (the page says so and offers the way on); webhook
        secrets it sealed are sealed again under the current key first."""
        keyring = self._store.read()
        key = keyring.keys.get(kid)
        if key is None:
            raise NotFound(f"the keyring has no key {kid!r} (keys: {', '.join(sorted(keyring.keys, key=int))})")
        if kid == keyring.current:
            raise InvalidInput(f"key {kid} is the current key: rotate first, then retire it after a while")
        wait = RETIRE_AFTER_FORCED if force else RETIRE_AFTER
        since = key.superseded_at
        if since is None and not force:
            raise InvalidInput(f"when key {kid} stopped being current is not recorded: retire it with --force")
        if since is not None and self._clock() < since + wait:
            why = (
                "every function may not have the current key yet"
                if force
                else "unsubscribe links it signed must work at least 30 days; --force for a leaked key"
            )
            raise InvalidInput(f"key {kid} may be retired from {since + wait:%Y-%m-%d %H:%M} UTC on ({why})")
        resealed, unreadable = self._reseal(keyring)
        self._store.write(keyring.without(kid))
        return Retired(kid, resealed, unreadable)
