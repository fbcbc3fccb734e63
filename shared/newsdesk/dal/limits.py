"""Counters of fixed time windows in RateLimitsTable: how many confirmation emails a mailbox, a source
address or the whole stack caused in the current window.

Each counter is one item, raised by a conditional update that holds only below the limit, so concurrent
requests can never take more than the limit between them. Items expire by TTL after their window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from newsdesk.dal.dynamodb import aws_errors, write_if

_COUNT = {"#count": "count"}
_KEPT_AFTER_WINDOW = timedelta(hours=1)
"""TTL slack: an item is never read once its window is over, so anything short is fine."""


def _key(kind: str, subject: str, window_start: datetime) -> dict[str, Any]:
    return {"pk": {"S": f"{kind}#{subject}#{window_start.strftime('%Y%m%dT%H%M')}"}}


class RateLimitRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def take(self, kind: str, subject: str, *, window_start: datetime, window: timedelta, limit: int) -> bool:
        """Count one more for `subject` in the window starting at `window_start`; False (and nothing
        counted) when the window already holds `limit`."""
        expires = int((window_start + window + _KEPT_AFTER_WINDOW).timestamp())
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(kind, subject, window_start),
            UpdateExpression="SET #count = if_not_exists(#count, :zero) + :one, expires_at = :expires",
            ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
            ExpressionAttributeNames=_COUNT,
            ExpressionAttributeValues={
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":expires": {"N": str(expires)},
            },
        )

    def give_back(self, kind: str, subject: str, *, window_start: datetime) -> None:
        """Undo one `take` whose email another limit then refused."""
        write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(kind, subject, window_start),
            UpdateExpression="SET #count = #count - :one",
            ConditionExpression="#count > :zero",
            ExpressionAttributeNames=_COUNT,
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
        )

    def delete(self, kind: str, subject: str, *, window_start: datetime) -> bool:
        """Remove a counter (its subject was erased); False if there was none."""
        with aws_errors():
            reply = self._client.delete_item(
                TableName=self._table, Key=_key(kind, subject, window_start), ReturnValues="ALL_OLD"
            )
        return "Attributes" in reply
