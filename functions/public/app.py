"""PublicFunction: published articles, the feed and the API documentation, for anyone."""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.api.routing import public_app
from newsdesk.observability import logger, metrics, tracer

app = public_app()


@startup.loaded
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
# X-Ray records no response body here whatever the environment says (the template's Globals say it too).
@tracer.capture_lambda_handler(capture_response=False)
# No public route adds a metric, but the OpenAPI route imports the editor's routes, which do: the check
# in tests/integration/test_metrics_flushed.py cannot tell them apart, and flushing nothing costs nothing.
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
