"""Sending through Amazon SES v2: one raw MIME message per recipient, tagged for SES's events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from newsdesk.dal.dynamodb import error_code
from newsdesk.errors import SendQuotaExceeded, SendRejected, SendThrottled, SendUncertain
from newsdesk.redaction import without_addresses

# SES refuses these messages themselves (an invalid or rejected address): sending again cannot help.
PERMANENT_CODES = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})
# SES tells a spent daily quota from a rate limit only by the message of its throttling error.
DAILY_QUOTA_MESSAGE = "daily message quota exceeded"


def ses_client() -> Any:
    # No SDK retries: the mailer paces and retries itself, so the configured send rate stays true.
    return boto3.client("sesv2", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


class SesSender:
    def __init__(self, client: Any, *, configuration_set: str) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, *, sender: str, recipient: str, raw: bytes, tags: Mapping[str, str] | None = None) -> str:
        """Send one message with these message tags; returns SES's message id.

        Raises SendRejected when SES refuses this message for good, SendQuotaExceeded when the account's
        daily quota is spent, SendThrottled when SES refused it for now (the email was certainly not
        accepted), and SendUncertain when the request may have reached SES without an answer coming back.
        """
        request: dict[str, Any] = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [recipient]},
            "Content": {"Raw": {"Data": raw}},
            "ConfigurationSetName": self._configuration_set,
        }
        if tags:
            request["EmailTags"] = [{"Name": name, "Value": value} for name, value in tags.items()]
        try:
            reply = self._client.send_email(**request)
        except ClientError as exc:
            # An error answer means SES did not accept the message. SES quotes the recipient in its
            # messages: what callers log or store must not keep it.
            message = str(exc.response.get("Error", {}).get("Message", ""))
            reason = f"{error_code(exc)}: {without_addresses(message)}"
            if error_code(exc) in PERMANENT_CODES:
                raise SendRejected(reason) from exc
            if DAILY_QUOTA_MESSAGE in message.lower():
                raise SendQuotaExceeded(reason) from exc
            raise SendThrottled(reason) from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise SendThrottled(type(exc).__name__) from exc  # the request never left
        except BotoCoreError as exc:
            raise SendUncertain(type(exc).__name__) from exc
        return str(reply["MessageId"])
