"""FanoutFunction: starts each newsletter from its publication record (DynamoDB stream) and queues the
recipients of one audience shard per task (SQS FanoutQueue), in batches for the mailers."""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from typing import TYPE_CHECKING, Any

from newsdesk.batches import Record, message_id, process_batch, sequence_number
from newsdesk.dependencies import container
from newsdesk.models.delivery import FanoutTask
from newsdesk.models.subscribers import Frequency
from newsdesk.observability import logger, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


def start_delivery(record: Record) -> None:
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    if "S" not in image.get("pk", {}):
        logger.warning("stream record without a delivery ignored", extra={"event_id": record.get("eventID")})
        return
    frequency = image.get("frequency", {}).get("S", Frequency.INSTANT.value)
    container().fanout_service.start(image["pk"]["S"], Frequency(frequency))


def run_task(record: Record, lambda_context: LambdaContext) -> None:
    task = FanoutTask.model_validate_json(record["body"])
    container().fanout_service.run(
        task,
        task_owner=message_id(record),
        seconds_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
    )


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event["Records"]
    if records and records[0].get("eventSource") == "aws:dynamodb":
        return process_batch(records, start_delivery, item_id=sequence_number)
    return process_batch(records, lambda record: run_task(record, context))
