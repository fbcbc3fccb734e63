"""SQS: the queues between fan-out and the mailers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import boto3

from newsdesk.dal.dynamodb import aws_errors
from newsdesk.errors import ServiceBusy

_SQS_BATCH = 10
_ATTEMPTS = 5
MAX_DELAY_SECONDS = 900


@lru_cache(maxsize=1)
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


def move_messages(client: Any, *, from_url: str, to_url: str, limit: int = 10_000) -> int:
    """Move up to `limit` messages from a dead-letter queue back to its source queue (a redrive)."""
    moved = 0
    while moved < limit:
        with aws_errors():
            messages = client.receive_message(QueueUrl=from_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return moved
        QueuePublisher(client, to_url).send([message["Body"] for message in messages])
        with aws_errors():
            client.delete_message_batch(
                QueueUrl=from_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        moved += len(messages)
    return moved
