"""Optimistic concurrency for the editor's versioned resources (articles, webhooks): a resource's version
as its `ETag`, and the `If-Match` header naming the version an edit was made to.

Kept apart from the routers that use it, so that one router importing it loads none of the others."""

from __future__ import annotations

from typing import Annotated, Protocol, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header

IfMatch = Annotated[
    str | None,
    Header(max_length=200, description="The `ETag` of the version you edited; a stale one gets 412."),
]


class HasVersion(Protocol):
    @property
    def version(self) -> int: ...


Versioned = TypeVar("Versioned", bound=HasVersion)


def parse_if_match(value: str | None) -> int | None:
    """`"7"`, `W/"7"` and `7` name version 7; `*` or no header match any. Anything else matches nothing."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    return int(text) if text.isdigit() and len(text) < 10 else -1


def with_etag(resource: Versioned, status: int = 200) -> Response[Versioned]:
    """A versioned resource with its version as the `ETag`, which `If-Match` names."""
    return Response(status, content_types.APPLICATION_JSON, resource, headers={"ETag": f'"{resource.version}"'})
