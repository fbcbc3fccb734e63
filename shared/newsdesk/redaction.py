"""Keeps email addresses out of what is stored for later: log lines, error texts, delivery records.

Addresses are personal data that must go when the person is erased; a log line or an SES error message
kept for weeks would outlive the erasure, so texts that may contain one are scrubbed before they are kept.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<address>"
# Anything shaped like local@domain (generous: SES quotes addresses in many ways, sometimes with a name).
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:\\@]+@[^\s<>()\[\]\"',;:\\@]+")


def without_addresses(text: str) -> str:
    return _ADDRESS.sub(REDACTED, text)


def scrubbed(value: Any) -> Any:
    """`value` as JSON would show it (other objects as their text, as the logger shows them), with every
    string in it scrubbed of addresses."""
    if isinstance(value, dict):
        return {key: scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return without_addresses(str(value))
