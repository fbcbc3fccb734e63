"""Configuration that lives in AWS rather than in environment variables, cached by Powertools."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

CACHE_SECONDS = 300


def signing_secret(secret_arn: str) -> bytes:
    """The key that signs subscriber links (Secrets Manager; never in the repository or the template)."""
    value = parameters.get_secret(secret_arn, max_age=CACHE_SECONDS)
    return value.encode() if isinstance(value, str) else bytes(value)


def api_base_url(parameter_name: str) -> str:
    """The public base URL of the HTTP API (SSM), for links in emails."""
    return str(parameters.get_parameter(parameter_name, max_age=CACHE_SECONDS)).rstrip("/")
