"""The whole local stack for end-to-end tests: `python -m local` in a subprocess, on free ports."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class LocalStack:
    api_url: str
    aws_endpoint: str
    region: str
    token: str
    resources: list[dict[str, str]]
    log_path: Path

    def physical_name(self, logical_id: str) -> str:
        return next(item["physical_name"] for item in self.resources if item["logical_id"] == logical_id)

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
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return HttpReply(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return HttpReply(error.code, dict(error.headers.items()), error.read())


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _log_tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_until_ready(process: subprocess.Popen[bytes], api_url: str, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"python -m local exited with {process.returncode}:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{api_url}/_local/resources", timeout=2) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail(f"python -m local did not answer within {START_TIMEOUT_SECONDS}s:\n{_log_tail(log_path)}")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    port, aws_port = _free_ports(2)
    token = secrets.token_urlsafe(32)
    log_path = tmp_path_factory.mktemp("local-stack") / "local.log"
    environment = os.environ | {
        "PORT": str(port),
        "AWS_PORT": str(aws_port),
        "NEWSDESK_DEV_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    refused: list[dict[str, str]] = []
    try:
        info = _wait_until_ready(process, f"http://127.0.0.1:{port}", log_path)
        yield LocalStack(
            api_url=info["api_url"],
            aws_endpoint=info["aws_endpoint"],
            region=info["region"],
            token=token,
            resources=info["resources"],
            log_path=log_path,
        )
        with urllib.request.urlopen(f"{info['api_url']}/_local/iam/denials", timeout=10) as response:
            refused = json.loads(response.read())["denials"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"python -m local did not stop on SIGTERM:\n{_log_tail(log_path)}")
    assert process.returncode == 0, f"python -m local stopped with {process.returncode}:\n{_log_tail(log_path)}"
    # Every function ran with only its role: a call AWS would refuse is a defect, whatever the test saw.
    assert refused == [], f"AWS would refuse these calls of the functions: {refused}"
