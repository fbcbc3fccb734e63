"""Email addresses as Newsdesk accepts them, checked once at every edge (the API, the CSV import, SES
events) and kept in the one form that SES can send to: ASCII, lower-case, the domain in IDNA form."""

import contextlib
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_ADDRESS_LENGTH = 254
MAX_INPUT_LENGTH = 320
"""What a client may send before it is checked (surrounding spaces and a Unicode domain included)."""

# Mailbox providers that deliver `first.last@` and `firstlast@` to the same inbox; the value is the
# domain both names of the provider share.
_DOTS_IGNORED = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def normalize_address(value: str) -> str:
    """The stored form of `value`; ValueError with a reason a person can act on when it cannot be mailed.

    SES sends only to ASCII local parts (it has no SMTPUTF8), so an address with other characters before
    the @ is refused here rather than stored and then never mailed. A Unicode domain is fine: it is kept
    in its ASCII (IDNA) form, which is what SES and every mail server use.
    """
    # Imported on the first address checked: most functions' cold starts check none (bench/cold_start.py).
    from email_validator import EmailNotValidError, validate_email

    text = value.strip()
    local, at, _ = text.rpartition("@")
    if at and not local.isascii():
        raise ValueError(
            "the part before the @ must be ASCII letters, digits or punctuation: addresses that need "
            "SMTPUTF8 (such as jörg@example.org) cannot be mailed from here"
        )
    try:
        parts = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    address = (parts.ascii_email or parts.normalized).lower()
    if len(address) > MAX_ADDRESS_LENGTH:
        raise ValueError(f"an address may have at most {MAX_ADDRESS_LENGTH} characters (its domain in IDNA form)")
    return address


def stored_forms(value: str) -> list[str]:
    """The forms an address an editor names may be stored under, the one form every edge stores first; then,
    for records stored before addresses were normalized (a Unicode domain, or a spelling the rules now
    refuse), the spelling given, lower-cased."""
    forms = []
    with contextlib.suppress(ValueError):
        forms.append(normalize_address(value))
    legacy = value.strip().lower()
    return forms if legacy in forms else [*forms, legacy]


def mailbox(address: str) -> str:
    """The inbox an address reaches, as far as Newsdesk can tell: without a `+tag`, and without the dots
    of providers that ignore them. Used to limit how much mail one inbox gets, never as a key of a subscriber
    (`a+news@` stays a subscription of its own)."""
    local, _, domain = address.lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTS_IGNORED:
        local, domain = local.replace(".", ""), _DOTS_IGNORED[domain]
    return f"{local}@{domain}"


EmailAddress = Annotated[
    str,
    Field(max_length=MAX_INPUT_LENGTH, json_schema_extra={"format": "email"}),
    AfterValidator(normalize_address),
]
"""An address as every request, import row and SES event gives it; validated into its stored form."""
