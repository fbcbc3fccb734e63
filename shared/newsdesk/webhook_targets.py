"""Where a webhook may point: an https address on a public host, never the stack's own network.

A webhook makes the stack send requests to an address an editor typed, so the address is a way in: the
cloud's metadata service (169.254.169.254), private services, loopback. The rules are checked twice, with
the same code: on the URL when an endpoint is saved (no credentials, no IP literal outside the public
ranges, a public host name), and on every address the host name resolves to just before each delivery
(`newsdesk.dal.webhook_client` connects to the address it checked, so a DNS answer that changes in
between cannot point it elsewhere).

An IPv6 address that stands for an IPv4 address (NAT64, 6to4, Teredo, IPv4-mapped, -compatible or SIIT)
is judged by the IPv4 address inside it: the network on the way translates or tunnels it there. Only port
443 is a target unless the template's `WebhookAllowedPorts` widens it.

The local stack sets `WebhookTargets` (a template parameter, never something a request can claim) to also
accept `http://127.0.0.1:<port>`, or, for the tests, only that; never on the port of its own embedded AWS.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
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
HTTPS_PORT = 443

# Where an IPv6 address carries an IPv4 one: (prefix, byte offsets of the IPv4 address's four bytes).
# RFC 6052 puts it after a NAT64 prefix of 32 to 96 bits, skipping byte 8 (the "u" octet); the local-use
# prefix 64:ff9b:1::/48 (RFC 8215) may be split by its network as a /48, /56, /64 or /96, so each of those
# positions is read and every one must be public.
_RFC6052 = {32: (4, 5, 6, 7), 40: (5, 6, 7, 9), 48: (6, 7, 9, 10), 56: (7, 9, 10, 11), 64: (9, 10, 11, 12),
            96: (12, 13, 14, 15)}  # fmt: skip
_EMBEDDING: list[tuple[ipaddress.IPv6Network, list[tuple[int, int, int, int]]]] = [
    (ipaddress.IPv6Network("64:ff9b::/96"), [_RFC6052[96]]),  # NAT64, the well-known prefix
    (ipaddress.IPv6Network("64:ff9b:1::/48"), [_RFC6052[n] for n in (48, 56, 64, 96)]),  # NAT64, local use
    (ipaddress.IPv6Network("2002::/16"), [(2, 3, 4, 5)]),  # 6to4
    (ipaddress.IPv6Network("::ffff:0:0/96"), [_RFC6052[96]]),  # IPv4-mapped
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), [_RFC6052[96]]),  # SIIT
    (ipaddress.IPv6Network("::/96"), [_RFC6052[96]]),  # IPv4-compatible (:: and ::1 read as 0.0.0.x: refused)
]
_TEREDO = ipaddress.IPv6Network("2001::/32")


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
class TargetPorts:
    """The ports a webhook may use."""

    allowed: frozenset[int] = field(default_factory=lambda: frozenset({HTTPS_PORT}))
    """On public hosts (`WebhookAllowedPorts`)."""
    local_aws: int | None = None
    """The local stack's own AWS endpoint's port (from the functions' AWS_ENDPOINT_URL): on 127.0.0.1 every
    other port may take a receiver, this one never, or a webhook could call the stack's own AWS."""

    def describe(self) -> str:
        ports = [str(port) for port in sorted(self.allowed)]
        return ports[0] if len(ports) == 1 else f"{', '.join(ports[:-1])} or {ports[-1]}"


HTTPS_ONLY = TargetPorts()


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


def parse_target(url: str, mode: TargetMode, *, ports: TargetPorts = HTTPS_ONLY) -> Target:
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
        port = port or (HTTPS_PORT if scheme == "https" else 80)
        if port == ports.local_aws:
            raise TargetRefused(f"must not be port {port} of {LOOPBACK_HOST}: the local stack's own AWS endpoint")
        return Target(scheme, host, port, path, literal=True)
    if mode is TargetMode.LOOPBACK:
        raise TargetRefused(f"must be http://{LOOPBACK_HOST}:<port> on this stack (WebhookTargets is loopback)")
    # Someone trying webhooks on a laptop types localhost or http://: say what this stack takes instead.
    local = f" ({_LOCAL_ONLY})" if mode is TargetMode.PUBLIC_AND_LOOPBACK else ""
    if scheme != "https":
        raise TargetRefused(f"must start with https://{local}")
    port = port or HTTPS_PORT
    if port not in ports.allowed:
        raise TargetRefused(f"must use port {ports.describe()} (the template's WebhookAllowedPorts){local}")
    literal = _ip(host)
    if literal is not None:
        if not public_address(literal):
            raise TargetRefused(f"names an IP address in a private, loopback, link-local or reserved range{local}")
        return Target(scheme, str(literal), port, path, literal=True)
    return Target(scheme, _public_name(host, local), port, path, literal=False)


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
    """Whether `address` is on the public internet; an IPv6 address standing for IPv4 addresses is judged
    by them (every one must be public)."""
    embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    if embedded:
        return all(public_address(inner) for inner in embedded)
    return address.is_global and not address.is_multicast


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for (none for a plain IPv6 address). Teredo gives two: its
    server, and its client, whose bits are flipped in the address (RFC 4380)."""
    if address in _TEREDO:
        assert address.teredo is not None
        return list(address.teredo)
    packed = address.packed
    for network, positions in _EMBEDDING:
        if address in network:
            return [ipaddress.IPv4Address(bytes(packed[i] for i in position)) for position in positions]
    return []


def address_allowed(target: Target, address: str) -> bool:
    """Whether a request for `target` may connect to `address` (one its host name resolved to)."""
    ip = _ip(address)
    if ip is None:
        return False
    if target.loopback:
        return str(ip) == LOOPBACK_HOST
    return public_address(ip)
