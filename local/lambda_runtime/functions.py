"""Running the template's functions: in worker processes as Lambda does, or inside the test process.

`WorkerFunctions` is what `make dev` runs: each function in processes of its own (started on first use and
kept warm), with only its own environment and credentials, stopped when it runs past its `Timeout`, and
only Lambda's import path (its code, the layers, the runtime's boto3: local/lambda_runtime/layer.py), none of the venv.
`InProcessFunctions` runs handlers in the calling process, so integration tests can freeze time and swap
collaborators; its calls to AWS are still checked against the function's role (`local.iam.policies.acting_as`), and
the product's packages come from the layers there too, ahead of the venv.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from local.iam.policies import Credentials, acting_as
from local.lambda_runtime import layer
from local.lambda_runtime.logs import compact_logs, readable
from local.lambda_runtime.worker import LambdaContext, lambda_json
from local.template.model import ACCOUNT_ID, Function, Template
from local.template.resolver import Resolver

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"
INIT_TIMEOUT_SECONDS = 60.0
"""Lambda allows 10 s for a cold start; a loaded laptop importing Powertools may need more."""
DEFAULT_CONCURRENCY = 2
"""Processes per function at most, unless the template reserves fewer (ReservedConcurrentExecutions). Lambda
would scale out instead; a laptop cannot, so further invocations wait for a free process."""


class FunctionError(RuntimeError):
    """An invocation that failed as Lambda reports it: the handler raised, the runtime crashed, or time ran out."""

    def __init__(self, function_id: str, error_type: str, message: str) -> None:
        super().__init__(f"{function_id}: {error_type}: {message}")
        self.function_id = function_id
        self.error_type = error_type
        self.message = message


class FunctionTimedOut(FunctionError):
    pass


def lambda_environment(
    function: Function, resolver: Resolver, credentials: Credentials, extra: dict[str, str]
) -> dict[str, str]:
    """What Lambda puts in a function's environment: the template's variables, Lambda's own, the credentials
    of its role; plus `extra` (the local endpoint). Nothing of the runner's own environment leaks in."""
    name = resolver.physical_name(function.logical_id)
    paths = [str(function.code_dir), *(str(path) for path in layer.layer_path(function.layer_dirs))]
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "_HANDLER": function.handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_REGION": resolver.region,
        "AWS_DEFAULT_REGION": resolver.region,
        "NEWSDESK_LOCAL_ACCOUNT_ID": resolver.account_id,
        # Never the developer's own AWS profile or config: only the role's credentials below.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **resolver.function_environment(function),
        **credentials.environment(),
        **extra,
    }


class _Worker:
    """One warm execution environment of a function: a process and the connection to it."""

    def __init__(self, function: Function, environment: dict[str, str], on_output: Callable[[str], None]) -> None:
        self.function = function
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            # -S: no site-packages of the venv, only PYTHONPATH (the code, the layers, the runtime's boto3).
            [sys.executable, "-S", str(WORKER_SCRIPT), str(theirs.fileno())],
            env=environment,
            cwd=function.code_dir,
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        theirs.close()
        self.connection = Connection(ours.detach())
        assert self.process.stdout is not None
        threading.Thread(target=_forward, args=(self.process.stdout, on_output), daemon=True).start()
        self.ready = False

    def start(self) -> None:
        """Wait for the handler to be loaded (the cold start)."""
        answer = self._receive(INIT_TIMEOUT_SECONDS, "the cold start")
        if "init_error" in answer:
            self.kill()
            raise FunctionError(self.function.logical_id, answer["init_error"]["errorType"],
                                answer["init_error"]["errorMessage"])  # fmt: skip
        self.ready = True

    def invoke(self, event: Any, request_id: str) -> Any:
        deadline = time.time() + self.function.timeout
        self.connection.send_bytes(
            json.dumps({"event": event, "request_id": request_id, "deadline": deadline}).encode()
        )
        answer = self._receive(max(0.0, deadline - time.time()), "the invocation")
        if "error" in answer:
            raise FunctionError(self.function.logical_id, answer["error"]["errorType"], answer["error"]["errorMessage"])
        return answer["result"]

    def _receive(self, seconds: float, what: str) -> dict[str, Any]:
        try:
            if self.connection.poll(seconds):
                answer: dict[str, Any] = json.loads(self.connection.recv_bytes())
                return answer
        except (EOFError, OSError):
            code = self.process.wait()
            self.kill()
            raise FunctionError(
                self.function.logical_id, "Runtime.ExitError", f"the runtime exited with {code} during {what}"
            ) from None
        self.kill()
        raise FunctionTimedOut(
            self.function.logical_id, "Sandbox.Timedout", f"Task timed out after {seconds:.2f} seconds ({what})"
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):  # closed already, by whoever noticed first
            self.connection.close()


def _forward(stream: IO[bytes], on_output: Callable[[str], None]) -> None:
    for line in stream:
        on_output(line.decode("utf-8", "replace").rstrip("\n"))


class WorkerFunctions:
    """The template's functions in worker processes: a warm pool per function, as Lambda keeps them."""

    def __init__(
        self,
        template: Template,
        resolver: Resolver,
        credentials: dict[str, Credentials],
        *,
        extra_environment: dict[str, str] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.template = template
        self.resolver = resolver
        self.credentials = credentials
        self.extra_environment = dict(extra_environment or {})
        self._idle: dict[str, list[_Worker]] = {logical_id: [] for logical_id in template.functions}
        self._slots = {
            logical_id: threading.BoundedSemaphore(min(concurrency, function.reserved_concurrency or concurrency))
            for logical_id, function in template.functions.items()
        }
        self._lock = threading.Lock()
        self._cold_starts = threading.Lock()
        self._busy: set[_Worker] = set()
        self._stopped = False
        self._usage: dict[str, list[float]] = {logical_id: [0, 0.0] for logical_id in template.functions}
        # The layers' packages are built now if missing (a minute, once), not inside a first cold start.
        layer.layer_path(template.layer_dirs)

    def environment(self, logical_id: str) -> dict[str, str]:
        function = self.template.functions[logical_id]
        return lambda_environment(function, self.resolver, self.credentials[logical_id], self.extra_environment)

    def invoke(self, logical_id: str, event: dict[str, Any], started: threading.Event | None = None) -> Any:
        """Run the function on one event in one of its workers; FunctionError when it fails. `started` is set
        when the function begins to run (after waiting for a free worker and its cold start, which take
        longer on a laptop than on Lambda)."""
        with self._slots[logical_id]:
            worker = self._take(logical_id)
            if started is not None:
                started.set()
            request_id = str(uuid.uuid4())
            began = time.monotonic()
            try:
                result = worker.invoke(event, request_id)
            except FunctionError as error:
                log.error("%s failed (request %s): %s", logical_id, request_id, error)
                raise
            finally:
                self._give_back(logical_id, worker)
                with self._lock:
                    self._usage[logical_id][0] += 1
                    self._usage[logical_id][1] += time.monotonic() - began
            return result

    def usage(self, *, reset: bool = False) -> dict[str, dict[str, float]]:
        """Invocations and the seconds they ran, per function (what Lambda bills), with the memory size."""
        with self._lock:
            taken = {
                logical_id: {
                    "invocations": count,
                    "seconds": round(seconds, 3),
                    "memory_mb": self.template.functions[logical_id].memory_size,
                }
                for logical_id, (count, seconds) in self._usage.items()
            }
            if reset:
                self._usage = {logical_id: [0, 0.0] for logical_id in self._usage}
        return taken

    def _take(self, logical_id: str) -> _Worker:
        with self._lock:
            if self._stopped:
                raise FunctionError(logical_id, "Runtime.Stopped", "the local stack is stopping")
            while self._idle[logical_id]:
                worker = self._idle[logical_id].pop()
                if worker.alive:
                    self._busy.add(worker)
                    return worker
        function = self.template.functions[logical_id]
        # One cold start at a time: a dozen processes importing at once would starve the running ones of
        # the CPU and make them miss their deadlines, which Lambda's own CPUs would not.
        with self._cold_starts:
            worker = _Worker(function, self.environment(logical_id), _function_log(logical_id))
            with self._lock:
                self._busy.add(worker)
            try:
                worker.start()
            except FunctionError:
                with self._lock:
                    self._busy.discard(worker)
                raise
        return worker

    def _give_back(self, logical_id: str, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if worker.alive and not self._stopped:
                self._idle[logical_id].append(worker)
            else:
                worker.kill()

    def workers(self) -> dict[str, int]:
        """Warm processes per function."""
        with self._lock:
            return {logical_id: len(idle) for logical_id, idle in self._idle.items()}

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            workers = [worker for idle in self._idle.values() for worker in idle] + list(self._busy)
            for idle in self._idle.values():
                idle.clear()
        for worker in workers:
            worker.kill()


def _function_log(logical_id: str) -> Callable[[str], None]:
    logger = logging.getLogger(f"function.{logical_id}")
    compact = compact_logs()

    def write(line: str) -> None:
        if not line.strip():
            return
        if compact:
            logger.log(*readable(line))
        else:
            logger.info("%s", line)

    return write


class InProcessFunctions:
    """The template's functions inside this process, one invocation at a time per function, each acting
    with its own role. For tests: they can freeze time and replace collaborators."""

    def __init__(self, template: Template, resolver: Resolver) -> None:
        self.template = template
        self.resolver = resolver
        self._locks = {logical_id: threading.Lock() for logical_id in template.functions}
        self._modules: dict[str, ModuleType] = {}
        self._cache_lock = threading.Lock()
        self._last_invoked: str | None = None
        layer.use_in_this_process(template.layer_dirs)

    def _load(self, logical_id: str) -> ModuleType:
        if logical_id in self._modules:
            return self._modules[logical_id]
        function = self.template.functions[logical_id]
        # Every function has a module called `app`: load each under its own name.
        name = f"_newsdesk_local_function_{logical_id}"
        spec = importlib.util.spec_from_file_location(name, function.module_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {function.module_file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        # Lambda puts the code folder on the import path, for the handler's sibling modules.
        sys.path.insert(0, str(function.code_dir))
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        finally:
            sys.path.remove(str(function.code_dir))
        self._modules[logical_id] = module
        return module

    def _own_parameter_cache(self, logical_id: str) -> None:
        """Powertools caches parameters and secrets per process; on Lambda each function has its own. A
        function that follows another here starts with an empty cache, so that it reads (and its role is
        checked for) what it needs itself rather than what the other read."""
        with self._cache_lock:
            if self._last_invoked not in (None, logical_id):
                from aws_lambda_powertools.utilities.parameters import clear_caches

                clear_caches()
            self._last_invoked = logical_id

    def module(self, logical_id: str) -> ModuleType:
        """The function's loaded handler module (loading it if needed)."""
        with self._locks[logical_id]:
            return self._load(logical_id)

    def invoke(self, logical_id: str, event: dict[str, Any], started: threading.Event | None = None) -> Any:
        """Run the function on one event; its exception is logged with the traceback, then raised."""
        function = self.template.functions[logical_id]
        with self._locks[logical_id], acting_as(logical_id):
            self._own_parameter_cache(logical_id)
            if started is not None:
                started.set()
            context = LambdaContext(
                self.resolver.physical_name(logical_id),
                memory_limit_in_mb=function.memory_size,
                timeout_seconds=function.timeout,
                region=self.resolver.region,
                account_id=self.resolver.account_id or ACCOUNT_ID,
            )
            try:
                handler = getattr(self._load(logical_id), function.handler_function)
                return json.loads(lambda_json(handler(json.loads(lambda_json(event)), context)))
            except Exception:
                log.exception("%s failed (request %s)", logical_id, context.aws_request_id)
                raise
