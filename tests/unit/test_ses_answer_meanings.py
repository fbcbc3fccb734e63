"""What each answer of SES v2's SendEmail means to the sender: throttled (certainly not accepted, retry soon),
uncertain (maybe accepted: never retried at once), refused for the account, refused for this message, the
daily quota. The client is SES as botocore raises its answers; the reading under test is the project's."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from newsdesk.dal.email import SesSender
from newsdesk.errors import SendQuotaExceeded, SendRefusedForAccount, SendRejected, SendThrottled, SendUncertain

SENDER = "The Gazette <newsroom@gazette.example>"
RECIPIENT = "reader@example.org"
ENDPOINT = "https://email.us-east-1.amazonaws.com"
UNVERIFIED = "Email address is not verified. The following identities failed the check in region US-EAST-1: "
RATE = "Maximum sending rate exceeded."
QUOTA = "Daily message quota exceeded."
PAUSED = "Sending paused for this account."


def answer(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail"
    )


class Answering:
    """SES answering every SendEmail with `error`."""

    def __init__(self, error: Exception) -> None:
        self._error = error
        self.calls = 0

    def send_email(self, **request: Any) -> Any:
        self.calls += 1
        raise self._error


ANSWERS = [
    # Maybe accepted: a 5xx, a read timeout, a connection broken after the request left.
    pytest.param(answer("InternalFailure", 500, "Internal failure"), SendUncertain, id="InternalFailure 500"),
    pytest.param(answer("ServiceUnavailable", 503, "Unavailable"), SendUncertain, id="ServiceUnavailable 503"),
    pytest.param(answer("", 502, "Bad Gateway"), SendUncertain, id="any 5xx"),
    pytest.param(ReadTimeoutError(endpoint_url=ENDPOINT), SendUncertain, id="read timeout"),
    pytest.param(ConnectionClosedError(endpoint_url=ENDPOINT), SendUncertain, id="connection closed"),
    # Certainly not accepted, for now.
    pytest.param(answer("TooManyRequestsException", 429, RATE), SendThrottled, id="TooManyRequestsException 429"),
    pytest.param(answer("LimitExceededException", 400, RATE), SendThrottled, id="LimitExceededException"),
    pytest.param(answer("Throttling", 400, RATE), SendThrottled, id="Throttling"),
    pytest.param(answer("ThrottlingException", 400, "Rate exceeded"), SendThrottled, id="ThrottlingException"),
    pytest.param(answer("", 429, "Too Many Requests"), SendThrottled, id="any 429"),
    pytest.param(EndpointConnectionError(endpoint_url=ENDPOINT), SendThrottled, id="no connection"),
    pytest.param(ConnectTimeoutError(endpoint_url=ENDPOINT), SendThrottled, id="connect timeout"),
    # The daily quota, whichever throttling code carries it.
    pytest.param(answer("Throttling", 400, QUOTA), SendQuotaExceeded, id="quota, v1 code"),
    pytest.param(answer("LimitExceededException", 400, QUOTA), SendQuotaExceeded, id="quota, v2 code"),
    # Everything the account sends is refused.
    pytest.param(answer("SendingPausedException", 400, PAUSED), SendRefusedForAccount, id="sending paused"),
    pytest.param(answer("AccountSuspendedException", 400, ""), SendRefusedForAccount, id="account suspended"),
    pytest.param(answer("AccessDeniedException", 403, ""), SendRefusedForAccount, id="access denied"),
    pytest.param(answer("AccessDenied", 403, ""), SendRefusedForAccount, id="access denied, query protocol"),
    pytest.param(answer("MailFromDomainNotVerifiedException", 400, ""), SendRefusedForAccount, id="MAIL FROM"),
    pytest.param(answer("NotFoundException", 404, ""), SendRefusedForAccount, id="configuration set missing"),
    pytest.param(answer("ConfigurationSetDoesNotExistException", 400, ""), SendRefusedForAccount, id="set, v1"),
    pytest.param(answer("ConfigurationSetSendingPausedException", 400, ""), SendRefusedForAccount, id="set paused"),
    pytest.param(answer("UnrecognizedClientException", 403, ""), SendRefusedForAccount, id="bad credentials"),
    pytest.param(answer("MessageRejected", 400, UNVERIFIED + "newsroom@gazette.example"), SendRefusedForAccount,
                 id="sender not verified"),
    pytest.param(answer("MessageRejected", 400, UNVERIFIED + "gazette.example"), SendRefusedForAccount,
                 id="sender's domain not verified"),
    pytest.param(answer("MessageRejected", 400, UNVERIFIED + f"{RECIPIENT}, newsroom@gazette.example"),
                 SendRefusedForAccount, id="sender and recipient not verified"),
    pytest.param(answer("MessageRejected", 400, "Did not have authority to send from email newsroom@gazette.example"),
                 SendRefusedForAccount, id="local SES: sender not verified"),
    pytest.param(answer("MessageRejected", 400, "Sending suspended for this account."), SendRefusedForAccount,
                 id="sending suspended, v1 wording"),
    pytest.param(answer("SomethingNewException", 400, "Something new."), SendRefusedForAccount,
                 id="an error SES may add"),
    # This message, for good.
    pytest.param(answer("MessageRejected", 400, UNVERIFIED + RECIPIENT), SendRejected,
                 id="sandbox: recipient not verified"),
    pytest.param(answer("MessageRejected", 400, "Illegal header 'Bcc'."), SendRejected, id="content refused"),
    pytest.param(answer("BadRequestException", 400, "Invalid message."), SendRejected, id="bad request"),
]  # fmt: skip


@pytest.mark.parametrize(("error", "meaning"), ANSWERS)
def test_each_ses_answer_means_what_aws_means_by_it(error: Exception, meaning: type[Exception]) -> None:
    ses = Answering(error)

    with pytest.raises(meaning) as raised:
        SesSender(ses, configuration_set="newsdesk").send(sender=SENDER, recipient=RECIPIENT, raw=b"x")

    assert ses.calls == 1
    assert RECIPIENT not in str(raised.value)  # reasons are logged and stored: never with an address
