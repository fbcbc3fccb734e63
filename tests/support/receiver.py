"""A webhook receiver for tests: a small HTTP server on 127.0.0.1 that records every request and answers
with the statuses a test lines up (then a default). Never anything beyond this machine."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    status: int
    """What the receiver answered."""

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._answers: list[int] = []
        self._answered: Callable[[bytes], bool] = lambda _body: True
        self.default = 200
        self.delay_seconds = 0.0
        self.requests: list[Received] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/newsdesk"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer(self, *statuses: int, then: int = 200, of: Callable[[bytes], bool] | None = None) -> None:
        """Answer the next requests with `statuses`, in order, and every later one with `then`; with `of`,
        only requests whose body it accepts take `statuses` (on a shared stack, other events may come too)."""
        with self._lock:
            self._answers = list(statuses)
            self._answered = of or (lambda _body: True)
            self.default = then

    def _next_status(self, body: bytes) -> int:
        with self._lock:
            return self._answers.pop(0) if self._answers and self._answered(body) else self.default

    def record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def of_type(self, event_type: str) -> list[Received]:
        return [request for request in list(self.requests) if request.headers.get("newsdesk-event-type") == event_type]

    def wait_for(
        self,
        count: int,
        *,
        event_type: str | None = None,
        where: Callable[[Received], bool] | None = None,
        timeout: float = 60,
    ) -> list[Received]:
        """The requests once at least `count` came (of `event_type` and accepted by `where`, if given);
        AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.of_type(event_type) if event_type else list(self.requests)
            found = [request for request in found if where is None or where(request)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver got {len(found)} requests, not {count}, in {timeout}s")
            time.sleep(0.1)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 (a free port) until the block ends."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = holder[0]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver._next_status(body)
            receiver.record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status))
            if receiver.delay_seconds:
                time.sleep(receiver.delay_seconds)
            payload = b'{"ok": true}'
            with contextlib.suppress(ConnectionError):  # the sender gave up waiting (a timeout test)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
