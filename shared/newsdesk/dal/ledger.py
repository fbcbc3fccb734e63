"""The delivery ledger: one record per recipient of a delivery, in exactly one state (models.LedgerState).

A record is keyed by its delivery's ledger partition and a keyed hash of the address (`to#<recipient key>`),
which SES's events carry back as message tags, so an event finds its record without the address. A
delivery's records are spread over `shards` partitions (`<delivery id>#<n>`, n from the recipient key), fixed
when it starts (LedgerShape): DynamoDB serves about 1,000 writes a second per partition, and each recipient
costs three. The address is kept for the editor's report and removed when the person is erased. Every change
is conditional on the state it moves from, so an event delivered twice or out of order changes nothing twice;
the table's stream is how the counts by state are kept (services.delivery.Tally).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import (
    aws_errors,
    from_attributes,
    query_page,
    to_attributes,
    write_if,
)
from newsdesk.models.delivery import LedgerState

_STATE = {"#state": "state"}
DUPLICATE_PREFIX = "dup#"
"""Sort keys of the markers of recipients queued twice for one delivery (never a `to#` record)."""
_CURSOR_KEYS = frozenset({"pk", "sk"})
DETAIL_LIMIT = 300

WRITES_PER_RECIPIENT = 3
"""The claim, SES's Send event and its Delivery event: what one recipient writes to its ledger partition."""
PARTITION_WRITES_PER_SECOND = 1000
"""What DynamoDB serves one partition key, at most."""
MIN_SHARDS = 8
MAX_SHARDS = 256


def shards_for(send_rate: float) -> int:
    """The partitions a delivery's ledger is spread over when it starts at `send_rate` emails a second: at
    least MIN_SHARDS (as the audience), and enough that each takes at most half what a partition serves
    (docs/capacity.md), in powers of two."""
    needed = math.ceil(WRITES_PER_RECIPIENT * send_rate / (PARTITION_WRITES_PER_SECOND / 2))
    shards = MIN_SHARDS
    while shards < min(needed, MAX_SHARDS):
        shards *= 2
    return shards


@dataclass(frozen=True)
class LedgerShape:
    """Where a delivery's records are: in `shards` partitions `<delivery id>#<n>`, each recipient's chosen by
    its key, so the same recipient is always in the same one; or, with `shards` None, in the one partition
    `<delivery id>` of a delivery started before ledgers were sharded (its publication records no count)."""

    delivery_id: str
    shards: int | None = None

    def partition(self, recipient_key: str) -> str:
        if self.shards is None:
            return self.delivery_id
        return f"{self.delivery_id}#{zlib.crc32(recipient_key.encode()) % self.shards}"

    def partitions(self) -> list[str]:
        if self.shards is None:
            return [self.delivery_id]
        return [f"{self.delivery_id}#{shard}" for shard in range(self.shards)]


def delivery_of(partition: str) -> str:
    """The delivery a ledger partition belongs to (delivery ids never hold `#`)."""
    return partition.split("#", 1)[0]


@dataclass(frozen=True)
class LedgerRecord:
    recipient_key: str
    email: str | None
    state: LedgerState
    attempt: int
    batch_id: str
    message_id: str | None
    detail: str | None
    pending_since: datetime | None
    updated_at: datetime

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerRecord:
        since = item.get("pending_since")
        return cls(
            recipient_key=str(item["sk"]).removeprefix("to#"),
            email=item.get("email"),
            state=LedgerState(item["state"]),
            attempt=int(item.get("attempt", 1)),
            batch_id=str(item.get("batch_id", "")),
            message_id=item.get("message_id"),
            detail=item.get("detail"),
            pending_since=datetime.fromisoformat(since) if since else None,
            updated_at=datetime.fromisoformat(item["updated_at"]),
        )


def record_key(ledger: LedgerShape, recipient_key: str) -> dict[str, Any]:
    """The table key of a recipient's record."""
    return _key(ledger.partition(recipient_key), recipient_key)


def _key(partition: str, recipient_key: str) -> dict[str, Any]:
    return {"pk": {"S": partition}, "sk": {"S": f"to#{recipient_key}"}}


class LedgerRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ------------------------------------------------------------------ reads
    def records(self, ledger: LedgerShape, recipient_keys: Iterable[str]) -> dict[str, LedgerRecord]:
        """The records that exist among these recipients of a delivery (strongly consistent)."""
        found: dict[str, LedgerRecord] = {}
        keys = [record_key(ledger, key) for key in dict.fromkeys(recipient_keys)]
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            while request:
                with aws_errors():
                    reply = self._client.batch_get_item(RequestItems=request)
                for item in reply["Responses"].get(self._table, []):
                    record = LedgerRecord.from_item(from_attributes(item))
                    found[record.recipient_key] = record
                request = reply.get("UnprocessedKeys") or {}
        return found

    def page(
        self, ledger: LedgerShape, *, state: LedgerState | None, limit: int, cursor: str | None
    ) -> tuple[list[LedgerRecord], str | None]:
        """Records of a delivery, partition after partition, each in key order. With a state, at most `limit`
        records are examined, so a page may hold fewer (even none) and still have a next cursor."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :to)",
            "ExpressionAttributeValues": {":to": {"S": "to#"}},
        }
        filters = {"state": state.value if state else None}
        if state is not None:
            request["FilterExpression"] = "#state = :state"
            request["ExpressionAttributeNames"] = _STATE
            request["ExpressionAttributeValues"][":state"] = {"S": state.value}
        partitions = [{"pk": {"S": partition}} for partition in ledger.partitions()]
        items, next_cursor = query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=_CURSOR_KEYS,
                                        partitions=partitions, filters=filters)  # fmt: skip
        return [LedgerRecord.from_item(item) for item in items], next_cursor

    # ------------------------------------------------------------------ the mailer's writes
    def claim(
        self, ledger: LedgerShape, recipient_key: str, email: str, *, batch_id: str, attempt: int, now: datetime
    ) -> bool:
        """Take a recipient for sending (`pending`); False if a record exists (someone else took it)."""
        item = {"pk": ledger.partition(recipient_key), "sk": f"to#{recipient_key}", "email": email,
                "batch_id": batch_id, "state": LedgerState.PENDING.value, "attempt": attempt,
                "pending_since": iso(now), "updated_at": iso(now)}  # fmt: skip
        return write_if(
            self._client.put_item,
            TableName=self._table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def settle_unsent(
        self, ledger: LedgerShape, recipient_key: str, email: str, state: LedgerState, *, detail: str,
        batch_id: str, now: datetime,
    ) -> bool:  # fmt: skip
        """Record a recipient who will not be sent this delivery (`suppressed`, or `failed` when the article
        was withdrawn); False if a record exists."""
        item = {"pk": ledger.partition(recipient_key), "sk": f"to#{recipient_key}", "email": email,
                "state": state.value, "attempt": 0,
                "batch_id": batch_id, "detail": detail[:DETAIL_LIMIT], "updated_at": iso(now)}  # fmt: skip
        return write_if(
            self._client.put_item,
            TableName=self._table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def mark_duplicate(self, ledger: LedgerShape, recipient_key: str, *, batch_id: str, now: datetime) -> bool:
        """Record, once, that batch `batch_id` held a second copy of a recipient another batch of the delivery
        holds (TallyFunction counts it out of the total); False if recorded already."""
        item = {"pk": ledger.partition(recipient_key), "sk": f"{DUPLICATE_PREFIX}{batch_id}#{recipient_key}",
                "updated_at": iso(now)}  # fmt: skip
        return write_if(
            self._client.put_item,
            TableName=self._table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def retry(self, ledger: LedgerShape, recipient_key: str, *, attempt: int, now: datetime) -> bool:
        """Take a pending record whose attempt never reached SES for one more attempt (attempt + 1)."""
        return self._set_attempt(ledger, recipient_key, attempt, attempt + 1, pending_since=now, now=now)

    def back_off(
        self, ledger: LedgerShape, recipient_key: str, *, attempt: int, pending_since: datetime, now: datetime
    ) -> bool:
        """Undo `retry` for an attempt SES certainly did not accept (back to attempt - 1, pending since
        `pending_since`)."""
        return self._set_attempt(ledger, recipient_key, attempt, attempt - 1, pending_since=pending_since, now=now)

    def _set_attempt(
        self, ledger: LedgerShape, recipient_key: str, current: int, new: int, *, pending_since: datetime,
        now: datetime,
    ) -> bool:  # fmt: skip
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=record_key(ledger, recipient_key),
            UpdateExpression="SET attempt = :new, pending_since = :since, updated_at = :now",
            ConditionExpression="#state = :pending AND attempt = :current",
            ExpressionAttributeNames=_STATE,
            ExpressionAttributeValues={
                ":pending": {"S": LedgerState.PENDING.value},
                ":current": {"N": str(current)},
                ":new": {"N": str(new)},
                ":since": {"S": iso(pending_since)},
                ":now": {"S": iso(now)},
            },
        )

    def release(self, ledger: LedgerShape, recipient_key: str, *, attempt: int) -> None:
        """Remove a first-attempt claim that SES certainly did not accept (it refused for now, or the call
        was never made), so that the next attempt at the batch claims it afresh."""
        write_if(
            self._client.delete_item,
            TableName=self._table,
            Key=record_key(ledger, recipient_key),
            ConditionExpression="#state = :pending AND attempt = :attempt",
            ExpressionAttributeNames=_STATE,
            ExpressionAttributeValues={":pending": {"S": LedgerState.PENDING.value}, ":attempt": {"N": str(attempt)}},
        )

    # ------------------------------------------------------------------ transitions (mailer and SES events)
    def move(
        self,
        ledger: LedgerShape,
        recipient_key: str,
        *,
        to: LedgerState,
        allowed_from: Iterable[LedgerState],
        now: datetime,
        attempt: int | None = None,
        message_id: str | None = None,
        detail: str | None = None,
    ) -> bool:
        """Move a record to `to` if it is in one of `allowed_from` (and, given `attempt`, at that attempt)."""
        update = ["#state = :to", "updated_at = :now"]
        values: dict[str, Any] = {":to": {"S": to.value}, ":now": {"S": iso(now)}}
        sources = sorted(state.value for state in allowed_from)
        for index, state in enumerate(sources):
            values[f":from{index}"] = {"S": state}
        condition = f"#state IN ({', '.join(f':from{index}' for index in range(len(sources)))})"
        if attempt is not None:
            condition += " AND attempt = :attempt"
            values[":attempt"] = {"N": str(attempt)}
        if message_id is not None:
            update.append("message_id = :message_id")
            values[":message_id"] = {"S": message_id}
        if detail is not None:
            update.append("detail = :detail")
            values[":detail"] = {"S": detail[:DETAIL_LIMIT]}
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=record_key(ledger, recipient_key),
            UpdateExpression="SET "
            + ", ".join(update)
            + (" REMOVE pending_since" if to is not LedgerState.PENDING else ""),
            ConditionExpression=condition,
            ExpressionAttributeNames=_STATE,
            ExpressionAttributeValues=values,
        )

    def mark_late_send(self, ledger: LedgerShape, recipient_key: str, *, attempt: int, now: datetime) -> bool:
        """A `Send` event of an attempt older than the record's: the email was sent again although SES had
        accepted it (its event came after the reconciliation window). Counted once per record."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=record_key(ledger, recipient_key),
            UpdateExpression="SET late_send = :attempt, updated_at = :now",
            ConditionExpression="attribute_exists(sk) AND attempt > :attempt AND attribute_not_exists(late_send)",
            ExpressionAttributeValues={":attempt": {"N": str(attempt)}, ":now": {"S": iso(now)}},
        )

    def partitions_of(self, recipient_key: str, *, limit: int, position: str | None) -> tuple[list[str], str | None]:
        """The ledger partitions (of any delivery, sharded or not) that hold a record of `recipient_key`, `limit`
        at a time from `position` (the `by-recipient` index: one Query of the person's own records, whatever
        the ledgers hold), and where the next page starts (None after the last)."""
        partition = {"sk": {"S": f"to#{recipient_key}"}}
        request = {"TableName": self._table, "IndexName": "by-recipient", "KeyConditionExpression": "sk = :sk",
                   "ExpressionAttributeValues": {":sk": partition["sk"]}}  # fmt: skip
        items, next_position = query_page(self._client.query, request, limit=limit, cursor=position,
                                          key_names=_CURSOR_KEYS, partition=partition)  # fmt: skip
        return [str(item["pk"]) for item in items], next_position

    def scrub(self, partition: str, recipient_key: str) -> bool:
        """Forget the address of an erased person from their record in a ledger `partition` (as `partitions_of`
        names it; the record and its state stay, for the counts; details never hold an address); False if the
        record held none."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(partition, recipient_key),
            UpdateExpression="REMOVE email",
            ConditionExpression="attribute_exists(email)",
        )
