"""SQS's StartMessageMoveTask (dead-letter queue redrive) for the embedded moto, which lacks it (5.2.5).

Housekeeping redrives dead letters with it, so without this the local stack and the tests could not run
housekeeping. It follows the API reference: the source must be some queue's dead-letter queue; without a
DestinationArn the messages go back to the queue they came from; each moved message is a new message
(new id, receive count and retention period). The one difference: the task completes before the call
returns, rather than in the background at MaxNumberOfMessagesPerSecond. Nothing is installed once moto
has the action itself.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs.exceptions import InvalidParameterValue, SQSException
from moto.sqs.models import Queue, SQSBackend
from moto.sqs.responses import SQSResponse

_MOVE_BATCH = 10
_MAX_RATE = 500


def _queue(backend: SQSBackend, arn: str) -> Queue:
    for queue in backend.queues.values():
        if queue.queue_arn == arn:
            return queue
    raise SQSException(
        "ResourceNotFoundException",
        f"The resource that you specified for the SourceArn or DestinationArn parameter doesn't exist: {arn}",
    )


def _move_messages(backend: SQSBackend, source_arn: str, destination_arn: str | None, rate: Any) -> int:
    """Move every visible message of a dead-letter queue as StartMessageMoveTask does; how many moved."""
    source = _queue(backend, source_arn)
    origins = [queue for queue in backend.queues.values() if queue.dead_letter_queue is source]
    if not origins:
        raise SQSException("UnsupportedOperation", "the source queue is no queue's dead-letter queue")
    if rate is not None and not 1 <= int(rate) <= _MAX_RATE:
        raise InvalidParameterValue(f"MaxNumberOfMessagesPerSecond must be between 1 and {_MAX_RATE}.")
    if destination_arn:
        destination = _queue(backend, destination_arn)
    elif len(origins) == 1:
        destination = origins[0]
    else:
        # SQS remembers each message's source queue; this emulation does not.
        raise SQSException(
            "UnsupportedOperation", "locally, a DestinationArn is needed for a queue with several sources"
        )
    moved = 0
    while messages := backend.receive_message(source.name, _MOVE_BATCH, 0, 30, message_attribute_names=["All"]):
        for message in messages:
            backend.send_message(destination.name, message.body, message_attributes=message.message_attributes)
            backend.delete_message(source.name, message.receipt_handle or "")
            moved += 1
    return moved


def _start_message_move_task(self: SQSResponse) -> ActionResult:
    source_arn = self._get_param("SourceArn")
    _move_messages(
        self.sqs_backend, source_arn, self._get_param("DestinationArn"), self._get_param("MaxNumberOfMessagesPerSecond")
    )
    handle = base64.b64encode(json.dumps({"sourceArn": source_arn, "local": True}).encode()).decode()
    return ActionResult({"TaskHandle": handle})


def install() -> None:
    """Teach moto's SQS StartMessageMoveTask, unless it already knows it (in-process: tests and the runner)."""
    if not hasattr(SQSResponse, "start_message_move_task"):
        SQSResponse.start_message_move_task = _start_message_move_task  # type: ignore[attr-defined]
