"""Editor API tokens in DynamoDB, stored only as SHA-256 hashes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from newsdesk.dal.dynamodb import aws_errors, error_code, from_attributes, to_attributes
from newsdesk.errors import NotFound
from newsdesk.models.tokens import StoredToken


class TokenRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, token_hash: str) -> StoredToken | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key={"token_hash": {"S": token_hash}})
        item = reply.get("Item")
        return StoredToken.model_validate(from_attributes(item)) if item else None

    def put(self, token: StoredToken) -> None:
        with aws_errors():
            self._client.put_item(
                TableName=self._table,
                Item=to_attributes(token.model_dump(mode="json")),
                ConditionExpression="attribute_not_exists(token_hash)",
            )

    def all(self) -> list[StoredToken]:
        """Every token (the table holds a handful; only the command-line tool lists them)."""
        tokens: list[StoredToken] = []
        for page in self._client.get_paginator("scan").paginate(TableName=self._table):
            tokens.extend(StoredToken.model_validate(from_attributes(item)) for item in page["Items"])
        return tokens

    def revoke(self, token_hash: str) -> None:
        try:
            with aws_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key={"token_hash": {"S": token_hash}},
                    UpdateExpression="SET revoked = :true",
                    ConditionExpression="attribute_exists(token_hash)",
                    ExpressionAttributeValues={":true": {"BOOL": True}},
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound("no such token") from exc
            raise
