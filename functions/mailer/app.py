"""MailerFunction: sends each batch from the SendQueue, exactly once per recipient, within the SES rate.

A batch that cannot finish now (throttled until out of time, or busy in another mailer) is reported as a
failed item, so SQS delivers it again; what was sent stays recorded and is not sent again.
"""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from typing import TYPE_CHECKING, Any

from newsdesk.batches import Record, process_batch
from newsdesk.dependencies import container
from newsdesk.models.delivery import SendBatch
from newsdesk.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


def send_batch(record: Record, lambda_context: LambdaContext) -> None:
    batch = SendBatch.model_validate_json(record["body"])
    container().mailer_service.deliver(batch, seconds_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000)


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_batch(event["Records"], lambda record: send_batch(record, context))
