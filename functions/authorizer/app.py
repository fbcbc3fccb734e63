"""AuthorizerFunction: API Gateway's Lambda authorizer for /admin (HTTP API, simple responses).

API Gateway answers 401 itself when the Authorization header is missing; this function says yes only
to `Bearer <token>` with a token that exists and is not revoked (and whose person is not disabled), so
anything else is a 403. With a yes it names who the token acts for and in which role (`context`, which
API Gateway hands the editor function as `requestContext.authorizer.lambda`): each route checks the role.

It reads the event as the dict it is: it sits in front of every editor request, and Powertools' data classes
(every event source's, loaded together) would add to each cold start more than two keys are worth.
"""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import container
from newsdesk.observability import logger
from newsdesk.services.tokens import bearer_token


@startup.loaded
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Payload 2.0: header names arrive in lower case.
    token = bearer_token((event.get("headers") or {}).get("authorization"))
    actor = container().token_service.authorize(token) if token is not None else None
    if actor is None:
        logger.info("editor request refused", extra={"route": event.get("routeKey")})
        return {"isAuthorized": False}
    return {
        "isAuthorized": True,
        "context": {"actor": actor.id, "role": actor.role.value, "token_id": actor.token_id or ""},
    }
