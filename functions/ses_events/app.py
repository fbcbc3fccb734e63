"""SesEventsFunction: SES's events about every email (through EventBridge and the SesEventsQueue, in
batches) settle the delivery ledger and suppress addresses that bounced for good or complained."""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

import json
from typing import TYPE_CHECKING, Any

from newsdesk.batches import Record, message_id, process_batch
from newsdesk.dependencies import container
from newsdesk.observability import logger, tracer
from newsdesk.services.ses_feedback import SesEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


def handle_event(record: Record) -> None:
    try:
        envelope = json.loads(record["body"])
    except json.JSONDecodeError:
        logger.warning("ignored a message that is not JSON", extra={"message_id": message_id(record)})
        return
    detail = envelope.get("detail") if isinstance(envelope, dict) else None
    if not isinstance(detail, dict):
        logger.warning("ignored a message that is no SES event", extra={"message_id": message_id(record)})
        return
    container().ses_feedback.handle(SesEvent(detail))


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    try:
        return process_batch(event["Records"], handle_event)
    finally:
        # The batch's opens and clicks, added to each delivery's counts in one write (not one per event).
        container().ses_feedback.flush()
