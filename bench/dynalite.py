"""dynalite (npm: a DynamoDB implementation on LevelDB) for the benchmarks: install it, start it, stop it."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

BENCH_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = BENCH_DIR / "node_modules" / "dynalite"
START_TIMEOUT_SECONDS = 30.0

# Runs dynalite in memory on a port the OS picks, prints that port, and exits when its stdin closes, so the
# server cannot outlive the Python process that started it (even one killed with SIGKILL).
_SERVER_SCRIPT = """
const dynalite = require(process.argv[1]);
const server = dynalite({createTableMs: 0, deleteTableMs: 0, updateTableMs: 0});
server.listen(0, process.argv[2], () => console.log(server.address().port));
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the benchmarks need {name} (Node.js 20 or later) on PATH")
    return path


def install() -> None:
    """Install bench/node_modules when dynalite is missing: `npm ci` from the lock file, else `npm install`."""
    if (PACKAGE_DIR / "package.json").exists():
        return
    npm = _tool("npm")
    command = [npm, "ci"] if (BENCH_DIR / "package-lock.json").exists() else [npm, "install"]
    print(f"installing dynalite: {' '.join(command[1:])} in {BENCH_DIR}", flush=True)
    subprocess.run([*command, "--silent", "--no-audit", "--no-fund"], cwd=BENCH_DIR, check=True)


class Dynalite:
    """An in-memory dynalite on loopback; as a context manager it is stopped however the block ends."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.endpoint = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the server and return its endpoint URL."""
        install()
        with tempfile.TemporaryFile() as errors:
            self._process = subprocess.Popen(
                [_tool("node"), "-e", _SERVER_SCRIPT, str(PACKAGE_DIR), self.host],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
            try:
                port = _read_port(self._process)
            except BaseException as exc:
                self.stop()
                errors.seek(0)
                detail = errors.read().decode(errors="replace").strip() or str(exc)
                raise RuntimeError(f"dynalite did not start: {detail}") from exc
        self.endpoint = f"http://{self.host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        """Stop the server (closing its stdin is enough; terminate and kill are the fallbacks)."""
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Dynalite:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _read_port(process: subprocess.Popen[bytes]) -> int:
    """The port the server announces on its first line of output."""
    stdout = process.stdout
    if stdout is None:
        raise RuntimeError("no output pipe")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"no port announced within {START_TIMEOUT_SECONDS:.0f} s")
        if process.poll() is not None:
            raise RuntimeError(f"node exited with status {process.returncode}")
        ready, _, _ = select.select([stdout], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(stdout.fileno(), 64)
            if not chunk:
                raise RuntimeError("node closed its output")
            line += chunk
    return int(line.strip())
