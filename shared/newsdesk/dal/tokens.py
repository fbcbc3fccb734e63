"""Editor API tokens in DynamoDB, stored only as SHA-256 hashes. A person's tokens are found through the
`by-person` index (`person_id`, `token_id`); tokens made before people carry no `person_id`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from newsdesk.dal.audit import audit_write
from newsdesk.dal.dynamodb import aws_errors, error_code, from_attributes, query_page, to_attributes
from newsdesk.errors import NotFound
from newsdesk.models.audit import AuditEntry
from newsdesk.models.tokens import StoredToken

_PERSON_KEYS = frozenset({"token_hash", "person_id", "token_id"})


class TokenRepository:
    def __init__(self, client: Any, table_name: str, *, audit_table: str = "") -> None:
        self._client = client
        self._table = table_name
        self._audit_table = audit_table

    def get(self, token_hash: str) -> StoredToken | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key={"token_hash": {"S": token_hash}})
        item = reply.get("Item")
        return StoredToken.model_validate(from_attributes(item)) if item else None

    def put(self, token: StoredToken, *, audit: AuditEntry | None = None) -> None:
        put = {
            "TableName": self._table,
            "Item": to_attributes(token.model_dump(mode="json")),
            "ConditionExpression": "attribute_not_exists(token_hash)",
        }
        with aws_errors():
            if audit is None:
                self._client.put_item(**put)
            else:
                self._client.transact_write_items(TransactItems=[{"Put": put}, self._audit(audit)])

    def all(self) -> list[StoredToken]:
        """Every token (the table holds a handful; only the command-line tool lists them)."""
        tokens: list[StoredToken] = []
        for page in self._client.get_paginator("scan").paginate(TableName=self._table):
            tokens.extend(StoredToken.model_validate(from_attributes(item)) for item in page["Items"])
        return tokens

    def of_person(self, person_id: str, *, limit: int, cursor: str | None) -> tuple[list[StoredToken], str | None]:
        """One page of a person's tokens: one Query of `by-person`, at most `limit + 1` items."""
        request = {
            "TableName": self._table,
            "IndexName": "by-person",
            "KeyConditionExpression": "person_id = :person",
            "ExpressionAttributeValues": {":person": {"S": person_id}},
        }
        items, next_cursor = query_page(self._client.query, request, limit=limit, cursor=cursor,
                                        key_names=_PERSON_KEYS, partition={"person_id": {"S": person_id}})  # fmt: skip
        return [StoredToken.model_validate(item) for item in items], next_cursor

    def find(self, person_id: str, token_id: str) -> StoredToken | None:
        """The person's token with this short id: one Query of at most a few items (ids are 8 hex digits)."""
        with aws_errors():
            reply = self._client.query(
                TableName=self._table,
                IndexName="by-person",
                KeyConditionExpression="person_id = :person AND token_id = :id",
                ExpressionAttributeValues={":person": {"S": person_id}, ":id": {"S": token_id}},
                Limit=2,
            )
        items = reply.get("Items", [])
        return StoredToken.model_validate(from_attributes(items[0])) if len(items) == 1 else None

    def revoke(self, token_hash: str, *, audit: AuditEntry | None = None) -> None:
        update = {
            "TableName": self._table,
            "Key": {"token_hash": {"S": token_hash}},
            "UpdateExpression": "SET revoked = :true",
            "ConditionExpression": "attribute_exists(token_hash)",
            "ExpressionAttributeValues": {":true": {"BOOL": True}},
        }
        try:
            with aws_errors():
                if audit is None:
                    self._client.update_item(**update)
                else:
                    self._client.transact_write_items(TransactItems=[{"Update": update}, self._audit(audit)])
        except ClientError as exc:
            if error_code(exc) in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise NotFound("no such token") from exc
            raise

    def _audit(self, entry: AuditEntry) -> dict[str, Any]:
        assert self._audit_table, "this repository was built without the audit table"
        return audit_write(self._audit_table, entry)
