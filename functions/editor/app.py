"""EditorFunction: the /admin routes. API Gateway runs the token authorizer before any of them."""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.api.routing import editor_app
from newsdesk.observability import logger, metrics, tracer

app = editor_app()


@startup.loaded
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
# X-Ray records no answer here, whatever the environment says: they hold subscriber lists and exports.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
