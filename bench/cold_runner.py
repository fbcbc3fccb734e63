"""One cold start for bench/cold_start.py, in the fresh process this file is run in.

`python bench/cold_runner.py '<job as JSON>'` either imports a function's handler module and serves one
event (mode "handler"), or imports boto3 and makes, in order, every AWS call the handler made (mode "twin":
the minimal handler), or does that after loading the product's core packages the way any handler built on
them does (mode "floor": Powertools' logger and metrics, pydantic and one model built and used). Before the
clock starts it imports only what Lambda's own runtime has loaded by then (sys, os, time, json) and reads
the job; the clock runs from just before the first import to the end of the first invocation. Run with
`python -X importtime`, it writes CLOCK_STARTS to stderr when the clock starts, so that the imports of the
measured part can be told from the interpreter's own.

It prints one JSON line to the stdout it started with: import_ms, invoke_ms, the reply (or the AWS error
code), and with "record" the AWS calls the handler made (service, operation, parameters) and the clients
it created. With "profile" (a file name), the import and the first invocation run under cProfile and its
statistics go to that file (an untimed run: the profiler slows what it sees). Anything the product prints
(logs, metrics) goes to stderr. It reads nothing from stdin and exits when done.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

Call = dict[str, Any]
CLOCK_STARTS = "cold_runner: the clock starts"


class LambdaContext:
    """The context the Python runtime passes a handler; built without importing anything."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.function_name = str(spec["function_name"])
        self.function_version = "$LATEST"
        self.invoked_function_arn = str(spec["function_arn"])
        self.memory_limit_in_mb = int(spec["memory_limit_in_mb"])
        self.aws_request_id = str(spec["request_id"])
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"2026/01/01/[$LATEST]{self.aws_request_id.replace('-', '')}"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = time.monotonic() + float(spec["timeout_seconds"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# ------------------------------------------------------------------------------- (de)serialising params
def encode(value: Any) -> Any:
    """json.dumps `default`: bytes and datetimes, which boto3 parameters may hold."""
    import base64
    from datetime import datetime

    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    raise TypeError(f"cannot record a parameter of type {type(value).__name__}")


def decode(value: dict[str, Any]) -> Any:
    """json.loads `object_hook`, the inverse of `encode`."""
    if "__bytes__" in value:
        import base64

        return base64.b64decode(value["__bytes__"])
    if "__datetime__" in value:
        from datetime import datetime

        return datetime.fromisoformat(value["__datetime__"])
    return value


def _record_calls() -> tuple[list[Call], list[str]]:
    """Record every AWS call any botocore client of this process makes, and every client it creates
    (untimed warm-up runs only)."""
    import copy

    from botocore.client import BaseClient
    from botocore.session import Session

    calls: list[Call] = []
    clients: list[str] = []
    make_api_call, create_client = BaseClient._make_api_call, Session.create_client

    def recording(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        entry: Call = {"service": service, "operation": operation_name, "params": copy.deepcopy(api_params)}
        try:
            return make_api_call(client, operation_name, api_params)
        except Exception as exc:
            entry["error"] = _error_code(exc)
            raise
        finally:
            calls.append(entry)

    def creating(session: Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        clients.append(service_name)
        return create_client(session, service_name, *args, **kwargs)

    BaseClient._make_api_call = recording
    Session.create_client = creating
    return calls, clients


def _profiler() -> Any:
    """A cProfile profiler, imported before the clock starts (its own import is not the product's)."""
    import cProfile

    return cProfile.Profile()


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


# ------------------------------------------------------------------------------------------------- modes
def serve_event(job: dict[str, Any]) -> dict[str, Any]:
    """Import the handler module as Lambda does (its folder first on the path) and serve one event."""
    sys.path[0] = job["code_dir"]  # instead of this file's folder
    event = job["event"]
    context = LambdaContext(job["context"])
    recorded = _record_calls() if job.get("record") else None

    profiler = _profiler() if job.get("profile") else None

    _mark_clock()
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    module = __import__(job["module"])
    imported = time.perf_counter()
    reply = getattr(module, job["function"])(event, context)
    if profiler is not None:
        profiler.disable()
    finished = time.perf_counter()
    if profiler is not None:
        profiler.dump_stats(job["profile"])

    answer = {"import_ms": (imported - started) * 1000, "invoke_ms": (finished - imported) * 1000, "reply": reply}
    if recorded is not None:
        answer["calls"], answer["clients"] = recorded
    return answer


def core_packages(*, http: bool) -> None:
    """What a handler on the product's core packages loads before any code of its own: Powertools (its
    package root, with the logger and metrics every function makes) and pydantic, with one model built
    and one event validated; for an HTTP API function, the event is a request that Powertools' API Gateway
    resolver (with validation, as the house style has every route) answers with a model. No plugin lookup,
    as in the template (PYDANTIC_DISABLE_PLUGINS)."""
    from aws_lambda_powertools import Logger, Metrics
    from pydantic import BaseModel

    class Request(BaseModel):
        id: str
        attempt: int = 0

    Logger(service="floor")
    Metrics(namespace="Floor", service="floor")
    if not http:
        Request.model_validate({"id": "floor"})
        return
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    app = APIGatewayHttpResolver(enable_validation=True)

    def get_request(request_id: str) -> Request:
        return Request(id=request_id)

    # The types themselves, not this module's postponed strings: the resolver cannot find a local class by name.
    get_request.__annotations__ = {"request_id": str, "return": Request}
    app.get("/requests/<request_id>")(get_request)

    request = {"version": "2.0", "routeKey": "GET /requests/{request_id}", "rawPath": "/requests/floor",
               "rawQueryString": "", "headers": {}, "pathParameters": {"request_id": "floor"}, "isBase64Encoded": False,
               "requestContext": {"http": {"method": "GET", "path": "/requests/floor", "sourceIp": "192.0.2.1"},
                                  "stage": "$default", "requestId": "floor"}}  # fmt: skip
    if app.resolve(request, None)["statusCode"] != 200:  # type: ignore[arg-type]  # the route reads no context
        raise RuntimeError("the floor's route did not answer 200")


def make_calls(job: dict[str, Any]) -> dict[str, Any]:
    """The minimal handler: import boto3, then make the handler's calls in order, one client per service
    (mode "floor": with the core packages loaded first)."""
    calls = json.loads(job["calls"], object_hook=decode)
    errors: list[str | None] = []

    _mark_clock()
    started = time.perf_counter()
    import boto3

    if job["mode"] == "floor":
        core_packages(http=job["http"])
    imported = time.perf_counter()
    clients: dict[str, Any] = {}
    for call in calls:
        service = call["service"]
        client = clients.get(service) or clients.setdefault(service, boto3.client(service))
        try:
            getattr(client, call["method"])(**call["params"])
            errors.append(None)
        except Exception as exc:  # an error answer is still one complete round trip; the report compares it
            if not hasattr(exc, "response"):
                raise
            errors.append(_error_code(exc))
    finished = time.perf_counter()

    return {"import_ms": (imported - started) * 1000, "invoke_ms": (finished - imported) * 1000, "errors": errors}


def _mark_clock() -> None:
    if "importtime" in sys._xoptions:
        print(CLOCK_STARTS, file=sys.stderr, flush=True)


def main() -> None:
    # The answer goes to the stdout we were given; whatever else prints (the product's logs) goes to stderr.
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    job = json.loads(sys.argv[1])
    result = serve_event(job) if job["mode"] == "handler" else make_calls(job)
    answer.write(json.dumps(result, default=encode) + "\n")
    answer.flush()


if __name__ == "__main__":
    main()
