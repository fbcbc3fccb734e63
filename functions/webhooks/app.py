"""WebhooksFunction: events from the stack's bus (WebhookEventsQueue) are offered to the endpoints that asked
for them; each delivery attempt (WebhookDeliveryQueue) is one signed POST (newsdesk.services.webhooks)."""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from newsdesk.dependencies import container
from newsdesk.models.events import EVENT_SOURCE, Event
from newsdesk.models.webhooks import DeliveryTask
from newsdesk.observability import logger, metrics, tracer
from newsdesk.services.webhooks import ReceivedTask
from newsdesk.settings import WebhookSettings

if TYPE_CHECKING:
    # Types only: importing Powertools' batch package loads its processors (asyncio among them), which this
    # function, answering its batch item failures itself, never uses.
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


def bus_event(record: dict[str, Any]) -> Event | None:
    """The Newsdesk event in an EventBridge envelope; None (logged) for anything else."""
    try:
        envelope = json.loads(record.get("body") or "")
        if envelope.get("source") != EVENT_SOURCE:
            raise ValueError("not a Newsdesk event")
        return Event.model_validate(envelope["detail"])
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
        logger.warning("ignored a message that is no Newsdesk event", extra={"message_id": record.get("messageId")})
        return None


def delivery_task(record: dict[str, Any]) -> ReceivedTask | None:
    try:
        return ReceivedTask(DeliveryTask.model_validate_json(record.get("body") or ""), str(record["receiptHandle"]))
    except (ValidationError, KeyError):
        logger.warning("ignored a message that is no delivery task", extra={"message_id": record.get("messageId")})
        return None


def _queue_name(url_or_arn: str) -> str:
    return url_or_arn.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    delivery_queue = container().settings(WebhookSettings).webhook_delivery_queue_url
    if _queue_name(str(records[0].get("eventSourceARN", ""))) == _queue_name(delivery_queue):
        received = {id(task): (task, record) for record in records if (task := delivery_task(record)) is not None}
        later = container().webhook_sender.run([task for task, _ in received.values()])
        failed = [received[id(task)][1]["messageId"] for task in later]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
    # Events from the bus: a failure is the whole batch's (retried as one; dispatch is safe to repeat).
    container().webhook_dispatch.dispatch([found for record in records if (found := bus_event(record)) is not None])
    return {"batchItemFailures": []}
