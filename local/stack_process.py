"""`python -m local` in a child process on free ports, for the end-to-end tests and the benchmarks."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


class StackFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class LocalStack:
    api_url: str
    aws_endpoint: str
    region: str
    token: str
    resources: list[dict[str, Any]]
    log_path: Path
    pid: int

    @property
    def state_path(self) -> Path:
        """The folder where the stack says where it is (NEWSDESK_LOCAL_STATE for `newsdesk --local`)."""
        return self.log_path.with_name("local-state")

    def physical_name(self, logical_id: str) -> str:
        return str(next(item["physical_name"] for item in self.resources if item["logical_id"] == logical_id))

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        editor: bool = False,
    ) -> HttpReply:
        """One HTTP request to the local API; `editor` sends the dev token."""
        all_headers = dict(headers or {})
        if editor:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        try:
            with _open(f"{self.api_url}{path}", timeout=60, data=data, method=method, headers=all_headers) as response:
                return HttpReply(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return HttpReply(error.code, dict(error.headers.items()), error.read())

    def emails(self, *, to: str = "", subject: str = "") -> list[dict[str, Any]]:
        """Every sent email whose To and Subject contain these texts, newest first (GET /_local/emails,
        page after page)."""
        found: list[dict[str, Any]] = []
        cursor = ""
        while True:
            query = urlencode({"to": to, "subject": subject, "limit": 500, "cursor": cursor})
            reply = self.request("GET", f"/_local/emails?{query}")
            if reply.status != 200:
                raise StackFailed(f"GET /_local/emails answered {reply.status}: {reply.body[:300]!r}")
            page = reply.json()
            found += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return found

    def denials(self) -> list[dict[str, str]]:
        """The functions' calls the stack refused (their roles do not allow them)."""
        return list(self.request("GET", "/_local/iam/denials").json()["denials"])


def _open(
    url: str, *, timeout: float, data: bytes | None = None, method: str = "GET", headers: dict[str, str] | None = None
) -> Any:
    # Always the stack's own http://127.0.0.1 address, never a file: or other scheme.
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def log_tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_until_ready(process: subprocess.Popen[bytes], api_url: str, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackFailed(f"python -m local exited with {process.returncode}:\n{log_tail(log_path)}")
        try:
            with _open(f"{api_url}/_local/resources", timeout=2) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise StackFailed(f"python -m local did not answer within {START_TIMEOUT_SECONDS}s:\n{log_tail(log_path)}")


@contextmanager
def local_stack_process(
    log_path: Path, environment: dict[str, str] | None = None, *, ports: tuple[int, int] | None = None
) -> Iterator[LocalStack]:
    """Run the local stack until the block ends; StackFailed if it does not start or stop cleanly. `ports`:
    the HTTP API's and the embedded AWS's (default: two free ones)."""
    port, aws_port = ports or free_ports(2)
    token = secrets.token_urlsafe(32)
    variables = os.environ | {
        "PORT": str(port),
        "AWS_PORT": str(aws_port),
        "NEWSDESK_DEV_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
        # Its own state folder: `newsdesk --local` in a test finds this stack, never a developer's `make dev`.
        "NEWSDESK_LOCAL_STATE": str(log_path.with_name("local-state")),
        **(environment or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=ROOT, env=variables, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        info = _wait_until_ready(process, f"http://127.0.0.1:{port}", log_path)
        yield LocalStack(
            api_url=info["api_url"],
            aws_endpoint=info["aws_endpoint"],
            region=info["region"],
            token=token,
            resources=info["resources"],
            log_path=log_path,
            pid=process.pid,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise StackFailed(f"python -m local did not stop on SIGTERM:\n{log_tail(log_path)}") from None
    if process.returncode != 0:
        raise StackFailed(f"python -m local stopped with {process.returncode}:\n{log_tail(log_path)}")
