"""Revisions and preview links in DynamoDB (docs/data-model.md, "RevisionsTable"): one partition per article,
`revision#<number>` items (written in the article's own transaction, with the one that falls out of the
retention deleted there too) and `preview#<id>` items (the share links' records, removed by TTL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from newsdesk.dal.dynamodb import aws_errors, from_attributes, query_page, to_attributes, write_if
from newsdesk.models.revisions import Revision, RevisionSummary, StoredPreview

_KEYS = frozenset({"pk", "sk"})
PREVIEW_KEPT_AFTER_EXPIRY = timedelta(days=1)
"""A preview's record outlives its link by a day (then TTL removes it): an expired link still says so."""


def _partition(article_id: str) -> str:
    return f"article#{article_id}"


def _revision_key(article_id: str, number: int) -> dict[str, Any]:
    return {"pk": {"S": _partition(article_id)}, "sk": {"S": f"revision#{number:08d}"}}


def _preview_key(article_id: str, preview_id: str) -> dict[str, Any]:
    return {"pk": {"S": _partition(article_id)}, "sk": {"S": f"preview#{preview_id}"}}


def revision_writes(table: str, revision: Revision, *, kept: int) -> list[dict[str, Any]]:
    """The revision's items of its article's transaction: the revision, and the deletion of the one that
    falls out of the `kept` newest."""
    key = _revision_key(revision.article_id, revision.number)
    writes: list[dict[str, Any]] = [
        {"Put": {"TableName": table, "Item": {**to_attributes(revision.model_dump(mode="json")), **key}}}
    ]
    if revision.number > kept:
        writes.append(
            {"Delete": {"TableName": table, "Key": _revision_key(revision.article_id, revision.number - kept)}}
        )
    return writes


class RevisionRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, article_id: str, number: int) -> Revision | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_revision_key(article_id, number))
        item = reply.get("Item")
        return Revision.model_validate(from_attributes(item)) if item else None

    def page(self, article_id: str, *, limit: int, cursor: str | None) -> tuple[list[RevisionSummary], str | None]:
        """Newest first: one Query of the article's partition, at most `limit + 1` revisions."""
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :article AND begins_with(sk, :revision)",
            "ExpressionAttributeValues": {":article": {"S": _partition(article_id)}, ":revision": {"S": "revision#"}},
            "ScanIndexForward": False,
        }
        items, next_cursor = query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=_KEYS,
                                        partition={"pk": {"S": _partition(article_id)}})  # fmt: skip
        return [RevisionSummary.model_validate(item) for item in items], next_cursor

    def forget(self, article_id: str) -> int:
        """Delete every revision and preview record of a deleted article, 25 at a time (the partition holds at
        most the kept revisions and the previews not yet expired); returns how many."""
        deleted = 0
        while True:
            with aws_errors():
                reply = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression="pk = :article",
                    ExpressionAttributeValues={":article": {"S": _partition(article_id)}},
                    ProjectionExpression="pk, sk",
                    Limit=25,
                )
            keys = reply.get("Items", [])
            if not keys:
                return deleted
            requests = [{"DeleteRequest": {"Key": key}} for key in keys]
            while requests:
                with aws_errors():
                    answer = self._client.batch_write_item(RequestItems={self._table: requests})
                requests = answer.get("UnprocessedItems", {}).get(self._table, [])
            deleted += len(keys)


class PreviewRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, preview: StoredPreview) -> None:
        item = {
            **preview.model_dump(mode="json"),
            "delete_at": int((preview.expires_at + PREVIEW_KEPT_AFTER_EXPIRY).timestamp()),
        }
        with aws_errors():
            self._client.put_item(
                TableName=self._table,
                Item={**to_attributes(item), **_preview_key(preview.article_id, preview.id)},
                ConditionExpression="attribute_not_exists(pk)",
            )

    def get(self, article_id: str, preview_id: str) -> StoredPreview | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_preview_key(article_id, preview_id))
        item = reply.get("Item")
        return StoredPreview.model_validate(from_attributes(item)) if item else None

    def revoke(self, article_id: str, preview_id: str, at: datetime) -> bool:
        """Mark the link revoked (the first revocation's time stays); False when there is no such link."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_preview_key(article_id, preview_id),
            UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":at": {"S": at.isoformat()}},
        )

    def page(self, article_id: str, *, limit: int, cursor: str | None) -> tuple[list[StoredPreview], str | None]:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :article AND begins_with(sk, :preview)",
            "ExpressionAttributeValues": {":article": {"S": _partition(article_id)}, ":preview": {"S": "preview#"}},
        }
        items, next_cursor = query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=_KEYS,
                                        partition={"pk": {"S": _partition(article_id)}})  # fmt: skip
        return [StoredPreview.model_validate(item) for item in items], next_cursor
