"""Publication records: the newsletter's outbox and its progress.

The publication item is written in the same transaction as the first publish of an article, and only
then (`attribute_not_exists`), so an article is announced at most once and never lost: the table's
stream hands the record to fan-out even if the publishing process dies right after the write. Beside it
live one marker per fanned-out audience shard and one per recipient batch; each marker is written
together with the counters it adds (one transaction), so the counts are exact however often a step
is retried.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import (
    aws_errors,
    cancellation_reasons,
    error_code,
    from_attributes,
    to_attributes,
    write_if,
)
from newsdesk.errors import ServiceBusy
from newsdesk.models.articles import Article
from newsdesk.models.delivery import DeliveryProgress, DeliveryState
from newsdesk.models.subscribers import Frequency

PUBLICATION_SK = "#publication"
DIGEST_CURSOR = {"pk": {"S": "digest#cursor"}, "sk": {"S": "#cursor"}}
TASK_LEASE = timedelta(minutes=10)
_CONFLICT_RETRIES = 8


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"
    BUSY = "busy"


def newsletter_id(article_id: str) -> str:
    """The delivery of an article's newsletter."""
    return f"article#{article_id}"


def digest_id(run: str) -> str:
    """The delivery of one digest run (named by its scheduled time)."""
    return f"digest#{run}"


def _key(delivery_id: str, sk: str = PUBLICATION_SK) -> dict[str, Any]:
    return {"pk": {"S": delivery_id}, "sk": {"S": sk}}


def publication_write(table_name: str, article: Article) -> dict[str, Any]:
    """The transaction item that records the first publish of `article`: its newsletter's outbox entry."""
    assert article.published_at is not None
    return _publication_put(
        table_name,
        newsletter_id(article.id),
        {"kind": "newsletter", "article_id": article.id, "frequency": Frequency.INSTANT.value},
        article.published_at,
    )


def _publication_put(table_name: str, delivery_id: str, attributes: dict[str, Any], opened: datetime) -> dict[str, Any]:
    item = {
        "pk": delivery_id,
        "sk": PUBLICATION_SK,
        **attributes,
        "opened_at": iso(opened),
        "open": "open",
        "state": DeliveryState.PENDING.value,
        "total": 0,
        "sent": 0,
        "failed": 0,
        "suppressed": 0,
        "shards_done": 0,
    }
    return {
        "Put": {
            "TableName": table_name,
            "Item": to_attributes(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


class PublicationRepository:
    def __init__(self, client: Any, table_name: str, *, shards: int) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards

    def progress(self, delivery_id: str) -> DeliveryProgress | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(delivery_id), ConsistentRead=True)
        item = reply.get("Item")
        return DeliveryProgress.model_validate(from_attributes(item)) if item else None

    def publication(self, delivery_id: str) -> dict[str, Any] | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(delivery_id), ConsistentRead=True)
        return from_attributes(reply["Item"]) if "Item" in reply else None

    def last_digest_end(self) -> datetime | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=DIGEST_CURSOR, ConsistentRead=True)
        end = from_attributes(reply.get("Item", {})).get("period_end")
        return datetime.fromisoformat(end) if end else None

    def record_digest(self, run: str, *, start: datetime, end: datetime, article_ids: list[str]) -> bool:
        """Record a digest run (its outbox entry) and move the digest window on, together; False if
        this run was recorded before (the same scheduled event delivered twice)."""
        attributes = {
            "kind": "digest",
            "frequency": Frequency.DIGEST.value,
            "period_start": iso(start),
            "period_end": iso(end),
            "article_ids": article_ids,
        }
        return self._transact(
            [
                _publication_put(self._table, digest_id(run), attributes, end),
                {"Put": {"TableName": self._table, "Item": {**DIGEST_CURSOR, "period_end": {"S": iso(end)}}}},
            ]
        )

    def open_since(self, before: datetime) -> list[tuple[str, DeliveryState]]:
        """Deliveries opened before `before` and not finished: (delivery id, state)."""
        found: list[tuple[str, DeliveryState]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-open",
            "KeyConditionExpression": "#open = :open AND opened_at < :before",
            "ExpressionAttributeNames": {"#open": "open"},
            "ExpressionAttributeValues": {":open": {"S": "open"}, ":before": {"S": iso(before)}},
        }
        while True:
            with aws_errors():
                reply = self._client.query(**request)
            found += [(i["pk"]["S"], DeliveryState(i["state"]["S"])) for i in reply["Items"]]
            if "LastEvaluatedKey" not in reply:
                return found
            request["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def start(self, delivery_id: str, now: datetime) -> None:
        """pending -> sending (a retried start leaves the first start time alone)."""
        self._update_if(
            Key=_key(delivery_id),
            UpdateExpression="SET #state = :sending, started_at = :now",
            ConditionExpression="#state = :pending",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":sending": {"S": DeliveryState.SENDING.value},
                ":pending": {"S": DeliveryState.PENDING.value},
                ":now": {"S": iso(now)},
            },
        )

    def claim_task(self, delivery_id: str, shard: int, number: int, owner: str, *, now: datetime) -> Claim:
        """One fan-out chain per shard: a duplicate task is refused while the first one works or after
        it finished; a redelivery of the same message (same owner) or a task whose worker is surely gone
        (lease lapsed, for example redriven from the dead-letter queue) may do the work."""
        return self._claim(delivery_id, f"task#{shard}#{number}", owner, now=now, lease_until=now + TASK_LEASE)

    def finish_task(self, delivery_id: str, shard: int, number: int) -> None:
        self._update_if(
            Key=_key(delivery_id, f"task#{shard}#{number}"),
            UpdateExpression="SET #state = :done",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":done": {"S": "done"}},
        )

    def complete_shard(self, delivery_id: str, shard: int, counted: int) -> bool:
        """Record that one audience shard is fully queued, adding its recipients to `total` once."""
        return self._transact(
            [
                {"Put": {
                    "TableName": self._table,
                    "Item": to_attributes({"pk": delivery_id, "sk": f"shard#{shard}", "counted": counted}),
                    "ConditionExpression": "attribute_not_exists(sk)",
                }},
                {"Update": {
                    "TableName": self._table,
                    "Key": _key(delivery_id),
                    "UpdateExpression": "ADD #total :counted, shards_done :one",
                    "ExpressionAttributeNames": {"#total": "total"},
                    "ExpressionAttributeValues": {":counted": {"N": str(counted)}, ":one": {"N": "1"}},
                }},
            ]
        )  # fmt: skip

    def claim_batch(
        self, delivery_id: str, batch_id: str, owner: str, *, now: datetime, lease_until: datetime
    ) -> Claim:
        """Take a batch for sending: nobody else works on it until `lease_until` (a crashed mailer's
        claim lapses then), and a finished batch is never taken again."""
        return self._claim(delivery_id, f"batch#{batch_id}", owner, now=now, lease_until=lease_until)

    def _claim(self, delivery_id: str, sk: str, owner: str, *, now: datetime, lease_until: datetime) -> Claim:
        claimed = self._update_if(
            Key=_key(delivery_id, sk),
            UpdateExpression="SET #state = :processing, #owner = :owner, lease_until = :lease",
            ConditionExpression=(
                "attribute_not_exists(sk) OR (#state = :processing AND (#owner = :owner OR lease_until < :now))"
            ),
            ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
            ExpressionAttributeValues={
                ":processing": {"S": "processing"},
                ":owner": {"S": owner},
                ":lease": {"S": iso(lease_until)},
                ":now": {"S": iso(now)},
            },
        )
        if claimed:
            return Claim.CLAIMED
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(delivery_id, sk), ConsistentRead=True)
        state = from_attributes(reply.get("Item", {})).get("state")
        return Claim.DONE if state == "done" else Claim.BUSY

    def release_batch(self, delivery_id: str, batch_id: str, owner: str) -> None:
        """Give a claimed batch back at once (after a failure), so its retry need not wait for the lease."""
        self._update_if(
            Key=_key(delivery_id, f"batch#{batch_id}"),
            UpdateExpression="SET lease_until = :lapsed",
            ConditionExpression="#owner = :owner AND #state = :processing",
            ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":processing": {"S": "processing"},
                ":lapsed": {"S": iso(datetime(1970, 1, 1, tzinfo=UTC))},
            },
        )

    def complete_batch(
        self, delivery_id: str, batch_id: str, owner: str, *, sent: int, failed: int, suppressed: int
    ) -> bool:
        """Mark the batch done and add its outcome to the article's counters, together."""
        counts = {":sent": {"N": str(sent)}, ":failed": {"N": str(failed)}, ":suppressed": {"N": str(suppressed)}}
        return self._transact(
            [
                {"Update": {
                    "TableName": self._table,
                    "Key": _key(delivery_id, f"batch#{batch_id}"),
                    "UpdateExpression": "SET #state = :done, sent = :sent, failed = :failed, suppressed = :suppressed",
                    "ConditionExpression": "#owner = :owner AND #state = :processing",
                    "ExpressionAttributeNames": {"#state": "state", "#owner": "owner"},
                    "ExpressionAttributeValues": {
                        ":done": {"S": "done"}, ":owner": {"S": owner}, ":processing": {"S": "processing"}, **counts,
                    },
                }},
                {"Update": {
                    "TableName": self._table,
                    "Key": _key(delivery_id),
                    "UpdateExpression": "ADD sent :sent, failed :failed, suppressed :suppressed",
                    "ExpressionAttributeValues": counts,
                }},
            ]
        )  # fmt: skip

    def finish_if_complete(self, delivery_id: str, now: datetime) -> bool:
        """sending -> done once every shard is queued and every queued recipient is accounted for."""
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(delivery_id), ConsistentRead=True)
        item = from_attributes(reply.get("Item", {}))
        counts = {name: int(item.get(name, 0)) for name in ("sent", "failed", "suppressed", "total", "shards_done")}
        if (
            item.get("state") != DeliveryState.SENDING.value
            or counts["shards_done"] < self._shards
            or counts["sent"] + counts["failed"] + counts["suppressed"] != counts["total"]
        ):
            return False
        # Conditional on the counts just read: a batch finishing meanwhile makes this a no-op, and that
        # batch's own check finishes the delivery.
        return self._update_if(
            Key=_key(delivery_id),
            UpdateExpression="SET #state = :done, finished_at = :now REMOVE #open",
            ConditionExpression="#state = :sending AND sent = :sent AND failed = :failed "
            "AND suppressed = :suppressed AND #total = :total AND shards_done = :shards_done",
            ExpressionAttributeNames={"#state": "state", "#total": "total", "#open": "open"},
            ExpressionAttributeValues={
                ":done": {"S": DeliveryState.DONE.value},
                ":sending": {"S": DeliveryState.SENDING.value},
                ":now": {"S": iso(now)},
                **{f":{name}": {"N": str(value)} for name, value in counts.items()},
            },
        )

    def _update_if(self, **request: Any) -> bool:
        return write_if(self._client.update_item, TableName=self._table, **request)

    def _transact(self, writes: list[dict[str, Any]]) -> bool:
        """True if written; False if the marker (the first write) already existed or changed hands.
        Concurrent mailers updating the same counters conflict now and then: that is retried."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with aws_errors():
                    self._client.transact_write_items(TransactItems=writes)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = cancellation_reasons(exc)
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not security
                continue
            return True
        raise ServiceBusy("the delivery counters are too contended; the batch will be retried")
