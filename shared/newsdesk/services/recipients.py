"""Recipient keys: who a ledger record or an SES event is about, without the address.

A recipient key is a keyed hash of the address (HMAC-SHA256 under a key derived from the keyring's
identifiers key, models/keys.py). The ledger is keyed by it and every email carries it as an SES message tag,
so SES's events find their record; without the secret nobody can tell whose key it is, or test a guessed
address against it. The identifiers key never rotates: a recipient key is the same before and after a
rotation of the signing keys, so a batch sent again after one finds its ledger records (nobody is emailed
twice) and a late SES event finds its record.
"""

from __future__ import annotations

import hashlib
import hmac

KEY_LENGTH = 32


class RecipientKeys:
    def __init__(self, identifiers_key: bytes) -> None:
        self._key = hmac.new(identifiers_key, b"newsdesk.recipient-key", hashlib.sha256).digest()

    def of(self, email: str) -> str:
        return hmac.new(self._key, email.encode("utf-8"), hashlib.sha256).hexdigest()[:KEY_LENGTH]
