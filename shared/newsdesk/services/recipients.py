"""Recipient keys: who a ledger record or an SES event is about, without the address.

A recipient key is a keyed hash of the address (HMAC-SHA256 under a key derived from the stack's signing
secret). The ledger is keyed by it and every email carries it as an SES message tag, so SES's events find
their record; without the secret nobody can tell whose key it is, or test a guessed address against it.
"""

from __future__ import annotations

import hashlib
import hmac

KEY_LENGTH = 32


class RecipientKeys:
    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"newsdesk.recipient-key", hashlib.sha256).digest()

    def of(self, email: str) -> str:
        return hmac.new(self._key, email.encode("utf-8"), hashlib.sha256).hexdigest()[:KEY_LENGTH]
