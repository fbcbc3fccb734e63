"""The signing secret as `newsdesk keys` reads and writes it, with the operator's credentials (the functions
read it through dal/parameters.py, cached)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from botocore.exceptions import ClientError

from newsdesk.dal.dynamodb import error_code
from newsdesk.errors import NotFound
from newsdesk.models.keys import Keyring


def secrets_manager_client() -> Any:
    """A new client (it honours AWS_ENDPOINT_URL: the local stack's embedded AWS)."""
    return boto3.client("secretsmanager")


class SigningSecretStore:
    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def read(self) -> Keyring:
        try:
            value = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise NotFound(f"no secret {self._secret_id!r}") from exc
            raise
        return Keyring.parse(str(value))

    def write(self, keyring: Keyring) -> None:
        """A new version of the secret: Secrets Manager makes it AWSCURRENT and keeps the one before as
        AWSPREVIOUS (what `aws secretsmanager update-secret-version-stage` can move back)."""
        self._client.put_secret_value(
            SecretId=self._secret_id, SecretString=keyring.secret_string(), ClientRequestToken=str(uuid.uuid4())
        )
