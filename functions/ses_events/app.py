"""SesEventsFunction: SES's events about every email (through EventBridge and the SesEventsQueue, in
batches) settle the delivery ledger and suppress addresses that bounced for good or complained."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import container
from newsdesk.observability import logger, tracer
from newsdesk.services.ses_feedback import SesEvent

processor = BatchProcessor(event_type=EventType.SQS)


def handle_event(record: SQSRecord) -> None:
    try:
        envelope = json.loads(record.body)
    except json.JSONDecodeError:
        logger.warning("ignored a message that is not JSON", extra={"message_id": record.message_id})
        return
    detail = envelope.get("detail") if isinstance(envelope, dict) else None
    if not isinstance(detail, dict):
        logger.warning("ignored a message that is no SES event", extra={"message_id": record.message_id})
        return
    container().ses_feedback.handle(SesEvent(detail))


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    try:
        return process_partial_response(event=event, record_handler=handle_event, processor=processor, context=context)
    finally:
        # The batch's opens and clicks, added to each delivery's counts in one write (not one per event).
        container().ses_feedback.flush()
