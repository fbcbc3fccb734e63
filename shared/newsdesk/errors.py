"""The project's exceptions. The API maps each to one HTTP status in one place (newsdesk.api.resolver)."""

from __future__ import annotations

from typing import Any


class ConfigurationError(RuntimeError):
    """The deployment is missing configuration; a fault of the operator, not the client."""


class NewsdeskError(Exception):
    """A failure with a stable machine-readable code, safe to show to the client."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


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


class ServiceBusy(NewsdeskError):
    """AWS throttled us or is briefly unavailable: the client may retry."""

    status = 503
    code = "service_busy"


class SendThrottled(Exception):
    """SES refused for now (rate, or a passing fault): the same message may be sent again later."""


class SendRejected(Exception):
    """SES refused this message for good (for example, a rejected address): do not retry it."""


class SendQuotaExceeded(Exception):
    """SES's 24-hour sending quota is spent: nothing more can be sent until it frees up."""


class SendUncertain(Exception):
    """The request may have reached SES but no answer came back: whether the email was accepted is unknown
    (SES's own `Send` event will tell)."""


class UploadRejected(Exception):
    """An uploaded file cannot be used as it is; `reason` is recorded for the editor to read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(Exception):
    """This event or message cannot be handled now (busy elsewhere, throttled, out of time): deliver it
    again later."""
