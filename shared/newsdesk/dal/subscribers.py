"""Subscribers in DynamoDB, keyed by address. Every state change is a conditional write, so racing
requests (a confirm and an unsubscribe, fifty sign-ups at once) can never resurrect or duplicate anyone."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import (
    aws_errors,
    decode_cursor,
    encode_cursor,
    error_code,
    from_attributes,
    to_attributes,
    write_if,
)
from newsdesk.models.subscribers import Frequency, Subscriber, SubscriberStatus

FANOUT_SHARDS = 8
"""Confirmed subscribers are spread over this many `audience` partitions, which fan-out reads in parallel."""

_STATUS = {"#status": "status"}
PENDING_DAYS = 7


def _expiry(moment: datetime) -> int:
    return int((moment + timedelta(days=PENDING_DAYS)).timestamp())


def audience_key(frequency: Frequency, shard: int) -> str:
    return f"{frequency.value}#{shard}"


def audience(frequency: Frequency, email: str) -> str:
    return audience_key(frequency, zlib.crc32(email.encode()) % FANOUT_SHARDS)


def _key(email: str) -> dict[str, Any]:
    return {"email": {"S": email}}


def _stored(subscriber: Subscriber) -> dict[str, Any]:
    # Times in the one format the conditional updates compare with (clock.iso): a claim written here
    # must be found equal by `release_confirmation`, and ordered right by the resend guard.
    item = subscriber.model_dump(mode="json", exclude_none=True)
    item.update({key: iso(value) for key, value in subscriber if isinstance(value, datetime)})
    return item


class ImportResult(StrEnum):
    ADDED = "added"
    """New on the list (or added by this very row of this import on an earlier attempt)."""
    KNOWN = "known"
    """Already on the list, in whatever status: left exactly as it is."""
    REPEATED = "repeated"
    """An earlier row of the same import added it."""


class SubscriberRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ------------------------------------------------------------------ reads
    def get(self, email: str) -> Subscriber | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(email), ConsistentRead=True)
        item = reply.get("Item")
        return Subscriber.model_validate(from_attributes(item)) if item else None

    def page(
        self, *, status: SubscriberStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Subscriber], str | None]:
        """One page, in sign-up order for a status; without a status, in table order."""
        request: dict[str, Any] = {"TableName": self._table, "Limit": limit}
        filters = {"status": status.value if status else None}
        if status is None:
            key_names = frozenset({"email"})
            call = self._client.scan
        else:
            key_names = frozenset({"email", "status", "status_sort"})
            call = self._client.query
            request.update(
                IndexName="by-status",
                KeyConditionExpression="#status = :status",
                ExpressionAttributeNames=_STATUS,
                ExpressionAttributeValues={":status": {"S": status.value}},
            )
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor, key_names, filters=filters)
        with aws_errors():
            reply = call(**request)
        last = reply.get("LastEvaluatedKey")
        items = [Subscriber.model_validate(from_attributes(item)) for item in reply.get("Items", [])]
        return items, encode_cursor(last, filters=filters) if last else None

    def statuses(self, emails: list[str]) -> dict[str, SubscriberStatus]:
        """The current status of each known address among `emails` (strongly consistent)."""
        found: dict[str, SubscriberStatus] = {}
        for start in range(0, len(emails), 100):
            keys = [_key(email) for email in emails[start : start + 100]]
            request: dict[str, Any] = {
                self._table: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": "email, #status",
                    "ExpressionAttributeNames": _STATUS,
                }
            }
            while request:
                with aws_errors():
                    reply = self._client.batch_get_item(RequestItems=request)
                for item in reply["Responses"].get(self._table, []):
                    found[item["email"]["S"]] = SubscriberStatus(item["status"]["S"])
                request = reply.get("UnprocessedKeys") or {}
        return found

    def count(self, status: SubscriberStatus) -> int:
        total = 0
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-status",
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": _STATUS,
            "ExpressionAttributeValues": {":status": {"S": status.value}},
            "Select": "COUNT",
        }
        while True:
            with aws_errors():
                reply = self._client.query(**request)
            total += int(reply["Count"])
            if "LastEvaluatedKey" not in reply:
                return total
            request["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def audience_pages(
        self, audience_key: str, *, page_size: int, cursor: dict[str, Any] | None
    ) -> Iterator[tuple[list[dict[str, str]], dict[str, Any] | None]]:
        """Confirmed subscribers of one audience partition, a page at a time, with the key to resume after."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-audience",
            "KeyConditionExpression": "audience = :audience",
            "ExpressionAttributeValues": {":audience": {"S": audience_key}},
            "Limit": page_size,
        }
        while True:
            if cursor:
                request["ExclusiveStartKey"] = cursor
            with aws_errors():
                reply = self._client.query(**request)
            cursor = reply.get("LastEvaluatedKey")
            people = [{"email": i["email"]["S"], "name": i.get("name", {}).get("S", "")} for i in reply["Items"]]
            yield people, cursor
            if not cursor:
                return

    # ------------------------------------------------------------------ writes
    def create_pending(self, subscriber: Subscriber) -> bool:
        """Store a new pending subscriber; False when the address is already known. DynamoDB's TTL
        deletes it PENDING_DAYS later unless it is confirmed (or unsubscribed or suppressed) first."""
        item = _stored(subscriber)
        item["status_sort"] = f"{iso(subscriber.created_at)}#{subscriber.email}"
        item["expires_at"] = _expiry(subscriber.created_at)
        return write_if(
            self._client.put_item,
            TableName=self._table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(email)",
        )

    def create_imported(self, subscriber: Subscriber, *, upload_id: str, row: int) -> tuple[ImportResult, int | None]:
        """Add an imported address, pending or confirmed, unless the address is known; never overwrites.

        The item remembers the upload and row that added it, so a retried import counts its own rows as
        added and tells a repeated address (returned with the row that added it) from a known one.
        """
        item = _stored(subscriber)
        item.update(
            status_sort=f"{iso(subscriber.created_at)}#{subscriber.email}",
            imported_from=upload_id,
            import_row=row,
        )
        if subscriber.status is SubscriberStatus.CONFIRMED:
            item["audience"] = audience(subscriber.frequency, subscriber.email)
        else:
            item["expires_at"] = _expiry(subscriber.created_at)
        try:
            with aws_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item=to_attributes(item),
                    ConditionExpression="attribute_not_exists(email)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            existing = from_attributes(exc.response.get("Item") or {})
            if existing.get("imported_from") != upload_id:
                return ImportResult.KNOWN, None
            earlier = int(existing.get("import_row", 0))
            return (ImportResult.ADDED, None) if earlier == row else (ImportResult.REPEATED, earlier)
        return ImportResult.ADDED, None

    def claim_imported_confirmation(self, email: str, *, upload_id: str, now: datetime) -> bool:
        """The right to ask an address that the import `upload_id` added to confirm: once, while it is still
        pending and nobody asked it yet, so a redelivered batch of the confirmation queue sends nothing twice
        and an address that unsubscribed or signed up itself meanwhile is not asked again."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression="SET confirmation_sent_at = :now, updated_at = :now, expires_at = :expires",
            ConditionExpression=(
                "#status = :pending AND imported_from = :upload AND attribute_not_exists(confirmation_sent_at)"
            ),
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":pending": {"S": SubscriberStatus.PENDING.value},
                ":upload": {"S": upload_id},
                ":now": {"S": iso(now)},
                ":expires": {"N": str(_expiry(now))},
            },
        )

    def claim_confirmation(self, email: str, *, now: datetime, resend_after: datetime, frequency: Frequency) -> bool:
        """The right to send a known address a confirmation now, if none went to it since `resend_after`.

        A pending address takes the sign-up's frequency and lives PENDING_DAYS longer. An unsubscribed one
        keeps everything it has (status, name, frequency, no expiry): the opt-out stands until the person
        follows the new link. Nobody's request changes a stored name. Confirmed, bounced and complained
        addresses are never claimed.
        """
        guard = "(attribute_not_exists(confirmation_sent_at) OR confirmation_sent_at < :cutoff)"
        if write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression=(
                "SET confirmation_sent_at = :now, updated_at = :now, frequency = :frequency, expires_at = :expires"
            ),
            ConditionExpression=f"#status = :pending AND {guard}",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":pending": {"S": SubscriberStatus.PENDING.value},
                ":now": {"S": iso(now)},
                ":cutoff": {"S": iso(resend_after)},
                ":frequency": {"S": frequency.value},
                ":expires": {"N": str(_expiry(now))},
            },
        ):
            return True
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression="SET confirmation_sent_at = :now",
            ConditionExpression=f"#status = :unsubscribed AND {guard}",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":unsubscribed": {"S": SubscriberStatus.UNSUBSCRIBED.value},
                ":now": {"S": iso(now)},
                ":cutoff": {"S": iso(resend_after)},
            },
        )

    def release_confirmation(self, email: str, sent_at: datetime) -> None:
        """Forget a confirmation claim whose email could not be sent, so the next request can try again."""
        write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression="REMOVE confirmation_sent_at",
            ConditionExpression="confirmation_sent_at = :sent",
            ExpressionAttributeValues={":sent": {"S": iso(sent_at)}},
        )

    def confirm(self, subscriber: Subscriber, now: datetime) -> bool:
        """pending -> confirmed; False if the status moved on meanwhile (an unsubscribe wins the race)."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(subscriber.email),
            UpdateExpression=(
                "SET #status = :confirmed, confirmed_at = :now, updated_at = :now, audience = :audience "
                "REMOVE expires_at"
            ),
            ConditionExpression="#status = :pending AND frequency = :frequency",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":confirmed": {"S": SubscriberStatus.CONFIRMED.value},
                ":pending": {"S": SubscriberStatus.PENDING.value},
                ":frequency": {"S": subscriber.frequency.value},
                ":audience": {"S": audience(subscriber.frequency, subscriber.email)},
                ":now": {"S": iso(now)},
            },
        )

    def reconfirm(self, subscriber: Subscriber, now: datetime) -> bool:
        """unsubscribed -> confirmed, when the person follows a confirmation link made after they left;
        False if anything moved meanwhile (another unsubscribe, a bounce, an erasure)."""
        if subscriber.unsubscribed_at is None:
            return False
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(subscriber.email),
            UpdateExpression=(
                "SET #status = :confirmed, confirmed_at = :now, updated_at = :now, audience = :audience "
                "REMOVE unsubscribed_at, expires_at"
            ),
            ConditionExpression="#status = :unsubscribed AND unsubscribed_at = :left AND frequency = :frequency",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":confirmed": {"S": SubscriberStatus.CONFIRMED.value},
                ":unsubscribed": {"S": SubscriberStatus.UNSUBSCRIBED.value},
                ":left": {"S": iso(subscriber.unsubscribed_at)},
                ":frequency": {"S": subscriber.frequency.value},
                ":audience": {"S": audience(subscriber.frequency, subscriber.email)},
                ":now": {"S": iso(now)},
            },
        )

    def unsubscribe(self, email: str, now: datetime) -> bool:
        """pending or confirmed -> unsubscribed; False if there was nothing to do."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression=(
                "SET #status = :unsubscribed, unsubscribed_at = :now, updated_at = :now REMOVE audience, expires_at"
            ),
            ConditionExpression="#status IN (:pending, :confirmed)",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":unsubscribed": {"S": SubscriberStatus.UNSUBSCRIBED.value},
                ":pending": {"S": SubscriberStatus.PENDING.value},
                ":confirmed": {"S": SubscriberStatus.CONFIRMED.value},
                ":now": {"S": iso(now)},
            },
        )

    def suppress(self, email: str, status: SubscriberStatus, now: datetime) -> bool:
        """Mark a known address bounced or complained, for good; a complaint is never downgraded."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression="SET #status = :status, updated_at = :now REMOVE audience, expires_at",
            ConditionExpression="attribute_exists(email) AND #status <> :complained",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":status": {"S": status.value},
                ":complained": {"S": SubscriberStatus.COMPLAINED.value},
                ":now": {"S": iso(now)},
            },
        )

    def set_frequency(self, email: str, frequency: Frequency, now: datetime) -> bool:
        """Switch between instant and digest; a confirmed subscriber moves to that audience at once."""
        if write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression="SET frequency = :frequency, updated_at = :now, audience = :audience",
            ConditionExpression="#status = :confirmed",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":frequency": {"S": frequency.value},
                ":now": {"S": iso(now)},
                ":audience": {"S": audience(frequency, email)},
                ":confirmed": {"S": SubscriberStatus.CONFIRMED.value},
            },
        ):
            return True
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression="SET frequency = :frequency, updated_at = :now",
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":frequency": {"S": frequency.value},
                ":now": {"S": iso(now)},
                ":pending": {"S": SubscriberStatus.PENDING.value},
            },
        )

    def erase(self, email: str) -> bool:
        with aws_errors():
            reply = self._client.delete_item(TableName=self._table, Key=_key(email), ReturnValues="ALL_OLD")
        return "Attributes" in reply
