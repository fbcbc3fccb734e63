"""FanoutFunction: starts each newsletter from its publication record (DynamoDB stream) and queues the
recipients of one audience shard per task (SQS FanoutQueue), in batches for the mailers."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import container
from newsdesk.models.delivery import FanoutTask
from newsdesk.models.subscribers import Frequency
from newsdesk.observability import logger, tracer

stream_processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
task_processor = BatchProcessor(event_type=EventType.SQS)


def start_delivery(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image or "pk" not in image:
        logger.warning("stream record without a delivery ignored", extra={"event_id": record.event_id})
        return
    container().fanout_service.start(str(image["pk"]), Frequency(str(image.get("frequency", Frequency.INSTANT.value))))


def run_task(record: SQSRecord, lambda_context: LambdaContext) -> None:
    task = FanoutTask.model_validate_json(record.body)
    container().fanout_service.run(
        task,
        task_owner=record.message_id,
        seconds_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:dynamodb":
        return process_partial_response(
            event=event, record_handler=start_delivery, processor=stream_processor, context=context
        )
    return process_partial_response(event=event, record_handler=run_task, processor=task_processor, context=context)
