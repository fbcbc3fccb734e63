"""How many housekeeping runs in a row redrove each dead-letter queue: one item per queue in
PublicationsTable (`redrive#<queue name>`, see docs/data-model.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import aws_errors, from_attributes

_SK = "#rounds"


def _key(queue: str) -> dict[str, Any]:
    return {"pk": {"S": f"redrive#{queue}"}, "sk": {"S": _SK}}


class RedriveRounds:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def count(self, queue: str) -> int:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(queue), ConsistentRead=True)
        return int(from_attributes(reply.get("Item", {})).get("rounds", 0))

    def add(self, queue: str, at: datetime) -> int:
        """Count one more redrive of `queue`; the count after it."""
        with aws_errors():
            reply = self._client.update_item(
                TableName=self._table,
                Key=_key(queue),
                UpdateExpression="ADD rounds :one SET last_redrive_at = :at",
                ExpressionAttributeValues={":one": {"N": "1"}, ":at": {"S": iso(at)}},
                ReturnValues="UPDATED_NEW",
            )
        return int(reply["Attributes"]["rounds"]["N"])

    def clear(self, queue: str) -> None:
        """The queue was found empty: whatever was redriven went through, so the count starts again."""
        with aws_errors():
            self._client.update_item(
                TableName=self._table,
                Key=_key(queue),
                UpdateExpression="SET rounds = :zero",
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )
