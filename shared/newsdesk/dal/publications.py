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
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import aws_errors, cancellation_reasons, error_code, from_attributes, to_attributes
from newsdesk.errors import ServiceBusy
from newsdesk.models.articles import Article
from newsdesk.models.delivery import DeliveryProgress, DeliveryState

PUBLICATION_SK = "#publication"
_CONFLICT_RETRIES = 8


class BatchClaim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"
    BUSY = "busy"


def _key(article_id: str, sk: str = PUBLICATION_SK) -> dict[str, Any]:
    return {"pk": {"S": f"article#{article_id}"}, "sk": {"S": sk}}


def publication_write(table_name: str, article: Article) -> dict[str, Any]:
    """The transaction item that records the first publish of `article`."""
    assert article.published_at is not None
    item = {
        "pk": f"article#{article.id}",
        "sk": PUBLICATION_SK,
        "article_id": article.id,
        "published_at": iso(article.published_at),
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

    def progress(self, article_id: str) -> DeliveryProgress | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(article_id), ConsistentRead=True)
        item = reply.get("Item")
        return DeliveryProgress.model_validate(from_attributes(item)) if item else None

    def start(self, article_id: str, now: datetime) -> None:
        """pending -> sending (a retried start leaves the first start time alone)."""
        self._update_if(
            Key=_key(article_id),
            UpdateExpression="SET #state = :sending, started_at = :now",
            ConditionExpression="#state = :pending",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":sending": {"S": DeliveryState.SENDING.value},
                ":pending": {"S": DeliveryState.PENDING.value},
                ":now": {"S": iso(now)},
            },
        )

    def claim_task(self, article_id: str, shard: int, task_number: int, owner: str) -> bool:
        """Only one fan-out chain per shard: a duplicate task (another message) is refused, while a
        redelivery of the same message (same owner) may do its work again."""
        return self._update_if(
            Key=_key(article_id, f"task#{shard}#{task_number}"),
            UpdateExpression="SET #owner = :owner",
            ConditionExpression="attribute_not_exists(sk) OR #owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
        )

    def complete_shard(self, article_id: str, shard: int, counted: int) -> bool:
        """Record that one audience shard is fully queued, adding its recipients to `total` once."""
        return self._transact(
            [
                {"Put": {
                    "TableName": self._table,
                    "Item": to_attributes({"pk": f"article#{article_id}", "sk": f"shard#{shard}", "counted": counted}),
                    "ConditionExpression": "attribute_not_exists(sk)",
                }},
                {"Update": {
                    "TableName": self._table,
                    "Key": _key(article_id),
                    "UpdateExpression": "ADD #total :counted, shards_done :one",
                    "ExpressionAttributeNames": {"#total": "total"},
                    "ExpressionAttributeValues": {":counted": {"N": str(counted)}, ":one": {"N": "1"}},
                }},
            ]
        )  # fmt: skip

    def claim_batch(
        self, article_id: str, batch_id: str, owner: str, *, now: datetime, lease_until: datetime
    ) -> BatchClaim:
        """Take a batch for sending: nobody else works on it until `lease_until` (a crashed mailer's
        claim lapses then), and a finished batch is never taken again."""
        claimed = self._update_if(
            Key=_key(article_id, f"batch#{batch_id}"),
            UpdateExpression="SET #state = :processing, #owner = :owner, lease_until = :lease",
            ConditionExpression="attribute_not_exists(sk) OR (#state = :processing AND lease_until < :now)",
            ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
            ExpressionAttributeValues={
                ":processing": {"S": "processing"},
                ":owner": {"S": owner},
                ":lease": {"S": iso(lease_until)},
                ":now": {"S": iso(now)},
            },
        )
        if claimed:
            return BatchClaim.CLAIMED
        with aws_errors():
            reply = self._client.get_item(
                TableName=self._table, Key=_key(article_id, f"batch#{batch_id}"), ConsistentRead=True
            )
        state = from_attributes(reply.get("Item", {})).get("state")
        return BatchClaim.DONE if state == "done" else BatchClaim.BUSY

    def release_batch(self, article_id: str, batch_id: str, owner: str) -> None:
        """Give a claimed batch back at once (after a failure), so its retry need not wait for the lease."""
        self._update_if(
            Key=_key(article_id, f"batch#{batch_id}"),
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
        self, article_id: str, batch_id: str, owner: str, *, sent: int, failed: int, suppressed: int
    ) -> bool:
        """Mark the batch done and add its outcome to the article's counters, together."""
        counts = {":sent": {"N": str(sent)}, ":failed": {"N": str(failed)}, ":suppressed": {"N": str(suppressed)}}
        return self._transact(
            [
                {"Update": {
                    "TableName": self._table,
                    "Key": _key(article_id, f"batch#{batch_id}"),
                    "UpdateExpression": "SET #state = :done, sent = :sent, failed = :failed, suppressed = :suppressed",
                    "ConditionExpression": "#owner = :owner AND #state = :processing",
                    "ExpressionAttributeNames": {"#state": "state", "#owner": "owner"},
                    "ExpressionAttributeValues": {
                        ":done": {"S": "done"}, ":owner": {"S": owner}, ":processing": {"S": "processing"}, **counts,
                    },
                }},
                {"Update": {
                    "TableName": self._table,
                    "Key": _key(article_id),
                    "UpdateExpression": "ADD sent :sent, failed :failed, suppressed :suppressed",
                    "ExpressionAttributeValues": counts,
                }},
            ]
        )  # fmt: skip

    def finish_if_complete(self, article_id: str, now: datetime) -> bool:
        """sending -> done once every shard is queued and every queued recipient is accounted for."""
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(article_id), ConsistentRead=True)
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
            Key=_key(article_id),
            UpdateExpression="SET #state = :done, finished_at = :now",
            ConditionExpression="#state = :sending AND sent = :sent AND failed = :failed "
            "AND suppressed = :suppressed AND #total = :total AND shards_done = :shards_done",
            ExpressionAttributeNames={"#state": "state", "#total": "total"},
            ExpressionAttributeValues={
                ":done": {"S": DeliveryState.DONE.value},
                ":sending": {"S": DeliveryState.SENDING.value},
                ":now": {"S": iso(now)},
                **{f":{name}": {"N": str(value)} for name, value in counts.items()},
            },
        )

    def _update_if(self, **request: Any) -> bool:
        try:
            with aws_errors():
                self._client.update_item(TableName=self._table, **request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

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
