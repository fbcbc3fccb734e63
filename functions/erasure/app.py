"""ErasureFunction: continues, a bounded step per message (ErasureQueue), the erasures and deleted topics'
clean-ups that one editor request could not finish (newsdesk.services.erasure)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import container
from newsdesk.models.erasures import ErasureTask
from newsdesk.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def run_step(record: SQSRecord) -> None:
    task = ErasureTask.model_validate_json(record.body)
    if task.kind == "person":
        container().erasure_service.resume(task.id)
    else:
        container().topic_cleanup.resume(task.id)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=run_step, processor=processor, context=context)
