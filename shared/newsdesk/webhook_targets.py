"""Where a webhook may point: an https address on a public host, never the stack's own network.

A webhook makes the stack send requests to an address an editor typed, so the address is a way in: the
cloud's metadata service (169.254.169.254), private services, loopback. The rules are checked twice, with
the same code: on the URL when an endpoint is saved (no credentials, no IP literal outside the public
ranges, a public host name), and on every address the host name resolves to just before each delivery
(`newsdesk.dal.webhook_client` connects to the address it checked, so a DNS answer that changes in
between cannot point it elsewhere).

The local stack sets `WebhookTargets` (a template parameter, never something a request can claim) to also
accept `http://127.0.0.1:<port>`, or, for the tests, only that.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
LOOPBACK_HOST = "127.0.0.1"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Names that only ever mean something inside a network (RFC 6761, RFC 8375 and common practice).
_PRIVATE_SUFFIXES = ("localhost", "local", "localdomain", "internal", "intranet", "lan", "home.arpa", "invalid")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOCAL_ONLY = (
    f"besides https:// on a public host, this local stack allows only http://{LOOPBACK_HOST}:<port>, not localhost"
)


class TargetMode(StrEnum):
    PUBLIC = "public"
    """https on public hosts only (deployed stacks)."""
    PUBLIC_AND_LOOPBACK = "public-and-loopback"
    """Also http(s)://127.0.0.1:<port> (the local stack, to try webhooks on a laptop)."""
    LOOPBACK = "loopback"
    """Only http(s)://127.0.0.1:<port> (the tests: nothing leaves the machine)."""


class TargetRefused(ValueError):
    """The address may not receive webhooks; the message says why, for the editor."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    """Lower case, IDNA (ASCII) for names; an IP address without brackets for literals."""
    port: int
    path: str
    """Path and query, as sent in the request line."""
    literal: bool
    """The host is an IP address, not a name."""

    @property
    def loopback(self) -> bool:
        return self.host == LOOPBACK_HOST


def parse_target(url: str, mode: TargetMode) -> Target:
    """The target of a webhook URL, or TargetRefused with the reason."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise TargetRefused("contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname or ""
    except ValueError as exc:
        raise TargetRefused("is not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise TargetRefused("must start with https://")
    if "@" in parts.netloc:
        raise TargetRefused("must not contain a user name or password")
    if parts.fragment or url.endswith("#"):
        raise TargetRefused("must not contain a #fragment")
    if not host:
        raise TargetRefused("has no host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if host == LOOPBACK_HOST and mode is not TargetMode.PUBLIC:
        return Target(scheme, host, port or (443 if scheme == "https" else 80), path, literal=True)
    if mode is TargetMode.LOOPBACK:
        raise TargetRefused(f"must be http://{LOOPBACK_HOST}:<port> on this stack (WebhookTargets is loopback)")
    # Someone trying webhooks on a laptop types localhost or http://: say what this stack takes instead.
    local = f" ({_LOCAL_ONLY})" if mode is TargetMode.PUBLIC_AND_LOOPBACK else ""
    if scheme != "https":
        raise TargetRefused(f"must start with https://{local}")
    literal = _ip(host)
    if literal is not None:
        if not public_address(literal):
            raise TargetRefused(f"names an IP address in a private, loopback, link-local or reserved range{local}")
        return Target(scheme, str(literal), port or 443, path, literal=True)
    return Target(scheme, _public_name(host, local), port or 443, path, literal=False)


def _ip(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _public_name(host: str, local: str = "") -> str:
    try:
        name = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise TargetRefused("has a host name that is not valid") from exc
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise TargetRefused("has a host name that is not valid")
    if len(labels) < 2 or not any(ch.isalpha() for ch in labels[-1]):
        # One label ("intranet") or a numeric last label ("127.1", "0x7f.1"): never a public name, and
        # resolvers read the latter as an IP address.
        raise TargetRefused(f"must name a public host, such as hooks.example.org{local}")
    if any(name == suffix or name.endswith(f".{suffix}") for suffix in _PRIVATE_SUFFIXES):
        raise TargetRefused(f"must name a public host, not a local or internal one{local}")
    return name


def public_address(address: IpAddress) -> bool:
    """Whether `address` is on the public internet (IPv4-mapped IPv6 judged by its IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def address_allowed(target: Target, address: str) -> bool:
    """Whether a request for `target` may connect to `address` (one its host name resolved to)."""
    ip = _ip(address)
    if ip is None:
        return False
    if target.loopback:
        return str(ip) == LOOPBACK_HOST
    return public_address(ip)
