"""The keyring the stack's SigningSecret (Secrets Manager) holds, and how a rotation changes it.

Two kinds of key live in it:

- Signing keys, each with a key id: they sign links, encrypt the address inside them and seal webhook
  secrets. One is current (what is made now carries its id); the others still open what they made, for as
  long as they are kept. A rotation adds a key and makes it current; retiring removes an old one.
- The identifiers key: the keyed hashes that name a person or a message in stored keys derive from it
  (recipient keys of the ledger and of SES's message tags, rate-limit counters, engagement markers). It never
  rotates: a new one would rename every ledger record of a delivery in flight (a second email to each of
  its readers) and orphan every stored hash.

The stack creates the secret as one random string (template.yaml's GenerateSecretString). Read as a keyring,
that string is signing key `0` (current) and the identifiers key both, which is what everything made before
key ids was made with. The first rotation writes the keyring as JSON (docs/data-model.md shows it).
"""

import re
from datetime import datetime
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, ValidationError, model_validator

from newsdesk.errors import ConfigurationError
from newsdesk.models.base import Model

FIRST_KEY_ID = "0"
"""The key the stack was created with: what signed and sealed everything made before values carried a key id."""
KEY_ID_PATTERN = r"^[0-9]{1,6}$"
KEY_ID_SEPARATOR = "~"
"""Between a value's key id and the value: in neither itsdangerous's nor base64's alphabet, and unreserved in
URLs (RFC 3986), so a labelled token needs no escaping in a link."""

KeyId = Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]
_KEY_ID = re.compile(KEY_ID_PATTERN)


class SigningKey(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: str = Field(min_length=1)
    created_at: datetime | None = None
    """When a rotation made it (None for the key the stack was created with)."""
    superseded_at: datetime | None = None
    """When a rotation made another key current: what it made after this is what the other key makes."""


class Keyring(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")

    current: KeyId
    keys: dict[KeyId, SigningKey]
    identifiers: str = Field(min_length=1)

    @model_validator(mode="after")
    def _current_is_kept(self) -> Self:
        if self.current not in self.keys:
            raise ValueError(f"the current key {self.current!r} is not among the keys")
        return self

    @classmethod
    def parse(cls, value: str) -> Self:
        """The keyring a secret's value holds: JSON as a rotation writes it, or the stack's first secret."""
        if not value.startswith("{"):
            return cls(current=FIRST_KEY_ID, keys={FIRST_KEY_ID: SigningKey(secret=value)}, identifiers=value)
        try:
            return cls.model_validate_json(value)
        except ValidationError as exc:
            # Never the value itself in the message: it is the secret.
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
            raise ConfigurationError(f"the signing secret is not a keyring ({problems})") from exc

    def secret_string(self) -> str:
        return self.model_dump_json(exclude_none=True)

    def key(self, kid: str) -> bytes | None:
        """Signing key `kid`, or None when the keyring has no such key (never had, or it was retired)."""
        found = self.keys.get(kid)
        return found.secret.encode() if found is not None else None

    @property
    def current_key(self) -> bytes:
        return self.keys[self.current].secret.encode()

    @property
    def identifier_key(self) -> bytes:
        return self.identifiers.encode()

    def rotated(self, secret: str, now: datetime) -> Self:
        """A new current key (the next id), every older one kept to open what it made."""
        kid = str(max(int(k) for k in self.keys) + 1)
        keys = dict(self.keys)
        keys[self.current] = keys[self.current].model_copy(update={"superseded_at": now})
        keys[kid] = SigningKey(secret=secret, created_at=now)
        return self.model_copy(update={"current": kid, "keys": keys})

    def without(self, kid: str) -> Self:
        """The keyring once key `kid` is retired (never the current one: a rotation comes first)."""
        if kid == self.current:
            raise ValueError(f"key {kid} is current")
        return self.model_copy(update={"keys": {k: v for k, v in self.keys.items() if k != kid}})


def labelled(kid: str, value: str) -> str:
    """`value` (a token, a sealed secret) with the id of the key that made it."""
    return f"{kid}{KEY_ID_SEPARATOR}{value}"


def key_id_of(value: str) -> tuple[str | None, str]:
    """The key id a value names (None when it names one no key could have: not a key id) and the rest; a value
    without one was made before key ids, by the first key."""
    kid, separator, rest = value.partition(KEY_ID_SEPARATOR)
    if not separator:
        return FIRST_KEY_ID, value
    return (kid if _KEY_ID.fullmatch(kid) else None), rest
