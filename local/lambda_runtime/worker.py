"""One function's execution environment, as a Lambda sandbox is: a process of its own.

The runner starts `python -S local/lambda_runtime/worker.py <fd>` with only the function's environment (its template
variables, its own credentials, Lambda's own variables) and the import path Lambda gives it (PYTHONPATH: the
code folder, then the layers, then the runtime's boto3; `-S` keeps the venv's site-packages out). It loads
the handler once (a cold start) and then answers invocations on the connection `fd`, one at a time, until
the runner stops it or it crashes. Standard library only: nothing of the runner is importable from here, as
nothing of it exists in Lambda.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any


class LambdaContext:
    """The context object the Python runtime passes to a handler; time counts down to `deadline`."""

    def __init__(
        self,
        function_name: str,
        *,
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 3,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        aws_request_id: str | None = None,
        deadline: float | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        # Wall-clock time, so the runner (which stops the invocation) and the handler agree on it.
        self._deadline = deadline if deadline is not None else time.time() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def lambda_json(value: Any) -> bytes:
    """Serialise a handler's answer as the Python runtime does (a Decimal as a number)."""

    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            return int(item) if item == item.to_integral_value() else float(item)
        raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")

    return json.dumps(value, default=default).encode()


def error_payload(error_type: str, exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": error_type,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


def _load_handler(spec: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = spec.rpartition(".")
    handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), function_name)
    return handler


def main(fd: int) -> int:
    connection = Connection(fd)
    # The runner's folder comes first on the path of a script; Lambda has no such folder.
    sys.path.pop(0)
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except Exception as exc:  # Lambda reports an init failure on the invocation, then starts afresh
        traceback.print_exc()
        connection.send_bytes(json.dumps({"init_error": error_payload("Runtime.ImportModuleError", exc)}).encode())
        return 1
    connection.send_bytes(b'{"ready": true}')
    while True:
        try:
            request = json.loads(connection.recv_bytes())
        except EOFError:
            return 0
        context = LambdaContext(
            os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            memory_limit_in_mb=int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
            region=os.environ["AWS_REGION"],
            account_id=os.environ.get("NEWSDESK_LOCAL_ACCOUNT_ID", "123456789012"),
            aws_request_id=request["request_id"],
            deadline=request["deadline"],
        )
        try:
            answer = lambda_json({"result": handler(request["event"], context)})
        except Exception as exc:  # the runtime reports any exception as the invocation's error
            traceback.print_exc()
            answer = json.dumps({"error": error_payload(type(exc).__name__, exc)}).encode()
        except SystemExit as exc:
            answer = json.dumps({"error": error_payload("Runtime.ExitError", exc)}).encode()
            connection.send_bytes(answer)
            return 1
        sys.stdout.flush()
        sys.stderr.flush()
        connection.send_bytes(answer)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
