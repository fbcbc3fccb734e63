"""moto's server in a child process for the benchmarks, with a control line on stdin to read its SES store.

`python -m bench.emulator` serves moto on a loopback port the OS picks, prints {"endpoint": ...} as its first
line, then answers one JSON line per command it reads: `take` gives the recipients of every raw email SES
accepted since the previous `take` (and forgets those emails, so the store does not grow from run to run).
It exits when its stdin closes, so it cannot outlive the process that started it, even one killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60.0
REPLY_TIMEOUT_SECONDS = 120.0


def child_environment() -> dict[str, str]:
    """This process's environment with the repository and shared/ on the import path (for `-m bench...`)."""
    paths = [str(ROOT), str(ROOT / "shared"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Close the child's pipes (its signal to exit), then terminate it, then kill it."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_line(process: subprocess.Popen[bytes], timeout: float, what: str) -> dict[str, Any]:
    """The child's next line of output, as JSON; fails if the child exits or stays silent too long."""
    stdout = process.stdout
    if stdout is None:
        raise RuntimeError(f"{what}: no output pipe")
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"{what}: no answer within {timeout:.0f} s")
        ready, _, _ = select.select([stdout], [], [], min(remaining, 0.5))
        if ready:
            chunk = os.read(stdout.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError(f"{what}: exited with status {process.wait()}")
            line += chunk
        elif process.poll() is not None:
            raise RuntimeError(f"{what}: exited with status {process.returncode}")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise RuntimeError(f"{what}: unexpected answer {line[:200]!r}")
    return answer


class Emulator:
    """The moto server child; as a context manager it is stopped however the block ends."""

    def __init__(self) -> None:
        self.endpoint = ""
        self.pid = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        # Its own session: Ctrl-C reaches only the benchmark, which then stops this child itself.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.emulator"],
            cwd=ROOT,
            env=child_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid = self._process.pid
        try:
            self.endpoint = str(read_line(self._process, START_TIMEOUT_SECONDS, "moto server")["endpoint"])
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def take_sent(self) -> list[str]:
        """Recipients of the raw emails SES accepted since the last call, one entry per email."""
        process = self._process
        if process is None or process.stdin is None:
            raise RuntimeError("the emulator is not running")
        process.stdin.write(b"take\n")
        process.stdin.flush()
        return [str(to) for to in read_line(process, REPLY_TIMEOUT_SECONDS, "moto server")["recipients"]]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process)

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------- the child
def _take_recipients() -> list[str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    taken = []
    for backend in list(ses_backends[DEFAULT_ACCOUNT_ID].values()):  # only the regions that were used
        messages, backend.sent_messages = backend.sent_messages, []
        # The first destination is the SendEmail call's own ToAddresses (moto appends the To header's after it).
        taken += [m.destinations[0] for m in messages if getattr(m, "raw_data", None) is not None and m.destinations]
    return taken


def _forget_instances(stop: threading.Event) -> None:
    """moto keeps every model object it ever made (for its dashboard, which nobody opens here), so deleted
    items, messages and tables would pile up in memory and in every garbage collection: forget them."""
    from moto.core.model_instances import reset_model_data

    while not stop.wait(1.0):
        reset_model_data()


def _serve(commands: IO[str], answers: IO[str]) -> None:
    import moto.backends
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    # moto lists its own package folder on every request to route it (a stat per service, ~0.4 ms a call);
    # the listing never changes while it runs, so it is taken once.
    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stop = threading.Event()
    threading.Thread(target=_forget_instances, args=(stop,), name="forget-instances", daemon=True).start()
    try:
        host, port = server.get_host_and_port()
        answers.write(json.dumps({"endpoint": f"http://{host}:{port}"}) + "\n")
        answers.flush()
        for command in commands:
            if command.strip() == "take":
                answers.write(json.dumps({"recipients": _take_recipients()}) + "\n")
                answers.flush()
    finally:
        stop.set()
        server.stop()


def main() -> None:
    _serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
