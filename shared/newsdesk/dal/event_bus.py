"""Amazon EventBridge: Newsdesk's events on the stack's own bus (source `newsdesk`, detail-type the type)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config

from newsdesk.dal.dynamodb import aws_errors
from newsdesk.errors import ServiceBusy
from newsdesk.models.events import EVENT_SOURCE, Event

PUT_EVENTS_LIMIT = 10
"""Entries per PutEvents request (EventBridge's limit)."""
_ATTEMPTS = 5


def events_client() -> Any:
    return boto3.client("events", config=Config(retries={"mode": "standard", "max_attempts": 5}))


class EventBus:
    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def put(self, events: Sequence[Event]) -> None:
        """Put up to ten events on the bus; entries EventBridge did not take are put again, or this raises
        ServiceBusy (the caller retries the whole chunk: an event's id stays the same, so receivers can tell
        a repeat)."""
        assert len(events) <= PUT_EVENTS_LIMIT
        entries = [
            {
                "Source": EVENT_SOURCE,
                "DetailType": event.type.value,
                "Detail": event.body(),
                "Time": event.created_at,
                "EventBusName": self._bus,
            }
            for event in events
        ]
        for _ in range(_ATTEMPTS):
            if not entries:
                return
            with aws_errors():
                reply = self._client.put_events(Entries=entries)
            entries = [entry for entry, result in zip(entries, reply["Entries"], strict=True) if "ErrorCode" in result]
        if entries:
            raise ServiceBusy(f"EventBridge did not take {len(entries)} events")
