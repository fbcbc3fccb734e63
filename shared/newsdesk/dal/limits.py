"""Counters of fixed time windows in RateLimitsTable: how many confirmation emails a mailbox, a source
address or the whole stack caused in the current window, how many of the stack's bounced, how many test
emails an editor's token sent.

Each counter is one item, raised by a conditional update that holds only below the limit, so concurrent
requests can never take more than the limit between them; or, for events that may come more than once,
raised in one transaction with a marker of the event, so each event counts once. Items expire by TTL after
their window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from newsdesk.dal.dynamodb import aws_errors, cancellation_reasons, error_code, write_if

_COUNT = {"#count": "count"}
_KEPT_AFTER_WINDOW = timedelta(hours=1)
"""TTL slack: an item is never read once its window is over, so anything short is fine."""


def _key(kind: str, subject: str, window_start: datetime) -> dict[str, Any]:
    return {"pk": {"S": f"{kind}#{subject}#{window_start.strftime('%Y%m%dT%H%M')}"}}


Window = tuple[str, str, datetime]
"""(kind, subject, window start): one counter."""


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

    def count_once(self, kind: str, subject: str, *, window_start: datetime, window: timedelta, event_id: str) -> bool:
        """Count one more for `subject` in the window, for the event `event_id`; False (nothing counted) when
        that event was counted before. The event's marker lives as long as the counter."""
        expires = {"N": str(int((window_start + window + _KEPT_AFTER_WINDOW).timestamp()))}
        writes = [
            {"Put": {"TableName": self._table,
                     "Item": {"pk": {"S": f"{kind}#event#{event_id}"}, "expires_at": expires},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": self._table, "Key": _key(kind, subject, window_start),
                        "UpdateExpression": "SET #count = if_not_exists(#count, :zero) + :one, expires_at = :expires",
                        "ExpressionAttributeNames": _COUNT,
                        "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}, ":expires": expires}}},
        ]  # fmt: skip
        try:
            with aws_errors():
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and cancellation_reasons(exc)[:1] == [
                "ConditionalCheckFailed"
            ]:
                return False
            raise
        return True

    def counts(self, windows: Sequence[Window]) -> list[int]:
        """The count of each of these counters (0 for one never raised), in one BatchGetItem."""
        keys = {_key(*window)["pk"]["S"]: index for index, window in enumerate(windows)}
        found = [0] * len(windows)
        request: dict[str, Any] = {self._table: {"Keys": [{"pk": {"S": pk}} for pk in keys],
                                                 "ProjectionExpression": "pk, #count",
                                                 "ExpressionAttributeNames": _COUNT}}  # fmt: skip
        while request:
            with aws_errors():
                reply = self._client.batch_get_item(RequestItems=request)
            for item in reply["Responses"].get(self._table, []):
                found[keys[item["pk"]["S"]]] = int(item.get("count", {}).get("N", "0"))
            request = reply.get("UnprocessedKeys") or {}
        return found
