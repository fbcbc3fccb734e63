"""Sending through Amazon SES v2: one raw MIME message per recipient."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from newsdesk.dal.dynamodb import error_code
from newsdesk.errors import SendRejected, SendThrottled
from newsdesk.redaction import without_addresses

# SES refuses these messages themselves (an invalid or rejected address): sending again cannot help.
PERMANENT_CODES = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})


@lru_cache(maxsize=1)
def ses_client() -> Any:
    # No SDK retries: the mailer paces and retries itself, so the configured send rate stays true.
    return boto3.client("sesv2", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


class SesSender:
    def __init__(self, client: Any, *, configuration_set: str) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, *, sender: str, recipient: str, raw: bytes) -> str:
        """Send one message; returns SES's message id.

        Raises SendRejected when SES refuses this message for good, and SendThrottled for everything
        that may pass (throttling, a paused account, a network fault), so the caller can retry later.
        """
        try:
            reply = self._client.send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [recipient]},
                Content={"Raw": {"Data": raw}},
                ConfigurationSetName=self._configuration_set,
            )
        except ClientError as exc:
            # SES quotes the recipient in its messages; what callers log or store must not keep it.
            reason = f"{error_code(exc)}: {without_addresses(str(exc))}"
            if error_code(exc) in PERMANENT_CODES:
                raise SendRejected(reason) from exc
            raise SendThrottled(reason) from exc
        except BotoCoreError as exc:
            raise SendThrottled(without_addresses(str(exc))) from exc
        return str(reply["MessageId"])
