"""The local SES's verified identities, resolved as SES resolves them, and its sandbox.

SES sends from (and, in the sandbox, to) an address only if a verified identity covers it: the address
itself, else its domain, else a parent domain (news@mail.example.org is covered by example.org). The
identity that covers an address is also the resource IAM authorizes the send against. moto knew the
address and its own domain only, and has no sandbox: here `install()` makes its SES resolve identities
as SES does and, for an account and region put in the sandbox with `set_sandbox`, reject a send to an
address no verified identity covers, with SES's own MessageRejected. Outside the sandbox (the default,
as for an account with production access) any recipient is accepted.
"""

from __future__ import annotations

import email
import functools
import inspect
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from typing import Any

# SES's mailbox simulator takes mail in the sandbox too, without a verified identity.
SIMULATOR_DOMAIN = "simulator.amazonses.com"
_SANDBOX_ATTRIBUTE = "local_sandbox"
_installed = False
_install_lock = threading.Lock()


@dataclass(frozen=True)
class SesState:
    """What an account's SES holds in one region: its verified identities, and whether it is in the sandbox."""

    identities: frozenset[str]
    sandbox: bool = False


SesLookup = Callable[[str], SesState]


def covering_identity(address: str, identities: Collection[str]) -> str | None:
    """The verified identity that covers `address` as SES resolves it (the address, its domain, a parent
    domain), or None. Domains are compared without case, local parts as written."""
    _, _, domain = address.rpartition("@")
    if address in identities:
        return address
    labels = domain.lower().split(".")
    for start in range(len(labels) - 1):
        candidate = ".".join(labels[start:])
        if candidate in identities:
            return candidate
    return None


def is_simulator(address: str) -> bool:
    return address.rpartition("@")[2].lower() == SIMULATOR_DOMAIN


def not_verified_message(region: str, addresses: Iterable[str]) -> str:
    return (
        "Email address is not verified. The following identities failed the check in region "
        f"{region.upper()}: {', '.join(addresses)}"
    )


# ------------------------------------------------------------------------------ the embedded SES


def _backend(account_id: str, region: str) -> Any:
    from moto.ses.models import ses_backends

    return ses_backends[account_id][region]


def set_sandbox(account_id: str, region: str, enabled: bool) -> None:
    """Put the embedded SES of this account and region in the sandbox (or take it out)."""
    setattr(_backend(account_id, region), _SANDBOX_ATTRIBUTE, enabled)


def embedded_ses(account_id: str) -> SesLookup:
    """The state of the embedded SES of `account_id`, by region, as the IAM check needs it."""

    def state(region: str) -> SesState:
        backend = _backend(account_id, region)
        return SesState(frozenset(backend.email_identities), bool(getattr(backend, _SANDBOX_ATTRIBUTE, False)))

    return state


def install() -> None:
    """Make moto's SES (v1 and v2, which shares its identities) resolve identities and keep its sandbox as
    SES does (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
    from moto.ses.exceptions import InvalidParameterValue, MessageRejectedError
    from moto.ses.models import SESBackend

    def verified(self: SESBackend, source: str) -> bool:
        return covering_identity(parseaddr(source)[1], self.email_identities) is not None

    def refuse_unverified(self: SESBackend, source: str | None, recipients: Iterable[str]) -> None:
        failed = [address for address in [parseaddr(source or "")[1]] if address and not verified(self, address)]
        if getattr(self, _SANDBOX_ATTRIBUTE, False):
            addresses = [parseaddr(recipient)[1] for recipient in recipients]
            failed += [address for address in addresses if not is_simulator(address) and not verified(self, address)]
        if failed:
            self.rejected_messages_count += 1
            raise MessageRejectedError(not_verified_message(self.region_name, failed))

    def checked(send: Callable[..., Any], recipients_of: Callable[[dict[str, Any]], list[str]]) -> Callable[..., Any]:
        @functools.wraps(send)
        def wrapper(self: SESBackend, *args: Any, **kwargs: Any) -> Any:
            bound = _arguments(send, self, args, kwargs)
            refuse_unverified(self, bound.get("source"), recipients_of(bound))
            return send(self, *args, **kwargs)

        return wrapper

    set_mail_from = SESBackend.set_identity_mail_from_domain

    def delete_identity(self: SESBackend, identity: str) -> None:
        self.email_identities.pop(identity, None)

    @functools.wraps(set_mail_from)
    def set_identity_mail_from_domain(self: SESBackend, identity: str, *args: Any, **kwargs: Any) -> None:
        if identity not in self.email_identities:
            raise InvalidParameterValue(f"Identity '{identity}' does not exist.")
        set_mail_from(self, identity, *args, **kwargs)

    # moto asks whether an address is verified both to send and to tell an identity exists: the second
    # means the identity itself, not one that covers it.
    SESBackend._is_verified_address = verified  # type: ignore[method-assign]
    SESBackend.delete_identity = delete_identity  # type: ignore[method-assign]
    SESBackend.set_identity_mail_from_domain = set_identity_mail_from_domain  # type: ignore[method-assign]
    SESBackend.send_email = checked(SESBackend.send_email, _listed)  # type: ignore[method-assign]
    SESBackend.send_templated_email = checked(SESBackend.send_templated_email, _listed)  # type: ignore[method-assign]
    SESBackend.send_raw_email = checked(SESBackend.send_raw_email, _raw_recipients)  # type: ignore[method-assign]


def _arguments(
    function: Callable[..., Any], self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    return dict(inspect.signature(function).bind(self, *args, **kwargs).arguments)


def _listed(arguments: dict[str, Any]) -> list[str]:
    destinations = arguments.get("destinations") or {}
    return [address for addresses in destinations.values() for address in addresses]


def _raw_recipients(arguments: dict[str, Any]) -> list[str]:
    """The envelope's recipients: the destinations given, else the message's To, Cc and Bcc (as SES reads
    them when a raw send names no destinations)."""
    if arguments.get("destinations"):
        return list(arguments["destinations"])
    message = email.message_from_string(str(arguments.get("raw_data") or ""))
    return [address for _, address in getaddresses(message.get_all("to", []) + message.get_all("cc", [])
                                                    + message.get_all("bcc", [])) if address]  # fmt: skip
