"""Configuration that lives in AWS rather than in environment variables, cached by Powertools."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from newsdesk.models.keys import Keyring

CACHE_SECONDS = 300
"""How long a warm function keeps what it read: a rotated key reaches every function within this time."""


def signing_keyring(secret_arn: str, *, fresh: bool = False) -> Keyring:
    """The keys that sign links and seal webhook secrets, and the one recipient keys derive from (Secrets
    Manager; never in the repository or the template). `fresh`: read past the cache."""
    _default_provider("secrets", lambda: parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager")))
    value = parameters.get_secret(secret_arn, max_age=CACHE_SECONDS, force_fetch=fresh)
    return _keyring(value if isinstance(value, str) else bytes(value).decode())


@lru_cache(maxsize=4)
def _keyring(value: str) -> Keyring:
    return Keyring.parse(value)


def api_base_url(parameter_name: str) -> str:
    """The public base URL of the HTTP API (SSM), for links in emails."""
    _default_provider("ssm", lambda: parameters.SSMProvider(boto3_client=boto3.client("ssm")))
    return str(parameters.get_parameter(parameter_name, max_age=CACHE_SECONDS)).rstrip("/")


def _default_provider(kind: str, make: Callable[[], parameters.BaseProvider]) -> None:
    """Install the provider Powertools' `get_secret` / `get_parameter` use (and `clear_caches` drops), made with
    a client of boto3's default session. Powertools' own opens a boto3 Session of its own, and each new session
    loads botocore's endpoint data and the service's model again: a large part of MailerFunction's first
    invocation, which reads both (bench/cold_start.py --profile)."""
    if kind not in DEFAULT_PROVIDERS:
        DEFAULT_PROVIDERS[kind] = make()
