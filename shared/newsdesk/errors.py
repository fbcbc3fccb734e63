"""The project's exceptions. The API maps each to one HTTP status in one place (newsdesk.api.resolver)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ConfigurationError(RuntimeError):
    """The deployment is missing configuration; a fault of the operator, not the client."""


class NewsdeskError(Exception):
    """A failure with a stable machine-readable code, safe to show to the client."""

    status = 400
    code = "bad_request"
    retry_after: int | None = None
    """Seconds after which the same request may succeed (the `Retry-After` header), when it may."""

    def __init__(
        self, message: str, *, details: Any = None, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after


class InvalidInput(NewsdeskError):
    status = 422
    code = "invalid_input"


class RoleRequired(NewsdeskError):
    """The caller's role may not do this: `details` name the role needed and the caller's."""

    status = 403
    code = "role_required"

    def __init__(self, message: str, *, required: str, role: str | None) -> None:
        super().__init__(message, details={"required": required, "role": role})


class NotFound(NewsdeskError):
    status = 404
    code = "not_found"


class Conflict(NewsdeskError):
    status = 409
    code = "conflict"


class PreconditionFailed(NewsdeskError):
    status = 412
    code = "version_mismatch"


class PayloadTooLarge(NewsdeskError):
    status = 413
    code = "payload_too_large"


class TooManyRequests(NewsdeskError):
    """The caller used up an allowance; `retry_after` says when it has room again."""

    status = 429
    code = "too_many_requests"


class ServiceBusy(NewsdeskError):
    """AWS throttled us or is briefly unavailable: the client may retry."""

    status = 503
    code = "service_busy"
    retry_after = 2


class SendThrottled(Exception):
    """SES refused for now (its rate, a 429), or the request never left: the email was certainly not accepted,
    and the same message may be sent again after a short wait."""


class SendRejected(Exception):
    """SES refused this message for good (for example, a rejected address): do not retry it."""


class SendQuotaExceeded(Exception):
    """SES's 24-hour sending quota is spent: nothing more can be sent until it frees up."""


class SendRefusedForAccount(Exception):
    """SES refuses everything this account or configuration sends, not this one message: sending paused or
    suspended, no permission, an unverified sender, a configuration set missing or paused. Nothing was
    accepted, and nothing will be until the account is put right (by its owner, or by AWS lifting a pause)."""


class SendUncertain(Exception):
    """The request may have reached SES and no clear answer came back (a 5xx, a read timeout, a connection
    broken after the request left): whether the email was accepted is unknown, and SES's own `Send` event will
    tell. Never sent again at once."""


class UploadRejected(Exception):
    """An uploaded file cannot be used as it is; `reason` is recorded for the editor to read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(Exception):
    """This event or message cannot be handled now (busy elsewhere, throttled, out of time): deliver it
    again later."""


# pydantic puts these before the text of an exception a validator raised: the reason alone is the message.
_VALIDATOR_PREFIXES = {"value_error": "Value error, ", "assertion_error": "Assertion failed, "}


def validation_message(error: Mapping[str, Any]) -> str:
    """One pydantic error's message as an editor reads it (in API answers and upload records alike): a
    validator's own words (`needs a UTC offset, ...`), not `Value error, needs a UTC offset, ...`."""
    message = str(error.get("msg", ""))
    prefix = _VALIDATOR_PREFIXES.get(str(error.get("type", "")))
    return message.removeprefix(prefix) if prefix else message
