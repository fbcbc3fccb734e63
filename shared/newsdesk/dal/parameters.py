"""Configuration that lives in AWS rather than in environment variables, cached by Powertools."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities import parameters

from newsdesk.models.keys import Keyring

CACHE_SECONDS = 300
"""How long a warm function keeps what it read: a rotated key reaches every function within this time."""


def signing_keyring(secret_arn: str, *, fresh: bool = False) -> Keyring:
    """The keys that sign links and seal webhook secrets, and the one recipient keys derive from (Secrets
    Manager; never in the repository or the template). `fresh`: read past the cache."""
    value = parameters.get_secret(secret_arn, max_age=CACHE_SECONDS, force_fetch=fresh)
    return _keyring(value if isinstance(value, str) else bytes(value).decode())


@lru_cache(maxsize=4)
def _keyring(value: str) -> Keyring:
    return Keyring.parse(value)


def api_base_url(parameter_name: str) -> str:
    """The public base URL of the HTTP API (SSM), for links in emails."""
    return str(parameters.get_parameter(parameter_name, max_age=CACHE_SECONDS)).rstrip("/")
