"""MailerFunction: sends each batch from the SendQueue, exactly once per recipient, within the SES rate.

A batch that cannot finish now (throttled until out of time, or busy in another mailer) is reported as a
failed item, so SQS delivers it again; what was sent stays recorded and is not sent again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import container
from newsdesk.models.delivery import SendBatch
from newsdesk.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def send_batch(record: SQSRecord, lambda_context: LambdaContext) -> None:
    batch = SendBatch.model_validate_json(record.body)
    container().mailer_service.deliver(batch, seconds_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=send_batch, processor=processor, context=context)
