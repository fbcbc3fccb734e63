"""Loads the sample events in events/ (the ones `sam local invoke` takes) and fills in a request."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS = Path(__file__).resolve().parents[2] / "events"

ADMIN_CONTEXT = {"actor": "token:5f2c9a1e", "role": "admin", "token_id": "5f2c9a1e"}
"""What the authorizer passes on for a token made before people (an admin's), as in the editor samples."""


@cache
def _sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{name}.json").read_text()))


def sample_event(
    name: str,
    *,
    path: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    actor: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The sample event `name`, with path parameters, query, JSON body or headers replaced, and for an editor
    route `actor`: who the authorizer said the token is (`actor`, `role`, `token_id`)."""
    event = copy.deepcopy(_sample(name))
    if actor is not None:
        event["requestContext"]["authorizer"] = {"lambda": dict(actor)}
    if path is not None:
        event["pathParameters"] = path
        raw_path = event["routeKey"].split(" ", 1)[1]
        for key, value in path.items():
            raw_path = raw_path.replace(f"{{{key}}}", value)
        event["rawPath"] = event["requestContext"]["http"]["path"] = raw_path
    if query is not None:
        event["rawQueryString"] = urlencode(query)
        event["queryStringParameters"] = query
    if body is not None or raw_body is not None:
        event["body"] = raw_body if raw_body is not None else json.dumps(body)
        event["isBase64Encoded"] = False
    if "headers" in event:  # HTTP events only
        event["headers"].update({key.lower(): value for key, value in (headers or {}).items()})
    return event


def ses_event(detail: dict[str, Any]) -> dict[str, Any]:
    """An SES event (`detail`, what SES publishes about one email) as SesEventsFunction gets it: in the body
    of an SQS record, inside EventBridge's envelope (the sample events/ses-bounce.json, its event replaced)."""
    event = sample_event("ses-bounce")
    envelope = json.loads(event["Records"][0]["body"])
    envelope["detail"] = detail
    event["Records"][0]["body"] = json.dumps(envelope)
    return event
