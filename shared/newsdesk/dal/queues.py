"""SQS: the queues between fan-out and the mailers, and the redrive of their dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from newsdesk.dal.dynamodb import aws_errors, error_code
from newsdesk.errors import ServiceBusy

_SQS_BATCH = 10
_ATTEMPTS = 5
MAX_DELAY_SECONDS = 900


def sqs_client() -> Any:
    return boto3.client("sqs")


class QueuePublisher:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        """Send every body (ten per call), each visible after `delay_seconds` (at most 900, SQS's limit);
        entries SQS did not take are sent again, or this raises."""
        delay = max(0, min(MAX_DELAY_SECONDS, delay_seconds))
        for start in range(0, len(bodies), _SQS_BATCH):
            entries = {str(i): body for i, body in enumerate(bodies[start : start + _SQS_BATCH])}
            for _ in range(_ATTEMPTS):
                with aws_errors():
                    reply = self._client.send_message_batch(
                        QueueUrl=self._url,
                        Entries=[
                            {"Id": key, "MessageBody": body, "DelaySeconds": delay} for key, body in entries.items()
                        ],
                    )
                entries = {failure["Id"]: entries[failure["Id"]] for failure in reply.get("Failed", [])}
                if not entries:
                    break
            else:
                raise ServiceBusy(f"SQS did not accept {len(entries)} messages")


@dataclass(frozen=True)
class DeadLetters:
    queue: str  # the dead-letter queue's name
    arn: str
    waiting: int  # messages in it, visible or being received (approximate, as SQS counts them)


# Another move task is running on the queue (SQS allows one at a time). SQS answers the same for a source
# that is no dead-letter queue, which the template rules out.
_MOVE_TASK_REFUSED = frozenset({"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"})


class DeadLetterQueue:
    """A dead-letter queue, and SQS's own redrive of it (StartMessageMoveTask) to the queue it serves."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def look(self) -> DeadLetters:
        with aws_errors():
            attributes = self._client.get_queue_attributes(
                QueueUrl=self._url,
                AttributeNames=["QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        arn = attributes["QueueArn"]
        waiting = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
        return DeadLetters(queue=arn.rsplit(":", 1)[-1], arn=arn, waiting=waiting)

    def start_redrive(self, arn: str, *, messages_per_second: int) -> bool:
        """Start moving every message back to the queue it came from, at most `messages_per_second`, in
        the background (SQS gives each a new id, receive count and retention period); False when SQS
        refuses because a move task is already running."""
        try:
            with aws_errors():
                self._client.start_message_move_task(SourceArn=arn, MaxNumberOfMessagesPerSecond=messages_per_second)
        except ClientError as exc:
            if error_code(exc) in _MOVE_TASK_REFUSED:
                return False
            raise
        return True


MAX_VISIBILITY_SECONDS = 43200


class ReceivedMessages:
    """Messages a function received from its queue: one may be put back, to reappear after a while."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def postpone(self, receipt_handle: str, seconds: int) -> None:
        """Hide a received message for `seconds` (at most 12 hours, SQS's limit); the function then reports
        it as failed, so the event source leaves it in the queue until then."""
        with aws_errors():
            self._client.change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(MAX_VISIBILITY_SECONDS, seconds)),
            )
