"""Sending through Amazon SES v2: one raw MIME message per recipient, tagged for SES's events, and SES's
answer read as AWS means it (README: "What each SES answer means")."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from newsdesk.dal.dynamodb import error_code
from newsdesk.errors import SendQuotaExceeded, SendRefusedForAccount, SendRejected, SendThrottled, SendUncertain
from newsdesk.redaction import without_addresses

# SES's rate limits (SES v2 answers TooManyRequestsException, a 429; LimitExceededException and the v1 and
# common throttling codes mean the same): this request was refused, the same message may go again soon.
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException"}
)
# SES tells a spent daily quota from a rate limit only by the message of its throttling error.
DAILY_QUOTA_MESSAGE = "daily message quota exceeded"
# Refusals of everything the account or its configuration sends, whoever the recipient: sending paused or
# suspended, a role without permission or with bad credentials, an unverified MAIL FROM domain, a missing
# or paused configuration set (SES v2 says NotFoundException; v1 had codes of its own).
ACCOUNT_CODES = frozenset({
    "SendingPausedException", "AccountSendingPausedException", "AccountSuspendedException",
    "AccessDenied", "AccessDeniedException", "MailFromDomainNotVerifiedException", "NotFoundException",
    "ConfigurationSetDoesNotExistException", "ConfigurationSetDoesNotExist", "ConfigurationSetSendingPausedException",
    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException", "SignatureDoesNotMatch",
})  # fmt: skip
# SES refuses this message itself (its content, its recipient): sending it again cannot help.
PERMANENT_CODES = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})
# MessageRejected also answers for an identity that is not verified: the sender's (nothing can go) or, in the
# SES sandbox, the recipient's (this one cannot). SES names the identities that failed the check.
_UNVERIFIED = ("not verified", "did not have authority to send")
_ACCOUNT_REJECTIONS = ("for this account",)  # "Sending paused for this account.", "Sending suspended for ..."
# Connecting and reading both end within the mailer's safety margin (15 s before its timeout), so a call that
# hangs cannot outlast the invocation that made it.
_CONNECT_TIMEOUT_SECONDS = 5
_READ_TIMEOUT_SECONDS = 10


def ses_client() -> Any:
    # One attempt, never the SDK's retries: botocore retries a 5xx or a read timeout, which would send an email
    # SES may already have accepted a second time, behind the mailer's back; and the mailer paces and retries
    # throttling itself, so the configured send rate stays true.
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=_CONNECT_TIMEOUT_SECONDS,
        read_timeout=_READ_TIMEOUT_SECONDS,
    )
    return boto3.client("sesv2", config=config)


class SesSender:
    def __init__(self, client: Any, *, configuration_set: str) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, *, sender: str, recipient: str, raw: bytes, tags: Mapping[str, str] | None = None) -> str:
        """Send one message with these message tags; returns SES's message id.

        Raises, by what SES's answer means:
        - SendThrottled: refused for now (a throttling code, a 429) or never sent (no connection was opened):
          certainly not accepted, and it may be sent again after a short wait;
        - SendQuotaExceeded: the account's 24-hour quota is spent;
        - SendRefusedForAccount: SES refuses everything the account or its configuration sends;
        - SendRejected: SES refuses this message for good;
        - SendUncertain: a 5xx, a read timeout or a broken connection after the request left: SES may have
          accepted it, and only its Send event will tell.
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
            raise _answer(exc, sender=sender, recipient=recipient) from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:  # no connection, so no request
            raise SendThrottled(type(exc).__name__) from exc
        except BotoCoreError as exc:  # a read timeout, a connection closed mid-answer
            raise SendUncertain(type(exc).__name__) from exc
        return str(reply["MessageId"])


def _answer(exc: ClientError, *, sender: str, recipient: str) -> Exception:
    """The project's exception for an error answer of SES."""
    code = error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    # SES quotes addresses in its messages: what callers log or store must not keep them.
    reason = f"{code or status}: {without_addresses(message)}"
    if status >= 500 or code in ("InternalFailure", "ServiceUnavailable", "InternalServiceErrorException"):
        return SendUncertain(reason)  # SES may have accepted it before it failed
    if DAILY_QUOTA_MESSAGE in message.lower():
        return SendQuotaExceeded(reason)
    if code in THROTTLING_CODES or status == 429:
        return SendThrottled(reason)
    if code == "MessageRejected":
        return (
            SendRefusedForAccount(reason) if _refuses_the_sender(message, sender, recipient) else SendRejected(reason)
        )
    if code in PERMANENT_CODES:
        return SendRejected(reason)
    # The account codes, and any refusal SES may add: nothing was accepted, and stopping until someone looks
    # loses no one and repeats nothing, where failing every recipient or retrying at once would.
    return SendRefusedForAccount(reason)


def _refuses_the_sender(message: str, sender: str, recipient: str) -> bool:
    """Whether a MessageRejected refuses the sender (everything it would send) rather than this message: the
    account's sending is paused or suspended, or an identity failed verification and it is the sender's, or
    SES does not say it is only the recipient's."""
    text = message.lower()
    if any(words in text for words in _ACCOUNT_REJECTIONS):
        return True
    if not any(words in text for words in _UNVERIFIED):
        return False  # the content, or this recipient
    address = parseaddr(sender)[1].lower()
    return (bool(address) and address in text) or recipient.lower() not in text
