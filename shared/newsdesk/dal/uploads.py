"""Uploads: the objects in the UploadsBucket, and the UploadsTable's records of what became of them.

Item kinds and keys are described in docs/data-model.md. Every S3 key has a source item holding the
article it feeds and the sequencer of the last event applied to it; an event is applied only after
claiming that item with a larger sequencer, so a redelivered event or an older version arriving late
changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import (
    aws_errors,
    error_code,
    from_attributes,
    query_page,
    to_attributes,
    write_if,
)
from newsdesk.models.uploads import Upload

SEQUENCER_WIDTH = 64
_HEX = re.compile(r"^[0-9A-Fa-f]{1,64}$")
_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "PreconditionFailed", "412", "404"})
_PAGE_KEYS = frozenset({"pk", "entity", "entity_sort"})
UPLOAD_ENTITY = "upload"


def sequencer_key(sequencer: str) -> str | None:
    """S3 sequencers of one key, made comparable as strings (upper-case hex, left-padded to one width,
    as S3 documents); None for something that is not a sequencer."""
    value = sequencer.strip()
    return value.upper().rjust(SEQUENCER_WIDTH, "0") if _HEX.match(value) else None


class SourceClaim(StrEnum):
    CLAIMED = "claimed"
    STALE = "stale"
    """This event, or a later one for the same key, was applied already."""
    BUSY = "busy"
    """Another event for the key is being applied right now."""


@dataclass(frozen=True)
class Source:
    key: str
    article_id: str | None


def _source_key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"source#{key}"}}


def _upload_key(upload_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"upload#{upload_id}"}}


class UploadRepository:
    def __init__(self, client: Any, table_name: str, *, retention_days: int) -> None:
        self._client = client
        self._table = table_name
        self._retention_days = retention_days

    # ------------------------------------------------------------------ sources (one per S3 key)
    def claim(
        self, key: str, sequencer: str, *, now: datetime, lease_until: datetime, article_id: str | None = None
    ) -> tuple[SourceClaim, Source | None]:
        """Take the key for the event with `sequencer` (from `sequencer_key`) until `lease_until`.

        `article_id` is stored the first time only: every later upload of the key finds the same id, so
        a retried first upload cannot create a second article.
        """
        update = "SET s3_key = :key, lease_sequencer = :seq, lease_until = :until"
        values = {
            ":key": {"S": key},
            ":seq": {"S": sequencer},
            ":until": {"S": iso(lease_until)},
            ":now": {"S": iso(now)},
        }
        if article_id is not None:
            update += ", article_id = if_not_exists(article_id, :article)"
            values[":article"] = {"S": article_id}
        try:
            with aws_errors():
                reply = self._client.update_item(
                    TableName=self._table,
                    Key=_source_key(key),
                    UpdateExpression=update,
                    ConditionExpression=(
                        "(attribute_not_exists(applied_sequencer) OR applied_sequencer < :seq) "
                        "AND (attribute_not_exists(lease_until) OR lease_until < :now)"
                    ),
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = from_attributes(exc.response.get("Item") or {})
            stale = str(current.get("applied_sequencer", "")) >= sequencer
            return (SourceClaim.STALE if stale else SourceClaim.BUSY), None
        item = from_attributes(reply["Attributes"])
        return SourceClaim.CLAIMED, Source(key=key, article_id=item.get("article_id"))

    def release(self, key: str, sequencer: str) -> None:
        """Give the key back without applying the event (it failed; its retry may claim it again)."""
        write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_source_key(key),
            UpdateExpression="REMOVE lease_sequencer, lease_until",
            ConditionExpression="lease_sequencer = :seq",
            ExpressionAttributeValues={":seq": {"S": sequencer}},
        )

    def complete(self, key: str, sequencer: str, upload: Upload, *, write_record: bool = True) -> bool:
        """Mark the event applied and (unless an import has been saving it all along) store its record, in
        one transaction. False if the claim was lost (it outlived its lease and another event took the
        key): nothing is written then."""
        writes: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _source_key(key),
                    "UpdateExpression": (
                        "SET applied_sequencer = :seq, version_id = :version, etag = :etag, upload_id = :upload "
                        "REMOVE lease_sequencer, lease_until"
                    ),
                    "ConditionExpression": "lease_sequencer = :seq",
                    "ExpressionAttributeValues": {
                        ":seq": {"S": sequencer},
                        ":version": {"S": upload.version_id or ""},
                        ":etag": {"S": upload.etag or ""},
                        ":upload": {"S": upload.id},
                    },
                }
            }
        ]
        if write_record:
            writes.append({"Put": {"TableName": self._table, "Item": _upload_item(upload, self._retention_days)}})
        try:
            with aws_errors():
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            return False
        return True

    # ------------------------------------------------------------------ upload records
    def get(self, upload_id: str) -> Upload | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_upload_key(upload_id), ConsistentRead=True)
        item = reply.get("Item")
        return Upload.model_validate(from_attributes(item)) if item else None

    def create(self, upload: Upload) -> bool:
        """Store a new record; False if one with this id exists (an earlier attempt at the same event)."""
        return write_if(
            self._client.put_item,
            TableName=self._table,
            Item=_upload_item(upload, self._retention_days),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def save_progress(self, upload: Upload, *, expected_next_row: int) -> bool:
        """Store an import's progress, if nobody else moved it on since it was at `expected_next_row`."""
        return write_if(
            self._client.put_item,
            TableName=self._table,
            Item=_upload_item(upload, self._retention_days),
            ConditionExpression="next_row = :expected",
            ExpressionAttributeValues={":expected": {"N": str(expected_next_row)}},
        )

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[Upload], str | None]:
        """Newest first. Asking for limit + 1 tells whether there is a next page; a page reads at most
        limit + 1 items, however many uploads there are."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-entity",
            "KeyConditionExpression": "entity = :entity",
            "ExpressionAttributeValues": {":entity": {"S": UPLOAD_ENTITY}},
            "ScanIndexForward": False,
        }
        items, next_cursor = query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=_PAGE_KEYS)
        return [Upload.model_validate(item) for item in items], next_cursor


def _upload_item(upload: Upload, retention_days: int) -> dict[str, Any]:
    item = upload.model_dump(mode="json", exclude_none=True)
    item.update(
        pk=f"upload#{upload.id}",
        entity=UPLOAD_ENTITY,
        entity_sort=f"{iso(upload.received_at)}#{upload.id}",
        # DynamoDB's TTL deletes the record once the retention has passed.
        expires_at=int((upload.received_at + timedelta(days=retention_days)).timestamp()),
    )
    return to_attributes(item)


# ---------------------------------------------------------------------- the bucket


def s3_client() -> Any:
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@dataclass
class StoredObject:
    size: int
    body: IO[bytes]
    """Streamed: read it once, and close it."""


class UploadObjects:
    """Reads uploaded objects, one exact version at a time. This code never writes to the bucket, which is
    what keeps the upload function from ever triggering itself."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str) -> StoredObject | None:
        """The version the event announced (without versioning: the object, if it still has that ETag);
        None when that version is gone or was overwritten since."""
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        elif etag:
            request["IfMatch"] = f'"{etag}"'
        try:
            with aws_errors():
                reply = self._client.get_object(**request)
        except ClientError as exc:
            if error_code(exc) in _GONE_CODES:
                return None
            raise
        return StoredObject(size=int(reply["ContentLength"]), body=reply["Body"])
