"""The HTTP API of the template as API Gateway serves it: routes, the Lambda authorizer, payload 2.0, and
only the invocations the functions' resource-based policies allow."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from local.apigateway.invoke_policies import API_GATEWAY, InvokePolicies
from local.lambda_runtime.events import (
    ApiContext,
    HttpRequest,
    HttpResponse,
    authorizer_event,
    execute_api_arn,
    http_api_event,
    http_api_response,
    route_arn,
)
from local.template.model import Route, Template
from newsdesk.redaction import without_addresses

log = logging.getLogger(__name__)
access_log = logging.getLogger("access")
"""One line per request: method, path, status, body size, time taken."""

# A local route answers a full HttpResponse (any content type), or (status, body) as JSON for convenience.
LocalHandler = Callable[[HttpRequest], HttpResponse | tuple[int, Any]]


class Invoker(Protocol):
    def invoke(self, logical_id: str, event: dict[str, Any], started: threading.Event | None = None) -> Any:
        """Run a function on an event; set `started` once it runs (after any local wait for a worker)."""


class _IntegrationTimeout(Exception):
    pass


def _segments(path: str) -> list[str]:
    return path.split("/")[1:]


def match_path(pattern: str, path: str) -> dict[str, str] | None:
    """Path parameters when `path` fits the route pattern ({name}, greedy {name+} last), else None."""
    wanted, given = _segments(pattern), _segments(path)
    parameters = {}
    for index, part in enumerate(wanted):
        if part.startswith("{") and part.endswith("+}"):
            rest = "/".join(given[index:])
            if not rest:
                return None
            parameters[part[1:-2]] = rest
            return parameters
        if index >= len(given):
            return None
        if part.startswith("{") and part.endswith("}"):
            if not given[index]:
                return None
            parameters[part[1:-1]] = given[index]
        elif part != given[index]:
            return None
    return parameters if len(wanted) == len(given) else None


def _specificity(route: Route) -> tuple[tuple[int, ...], int]:
    # Left to right, a literal segment beats {param}, which beats {proxy+}; an explicit method beats ANY.
    ranks = tuple(2 if part.endswith("+}") else 1 if part.startswith("{") else 0 for part in _segments(route.path))
    return ranks, int(route.method == "ANY")


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """Select the route API Gateway would: most specific path and method first, $default last."""
    candidates = []
    for route in routes:
        if route.path == "$default" or route.method not in (method.upper(), "ANY"):
            continue
        parameters = match_path(route.path, path)
        if parameters is not None:
            candidates.append((_specificity(route), route, parameters))
    if candidates:
        _, route, parameters = min(candidates, key=lambda candidate: candidate[0])
        return route, parameters
    default = next((route for route in routes if route.path == "$default"), None)
    return (default, {}) if default else None


def json_response(status: int, body: Any) -> HttpResponse:
    return HttpResponse(
        status, [("content-type", "application/json")], json.dumps(body, separators=(",", ":")).encode()
    )


def html_response(status: int, page: str, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(status, [("content-type", "text/html; charset=utf-8"), *(headers or [])], page.encode())


def _message(status: int, message: str) -> HttpResponse:
    return json_response(status, {"message": message})


INTEGRATION_TIMEOUT_SECONDS = 30.0
"""How long an HTTP API waits for a Lambda integration before it answers 503 itself."""


class ApiServer(ThreadingHTTPServer):
    """The HTTP API of the template, as API Gateway serves it, plus the runner's own /_local routes."""

    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when many clients connect at once; API Gateway
    # takes them all.
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        template: Template,
        functions: Invoker,
        api: ApiContext,
        *,
        invoke_policies: InvokePolicies,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.routes = template.routes
        self.functions = functions
        self.api = api
        self.invoke_policies = invoke_policies
        self.integration_timeout = integration_timeout
        self.local_routes: dict[tuple[str, str], LocalHandler] = {}
        self._integrations = ThreadPoolExecutor(max_workers=64, thread_name_prefix="integration")

    def _integrate(self, function_id: str, event: dict[str, Any]) -> Any:
        """Invoke a function as API Gateway does: it stops waiting after the integration timeout (the
        function runs on), and a function that fails (or times out first) is its 500."""
        started = threading.Event()
        future = self._integrations.submit(self.functions.invoke, function_id, event, started)
        try:
            # Waiting for a free local worker is no part of the integration's time: Lambda scales out.
            while not started.wait(0.1):
                if future.done():
                    return future.result()
            return future.result(timeout=self.integration_timeout)
        except FutureTimeout:
            log.error("%s did not answer within %.0fs: 503", function_id, self.integration_timeout)
            raise _IntegrationTimeout from None

    def _may_invoke(self, function_id: str, source_arn: str) -> bool:
        """Whether the function's resource-based policy lets this API invoke it (on AWS a refused invocation
        is the route's 500)."""
        if self.invoke_policies.allows(function_id, API_GATEWAY, source_arn):
            return True
        log.error(
            "API Gateway may not invoke %s for %s: its resource policy does not allow it", function_id, source_arn
        )
        return False

    def server_close(self) -> None:
        super().server_close()
        self._integrations.shutdown(wait=False, cancel_futures=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_local_route(self, method: str, path: str, handler: LocalHandler) -> None:
        """Serve `handler` at METHOD /_local/...; it runs outside any function.

        `path` may hold {name} segments like a template route (the handler reads them from the request's
        path). The handler answers an HttpResponse, or (status, body) to send the body as JSON."""
        self.local_routes[(method.upper(), path)] = handler

    def _local_route(self, method: str, path: str) -> LocalHandler | None:
        exact = self.local_routes.get((method.upper(), path))
        if exact is not None:
            return exact
        for (route_method, pattern), handler in self.local_routes.items():
            if route_method == method.upper() and "{" in pattern and match_path(pattern, path) is not None:
                return handler
        return None

    def logged_path(self, request: HttpRequest) -> str:
        """The request's path as the runner's logs show it: the template of the route it matched
        (`/admin/subscribers/{email}`), so no path parameter (an address among them) is ever printed; a path no
        route names, with anything shaped like an address redacted."""
        path = request.decoded_path
        local = next((pattern for method, pattern in self.local_routes if method == request.method.upper()
                      and (pattern == path or match_path(pattern, path) is not None)), None)  # fmt: skip
        if local is not None:
            return local
        found = match_route(self.routes, request.method, path)
        if found is not None and found[0].path != "$default":
            return found[0].path
        return "/".join(without_addresses(segment) for segment in path.split("/"))

    def dispatch(self, request: HttpRequest) -> HttpResponse:
        path = request.decoded_path
        local = self._local_route(request.method, path)
        if local is not None:
            answer = local(request)
            if isinstance(answer, HttpResponse):
                return answer
            status, body = answer
            return json_response(status, body)
        found = match_route(self.routes, request.method, path)
        if found is None:
            return _message(404, "Not Found")
        route, parameters = found
        authorizer_context: dict[str, Any] | None = None
        if route.authorizer is not None:
            outcome = self._authorize(route, request, parameters)
            if isinstance(outcome, HttpResponse):
                return outcome
            authorizer_context = outcome
        if not self._may_invoke(route.function_id, route_arn(request, self.api)):
            return _message(500, "Internal Server Error")
        event = http_api_event(
            request, route.route_key, parameters, authorizer_context=authorizer_context, api=self.api
        )
        try:
            result = self._integrate(route.function_id, event)
        except _IntegrationTimeout:
            return _message(503, "Service Unavailable")
        except Exception:  # a function error (logged by the invoker): API Gateway's 500
            return _message(500, "Internal Server Error")
        try:
            return http_api_response(result)
        except (ValueError, TypeError, KeyError) as error:
            log.error("%s returned a response API Gateway cannot map: %s", route.function_id, error)
            return _message(500, "Internal Server Error")

    def _authorize(
        self, route: Route, request: HttpRequest, parameters: dict[str, str]
    ) -> HttpResponse | dict[str, Any]:
        authorizer = route.authorizer
        assert authorizer is not None
        query = parse_qs(request.query, keep_blank_values=True)
        identity = [request.header(name) for name in authorizer.identity_headers]
        identity += [",".join(query[name]) if name in query else None for name in authorizer.identity_query]
        if not all(identity):
            # API Gateway answers 401 itself when an identity source is missing; the authorizer never runs.
            return _message(401, "Unauthorized")
        if not self._may_invoke(authorizer.function_id, execute_api_arn(self.api, f"authorizers/{authorizer.name}")):
            return _message(500, "Internal Server Error")
        event = authorizer_event(
            request,
            route.route_key,
            parameters,
            identity_source=[str(value) for value in identity],
            api=self.api,
        )
        try:
            answer = self._integrate(authorizer.function_id, event)
        except Exception:  # a failed or silent authorizer (logged by the invoker): API Gateway's 500
            return _message(500, "Internal Server Error")
        if not isinstance(answer, dict):
            log.error("authorizer %s returned %r, not an object", authorizer.function_id, answer)
            return _message(500, "Internal Server Error")
        if authorizer.simple_responses:
            if not isinstance(answer.get("isAuthorized"), bool):
                log.error("authorizer %s answered without a boolean isAuthorized", authorizer.function_id)
                return _message(500, "Internal Server Error")
            allowed = answer["isAuthorized"]
        else:
            statements = (answer.get("policyDocument") or {}).get("Statement") or []
            effects = {str(statement.get("Effect")) for statement in statements}
            allowed = "Allow" in effects and "Deny" not in effects
        if not allowed:
            return _message(403, "Forbidden")
        return dict(answer.get("context") or {})


def _content_length(method: str, response: HttpResponse) -> int:
    """The body's length; for HEAD, the length the function says its GET has (it sends no body), as API
    Gateway passes the integration's Content-Length on."""
    if method == "HEAD":
        declared = next((value for key, value in response.headers if key.lower() == "content-length"), "")
        if declared.isdigit():
            return int(declared)
    return len(response.body)


class _RequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=parts.path or "/",
            query=parts.query,
            headers=[(key, value) for key, value in self.headers.items() if key.lower() != "transfer-encoding"],
            body=self._read_body(),
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        started = time.monotonic()
        try:
            response = self.server.dispatch(request)
        except Exception:
            log.exception("the local runner failed on %s %s", self.command, self.server.logged_path(request))
            response = _message(500, "Internal Server Error")
        self.send_response(response.status)
        for key, value in response.headers:
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(_content_length(self.command, response)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        access_log.info(
            "%s %s %d %dB %.0fms",
            self.command,
            self.server.logged_path(request),  # without the query: signed links carry their tokens there
            response.status,
            len(response.body),
            (time.monotonic() - started) * 1000,
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 to a method it has no do_<METHOD> for (TRACE, QUERY...); API Gateway
        # matches any method against the routes (none: 404), so every method is served the same way.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one access-log line per request is written once the answer is sent, with its time

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("%s %s", self.address_string(), format % args)


def serve_in_thread(server: ApiServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="api-server", daemon=True)
    thread.start()
    return thread
