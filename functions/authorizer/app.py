"""AuthorizerFunction: API Gateway's Lambda authorizer for /admin (HTTP API, simple responses).

API Gateway answers 401 itself when the Authorization header is missing; this function says yes only
to `Bearer <token>` with a token that exists and is not revoked, so anything else is a 403.
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
    allowed = token is not None and container().token_service.is_valid(token)
    if not allowed:
        logger.info("editor request refused", extra={"route": event.route_key})
    return APIGatewayAuthorizerResponseV2(authorize=allowed).asdict()
