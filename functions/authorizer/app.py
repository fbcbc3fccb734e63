"""AuthorizerFunction: API Gateway's Lambda authorizer for /admin (HTTP API, simple responses).

API Gateway answers 401 itself when the Authorization header is missing; this function says yes only
to `Bearer <token>` with a token that exists and is not revoked (and whose person is not disabled), so
anything else is a 403. With a yes it names who the token acts for and in which role (`context`, which
API Gateway hands the editor function as `requestContext.authorizer.lambda`): each route checks the role.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import container
from newsdesk.observability import logger
from newsdesk.services.tokens import bearer_token


@logger.inject_lambda_context
@event_source(data_class=APIGatewayAuthorizerEventV2)
def lambda_handler(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    token = bearer_token(event.headers.get("authorization"))
    actor = container().token_service.authorize(token) if token is not None else None
    if actor is None:
        logger.info("editor request refused", extra={"route": event.route_key})
        return APIGatewayAuthorizerResponseV2(authorize=False).asdict()
    passed_on = {"actor": actor.id, "role": actor.role.value, "token_id": actor.token_id or ""}
    return APIGatewayAuthorizerResponseV2(authorize=True, context=passed_on).asdict()
