"""The resolver every HTTP function uses, and the one mapping from exceptions to HTTP replies."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from re import Match, Pattern
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.constants import DEFAULT_OPENAPI_RESPONSE_DESCRIPTION
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError, ValidationException

from newsdesk.api.access import ROLE_EXTENSION, acting, authorized_actor, declared_role, role_description
from newsdesk.api.caching import NotModified, not_modified_reply
from newsdesk.errors import NewsdeskError, RoleRequired, validation_message
from newsdesk.models.base import Model
from newsdesk.models.people import Role
from newsdesk.observability import logger


class ErrorBody(Model):
    code: str
    message: str
    details: Any = None


class ErrorResponse(Model):
    error: ErrorBody


class GatewayError(Model):
    """What API Gateway itself answers when the authorizer refuses a request."""

    message: str


_DESCRIPTIONS = {
    400: "Malformed request (for example, a body that is not JSON).",
    401: "No `Authorization` header (answered by API Gateway).",
    403: (
        'The token is wrong or revoked (API Gateway answers `{"message": "Forbidden"}`), or its role may not do'
        " this (`role_required`, naming the role needed)."
    ),
    404: (
        'Not found; API Gateway answers `{"message": "Not Found"}` itself when no route matches'
        " (for example, a path parameter holding an encoded `/`)."
    ),
    409: "Conflicts with existing data.",
    412: "`If-Match` names an older version.",
    413: "Too large.",
    415: "The body is not sent as `application/json`.",
    422: "The request does not match the schema.",
    429: "An allowance is used up; `Retry-After` says when there is room again.",
    503: "AWS is throttling; retry after a moment.",
}

# Statuses API Gateway answers itself (in its own shape), without or besides the function.
_MODELS: dict[int, Any] = {401: GatewayError, 403: ErrorResponse | GatewayError, 404: ErrorResponse | GatewayError}


_HEADER_DESCRIPTIONS = {
    "ETag": "The representation's version: send it back in `If-Match` (writes) or `If-None-Match` (reads).",
    "Last-Modified": "When the content last changed; send it back in `If-Modified-Since`.",
    "Cache-Control": "How long a browser or a CDN in front may keep the answer.",
    "Location": "The address of the resource just created.",
    "X-Next-Cursor": "The `cursor` of the next page; absent on the last page.",
}
CONDITIONAL_READ = ("ETag", "Last-Modified", "Cache-Control")
"""The headers of a public read that answers `If-None-Match` / `If-Modified-Since` with 304."""


def _headers(names: Sequence[str]) -> dict[str, Any]:
    return {name: {"description": _HEADER_DESCRIPTIONS[name], "schema": {"type": "string"}} for name in names}


def documented(
    success: int,
    description: str,
    *errors: int,
    content_type: str | None = None,
    body: bool = True,
    headers: Sequence[str] = (),
) -> dict[int, Any]:
    """OpenAPI `responses` of a route: its success (schema from the return type; none for 204 or `body=False`;
    a JSON object or a string for an explicit `content_type`), with the `headers` it sends, and the error
    statuses it can answer with, in the one error shape (or API Gateway's own, for what API Gateway
    answers). A route sending the conditional-read headers also answers 304."""
    responses: dict[int, dict[str, Any]] = {success: {"description": description}}
    if headers:
        responses[success]["headers"] = _headers(headers)
    if "ETag" in headers and "Last-Modified" in headers:
        responses[304] = {
            "description": "Not modified: the `If-None-Match` or `If-Modified-Since` copy is current (no body).",
            "headers": _headers(headers),
            "content": {},
        }
    if success == 204 or not body:
        responses[success]["content"] = {}
    elif content_type:
        schema = {"type": "object"} if _is_json(content_type) else {"type": "string"}
        responses[success]["content"] = {content_type: {"schema": schema}}
    for status in sorted({*errors, 422}):
        model = _MODELS.get(status, ErrorResponse)
        responses[status] = {
            "description": _DESCRIPTIONS[status],
            "content": {content_types.APPLICATION_JSON: {"model": model}},
        }
    return responses


def error_reply(
    status: int, code: str, message: str, details: Any = None, *, retry_after: int | None = None
) -> Response[str]:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(status, content_types.APPLICATION_JSON, body.model_dump_json(), headers=headers)


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    return [
        {"loc": list(error.get("loc", ())), "msg": validation_message(error), "type": str(error.get("type", ""))}
        for error in errors
    ]


def _is_json(content_type: str) -> bool:
    return content_type.lower() == "application/json" or content_type.lower().endswith("+json")


class HttpApiResolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver, with path parameters exactly as API Gateway hands them over.

    API Gateway decodes the path once, for `rawPath` and `pathParameters` alike. Powertools matches its
    routes against `rawPath` and takes the values from that match; a handler that decodes them again turns
    `x%41y@...` (an address that really contains `%41`) into `xAy@...`. So a route's values come from
    `pathParameters`, and a `<name>` segment matches any single segment, as `{name}` does in API Gateway
    (Powertools' own pattern refuses characters such as `#`, `?`, `"` or a backslash, which a decoded
    value may hold: an address may contain `#`).
    """

    @staticmethod
    def _compile_regex(rule: str, base_regex: str = "^{}$") -> Pattern[str]:
        return re.compile(base_regex.format(re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", rule)))

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """A HEAD request is answered as its GET without the body (RFC 9110, 9.3.2): the same status and
        headers (ETag, Cache-Control, ...), and the GET body's Content-Length, which API Gateway passes on
        from the function's headers (as Powertools' own HEAD example does). The template routes HEAD to the
        function that serves the GET."""
        http = (event.get("requestContext") or {}).get("http") or {}
        if str(http.get("method", "")).upper() != "HEAD":
            return super().resolve(event, context)
        as_get = {**event, "requestContext": {**event["requestContext"], "http": {**http, "method": "GET"}}}
        answer = super().resolve(as_get, context)
        body = str(answer.get("body") or "")
        length = len(base64.b64decode(body)) if answer.get("isBase64Encoded") else len(body.encode())
        headers = {**(answer.get("headers") or {}), "Content-Length": str(length)}
        return {**answer, "headers": headers, "body": "", "isBase64Encoded": False}

    def _call_route(self, route: Any, route_arguments: dict[str, str]) -> Any:
        """An /admin route's role (its `x-newsdesk-role`) is checked before anything of the route runs, the
        request's validation included: a refused caller learns nothing of the route, whatever they send."""
        role = (route.openapi_extensions or {}).get(ROLE_EXTENSION)
        if role is None:
            return super()._call_route(route, route_arguments)
        try:
            actor = authorized_actor(self.current_event, Role(role))
        except RoleRequired as exc:
            return self._call_exception_handler(exc, route)
        with acting(actor):
            return super()._call_route(route, route_arguments)

    def _convert_matches_into_route_keys(self, match: Match[str]) -> dict[str, str]:
        given = self.current_event.path_parameters or {}
        return {name: given.get(name, value) for name, value in match.groupdict().items()}


def read_json(text: str | bytes | bytearray) -> Any:
    """The body's JSON. Nesting deeper than the interpreter's recursion limit (a thousand `[` fit in 2 KB)
    raises RecursionError from the parser; it is a malformed body like any other, so it becomes the
    JSONDecodeError that Powertools answers with a 400."""
    try:
        return json.loads(text)
    except RecursionError:
        document = text if isinstance(text, str) else bytes(text).decode("utf-8", "replace")
        raise json.JSONDecodeError("the JSON nests too deeply", document, 0) from None


ADMIN_PREFIX = "/admin"
AUTH_ERRORS = (401, 403)
"""What an editor route may answer before it runs: no token (401), a wrong or revoked one (403, from API
Gateway), a role below the route's (403, role_required)."""
EDITOR_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


class EditorRouter(Router):
    """Editor routes: their paths are relative to /admin (every function and the OpenAPI document include
    them with `prefix=ADMIN_PREFIX`), and each is documented with the editor's bearer token, which API
    Gateway's authorizer has checked before any of them runs. Each route declares its lowest role
    (`@requires` in newsdesk.api.access), which is documented and checked before the route runs."""

    def route(
        self,
        rule: str,
        method: str | list[str] | tuple[str],
        cors: bool | None = None,
        compress: bool = False,
        cache_control: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        responses: dict[int, Any] | None = None,
        response_description: str | None = DEFAULT_OPENAPI_RESPONSE_DESCRIPTION,
        tags: list[str] | None = None,
        operation_id: str | None = None,
        include_in_schema: bool = True,
        security: list[dict[str, list[str]]] | None = None,
        openapi_extensions: dict[str, Any] | None = None,
        deprecated: bool = False,
        enable_validation: bool | None = None,
        custom_response_validation_http_code: Any = None,
        status_code: int = 200,
        middlewares: list[Callable[..., Any]] | None = None,
    ) -> Callable[[Any], Any]:
        def register(route: Any) -> Any:
            role = declared_role(route)
            return super(EditorRouter, self).route(
                rule, method, cors, compress, cache_control, summary, role_description(role, description),
                responses, response_description, tags, operation_id, include_in_schema,
                security or EDITOR_SECURITY, {**(openapi_extensions or {}), ROLE_EXTENSION: role.value},
                deprecated, enable_validation, custom_response_validation_http_code, status_code, middlewares,
            )(route)  # fmt: skip

        return register


def create_resolver(make: Callable[..., HttpApiResolver] = HttpApiResolver) -> HttpApiResolver:
    """A resolver (`make(**options)`: HttpApiResolver or a subclass) with the one exception-to-HTTP mapping."""
    app = make(enable_validation=True, json_body_deserializer=read_json)

    @app.exception_handler(NewsdeskError)
    def _newsdesk_error(exc: NewsdeskError) -> Response[str]:
        logger.info("request refused", extra={"code": exc.code, "status": exc.status})
        return error_reply(exc.status, exc.code, exc.message, exc.details, retry_after=exc.retry_after)

    @app.exception_handler(NotModified)
    def _not_modified(exc: NotModified) -> Response[str]:
        return not_modified_reply(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError) -> Response[str]:
        details = _validation_details(exc.errors())
        content_type = (app.current_event.headers.get("content-type") or "application/json").split(";")[0].strip()
        if app.current_event.body and not _is_json(content_type) and any(d["loc"][:1] == ["body"] for d in details):
            # curl -d sends form encoding by default: say what to send rather than list odd field errors.
            message = f"send the body as JSON with Content-Type: application/json (got {content_type})"
            return error_reply(415, "unsupported_media_type", message)
        if any(d["type"] == "json_invalid" for d in details):
            return error_reply(400, "malformed_json", "the request body is not valid JSON", details)
        return error_reply(422, "validation_error", "the request does not match the schema", details)

    @app.exception_handler(ValidationException)
    def _unsupported_request(exc: ValidationException) -> Response[str]:
        return error_reply(400, "bad_request", "the request could not be read", _validation_details(exc.errors()))

    @app.exception_handler(ValueError)
    def _unreadable_body(exc: ValueError) -> Response[str]:
        # Reading the body raises ValueError (UnicodeDecodeError among them) for bytes that are not UTF-8,
        # and Powertools raises it for a multipart Content-Type without a boundary. When the request shows
        # one of those, the error is the client's; any other ValueError is a fault and stays a 5xx.
        event = app.current_event
        try:
            event.decoded_body  # noqa: B018 - decoding is the check
        except UnicodeDecodeError:
            return error_reply(400, "malformed_body", "the request body is not UTF-8 text")
        content_type = (event.headers.get("content-type") or "").lower()
        if content_type.startswith("multipart/") and "boundary=" not in content_type:
            message = f"send the body as JSON with Content-Type: application/json (got {content_type})"
            return error_reply(415, "unsupported_media_type", message)
        raise exc

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return error_reply(404, "not_found", "no such route")

    return app
