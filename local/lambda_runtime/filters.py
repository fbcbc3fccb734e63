"""Lambda's event filtering (FilterCriteria of SQS and stream sources), with moto's EventBridge matcher:
Lambda filters use EventBridge's pattern syntax."""

from __future__ import annotations

import json
from typing import Any, cast

from moto.events.models import EventPattern


class EventFilters:
    """The patterns of an event source's FilterCriteria; a record passes when there is none or any matches."""

    def __init__(self, criteria: dict[str, Any] | None) -> None:
        self._patterns = [
            EventPattern.load(item["Pattern"] if isinstance(item["Pattern"], str) else json.dumps(item["Pattern"]))
            for item in (criteria or {}).get("Filters") or []
        ]

    def matches(self, record: dict[str, Any]) -> bool:
        return not self._patterns or any(pattern.matches_event(cast(Any, record)) for pattern in self._patterns)

    def matches_sqs(self, record: dict[str, Any]) -> bool:
        """Lambda matches SQS filters on the body parsed as JSON when it is JSON, otherwise as plain text."""
        try:
            view = record | {"body": json.loads(record["body"])}
        except ValueError:
            view = record
        return self.matches(view)
