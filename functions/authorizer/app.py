"""AuthorizerFunction: API Gateway's Lambda authorizer for /admin (HTTP API, simple responses).

API Gateway answers 401 itself when the Authorization header is missing; this function says yes only
to `Bearer <token>` with a token that exists and is not revoked, so anything else is a 403.

It reads the event as the dict it is: it sits in front of every editor request, and Powertools' data classes
(every event source's, loaded together) would add to each cold start more than two keys are worth.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import container
from newsdesk.observability import logger
from newsdesk.services.tokens import bearer_token


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Payload 2.0: header names arrive in lower case.
    token = bearer_token((event.get("headers") or {}).get("authorization"))
    allowed = token is not None and container().token_service.is_valid(token)
    if not allowed:
        logger.info("editor request refused", extra={"route": event.get("routeKey")})
    return {"isAuthorized": allowed}
