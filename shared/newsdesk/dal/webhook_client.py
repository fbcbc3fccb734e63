"""The one HTTP client that leaves the stack: a webhook's POST, to an address checked just before it connects.

The host name is resolved here and every address it resolves to must be allowed
(`newsdesk.webhook_targets`); the connection then goes to the checked address, with the name kept for TLS
(SNI and certificate) and the Host header. So a DNS answer that changes after the check (DNS rebinding)
cannot aim the request at a private address. Redirects are not followed (a 3xx is a failed attempt), and
the whole exchange must end within the timeout, however slowly the receiver answers.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from newsdesk.webhook_targets import (
    HTTPS_ONLY,
    Target,
    TargetMode,
    TargetPorts,
    TargetRefused,
    address_allowed,
    parse_target,
)

TIMEOUT_SECONDS = 10.0
_RESPONSE_BYTES_READ = 4096
Resolve = Callable[..., list[tuple[Any, ...]]]


@dataclass(frozen=True)
class PostOutcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to `address`, speaking to the host named in the URL."""

    def __init__(self, target: Target, address: str, timeout: float, tls: ssl.SSLContext | None) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host) if self._tls else sock

    def abort(self) -> None:
        """Cut the connection from another thread: a blocked read returns at once."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)


class WebhookClient:
    def __init__(
        self,
        mode: TargetMode,
        *,
        ports: TargetPorts = HTTPS_ONLY,
        timeout: float = TIMEOUT_SECONDS,
        resolve: Resolve = socket.getaddrinfo,
        user_agent: str = "Newsdesk-Webhooks/1.0",
    ) -> None:
        self._mode = mode
        self._ports = ports
        self._timeout = timeout
        self._resolve = resolve
        self._user_agent = user_agent
        self._tls = ssl.create_default_context()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostOutcome:
        """POST `body` to `url`; the receiver's status, or why there was none. Never raises for the network."""
        started = time.monotonic()

        def outcome(status: int | None = None, error: str | None = None) -> PostOutcome:
            return PostOutcome(status, error, int((time.monotonic() - started) * 1000))

        try:
            target = parse_target(url, self._mode, ports=self._ports)
            addresses = self._addresses(target)
        except TargetRefused as refused:
            return outcome(error=f"refused: the address {refused}")
        last_error = "no address to connect to"
        for address in addresses:
            remaining = self._timeout - (time.monotonic() - started)
            if remaining <= 0:
                return outcome(error=f"timed out after {self._timeout:g} s")
            status, error, connected = self._exchange(target, address, body, headers, remaining)
            if connected:
                return outcome(status, error)
            last_error = error or last_error
        return outcome(error=last_error)

    def _addresses(self, target: Target) -> list[str]:
        if target.literal:
            addresses = [target.host]
        else:
            try:
                answers = self._resolve(target.host, target.port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise TargetRefused(f"host {target.host} could not be resolved") from exc
            addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
        refused = [address for address in addresses if not address_allowed(target, address)]
        if refused or not addresses:
            # Every answer must be allowed: a name that resolves to a public and a private address would
            # otherwise reach the private one whenever the connection fell back to it.
            raise TargetRefused(f"host {target.host} resolves to a private, loopback or reserved address")
        return addresses

    def _exchange(
        self, target: Target, address: str, body: bytes, headers: Mapping[str, str], seconds: float
    ) -> tuple[int | None, str | None, bool]:
        """(status, error, whether a connection was made) of one try at one address, within `seconds`."""
        tls = self._tls if target.scheme == "https" else None
        connection = _PinnedConnection(target, address, seconds, tls)
        timed_out = threading.Event()

        def cut() -> None:
            timed_out.set()
            connection.abort()

        watchdog = threading.Timer(seconds, cut)
        watchdog.daemon = True
        watchdog.start()
        connected = False
        try:
            connection.connect()
            connected = True
            connection.request(
                "POST",
                target.path,
                body=body,
                headers={"Content-Type": "application/json", "User-Agent": self._user_agent, **headers},
            )
            response = connection.getresponse()
            response.read(_RESPONSE_BYTES_READ)  # the answer's body is not kept, only its status
            return response.status, None, True
        except ssl.SSLCertVerificationError as exc:
            return None, f"TLS certificate not accepted ({exc.verify_message})", True
        except TimeoutError:
            return None, f"timed out after {self._timeout:g} s", connected
        except (ssl.SSLError, http.client.HTTPException, OSError) as exc:
            if timed_out.is_set():
                return None, f"timed out after {self._timeout:g} s", connected
            return None, _describe(exc), connected
        finally:
            watchdog.cancel()
            connection.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected):
        return "the connection was closed before an answer came"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, http.client.HTTPException):
        return f"the answer was not HTTP ({type(exc).__name__})"
    return f"network error ({exc.strerror or type(exc).__name__})" if isinstance(exc, OSError) else type(exc).__name__
