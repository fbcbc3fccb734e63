"""Conditional GETs for the public reads: ETag and Last-Modified on every answer, 304 when the client (or a
CDN in front) already holds the same representation."""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from aws_lambda_powertools.event_handler import Response

# Browsers and a CDN keep a copy for a minute, may serve it a minute longer while they revalidate, and a day
# longer when the API fails; revalidating costs the client a 304 without a body.
CDN_CACHE = "public, max-age=60, stale-while-revalidate=60, stale-if-error=86400"
FEED_CACHE = "public, max-age=300, stale-while-revalidate=300, stale-if-error=86400"


class NotModified(Exception):
    """The client's copy is current: answered as a 304 with the validators, without a body."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("not modified")
        self.headers = headers


def etag_of(representation: str | bytes) -> str:
    data = representation.encode("utf-8") if isinstance(representation, str) else representation
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def validators(
    request_headers: dict[str, Any], representation: str, last_modified: datetime | None, *, cache_control: str
) -> dict[str, str]:
    """The answer's caching headers; raises NotModified when the request's conditions show the client's
    copy is current (If-None-Match first; If-Modified-Since only without it, as RFC 9110 13.1.3 says)."""
    headers = {"ETag": etag_of(representation), "Cache-Control": cache_control}
    if last_modified is not None:
        headers["Last-Modified"] = format_datetime(last_modified.replace(microsecond=0), usegmt=True)
    if _not_modified(request_headers, headers["ETag"], last_modified):
        raise NotModified(headers)
    return headers


def _not_modified(request_headers: dict[str, Any], etag: str, last_modified: datetime | None) -> bool:
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        # Weak comparison (RFC 9110 8.8.3.2): W/"x" matches "x".
        tags = {tag.strip().removeprefix("W/") for tag in str(if_none_match).split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request_headers.get("if-modified-since")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(str(if_modified_since))
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as RFC 9110 says
    if since.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= since


def not_modified_reply(exc: NotModified) -> Response[str]:
    return Response(304, headers=exc.headers)
