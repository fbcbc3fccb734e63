"""The audit trail in DynamoDB: one partition, newest first by time. An entry is put once, on condition
that nothing holds its key, and never updated (docs/data-model.md, "AuditTable")."""

from __future__ import annotations

from typing import Any

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import aws_errors, query_page, to_attributes
from newsdesk.models.audit import AuditEntry

_PARTITION = "log"
_KEYS = frozenset({"pk", "sk"})


def audit_write(table: str, entry: AuditEntry) -> dict[str, Any]:
    """The entry as an item of a transaction: the change and its record are written together or not at all."""
    item = {**entry.model_dump(mode="json"), "pk": _PARTITION, "sk": f"{iso(entry.at)}#{entry.id}"}
    return {"Put": {"TableName": table, "Item": to_attributes(item), "ConditionExpression": "attribute_not_exists(pk)"}}


class AuditRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @property
    def table(self) -> str:
        return self._table

    def append(self, entry: AuditEntry) -> None:
        with aws_errors():
            self._client.put_item(**audit_write(self._table, entry)["Put"])

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[AuditEntry], str | None]:
        """Newest first: one Query reading at most `limit + 1` entries."""
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :log",
            "ExpressionAttributeValues": {":log": {"S": _PARTITION}},
            "ScanIndexForward": False,
        }
        items, next_cursor = query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=_KEYS,
                                        partition={"pk": {"S": _PARTITION}})  # fmt: skip
        return [AuditEntry.model_validate(item) for item in items], next_cursor
