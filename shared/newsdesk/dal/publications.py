"""Publication records: each delivery's outbox entry, its progress and its counts by ledger state.

The publication item is written in the same transaction as the first publish of an article, and only
then (`attribute_not_exists`), so an article is announced at most once and never lost: the table's
stream hands the record to fan-out even if the publishing process dies right after the write. Beside it
live one marker per fanned-out audience shard (written together with the total it adds), one per
recipient batch, and one counter item per stream shard of the ledger: the counts by state, each applied
exactly once by remembering the last stream sequence number it includes.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import (
    aws_errors,
    cancellation_reasons,
    error_code,
    from_attributes,
    query_page,
    to_attributes,
    write_if,
)
from newsdesk.dal.ledger import DETAIL_LIMIT, LedgerShape
from newsdesk.errors import ServiceBusy
from newsdesk.models.delivery import (
    DeliveryKind,
    DeliveryProgress,
    DeliveryState,
    Engagement,
    LedgerCounts,
    LedgerState,
)
from newsdesk.models.subscribers import Frequency

if TYPE_CHECKING:
    # Annotations only: the articles' models (authors, corrections) are no part of a cold start that reads a
    # delivery (the SES events' and the tally's).
    from newsdesk.models.articles import Article

PUBLICATION_SK = "#publication"
AGGREGATES = "agg#"
COUNTS_PREFIX = f"{AGGREGATES}count#"
ENGAGEMENT_SK = f"{AGGREGATES}engagement"
DUPLICATE = "duplicate"
"""The counter of queued copies of a recipient already queued in another batch (see services.delivery)."""
CLICKS_PREFIX = f"{AGGREGATES}click#"
DIGEST_CURSOR = {"pk": {"S": "digest#cursor"}, "sk": {"S": "#cursor"}}
TASK_LEASE = timedelta(minutes=10)
_CONFLICT_RETRIES = 8
_LISTED = "delivery"
_LISTED_CURSOR_KEYS = frozenset({"pk", "sk", "listed", "listed_sort"})
_SEQUENCE_DIGITS = 40


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"
    BUSY = "busy"


def newsletter_id(article_id: str) -> str:
    """The delivery of an article's newsletter. Delivery ids are letters, digits and dashes only, so they
    fit in URLs and in SES message tags."""
    return f"article-{article_id}"


def breaking_id(article_id: str) -> str:
    """The delivery of an article's breaking-news alert (at most one per article, ever)."""
    return f"breaking-{article_id}"


def digest_id(run: str) -> str:
    """The delivery of one digest run, named by its scheduled time (2026-11-30T08:00:00Z: 20261130T080000Z)."""
    return "digest-" + "".join(ch for ch in run if ch.isalnum())


def _key(delivery_id: str, sk: str = PUBLICATION_SK) -> dict[str, Any]:
    return {"pk": {"S": delivery_id}, "sk": {"S": sk}}


def ledger_shape(delivery_id: str, publication: dict[str, Any] | None) -> LedgerShape:
    """Where the ledger of a delivery is, as its publication record says: spread over `ledger_shards`
    partitions, or, for a delivery started before ledgers were sharded (no count), in one."""
    shards = (publication or {}).get("ledger_shards")
    return LedgerShape(delivery_id, int(shards) if shards else None)


def publication_write(table_name: str, article: Article) -> dict[str, Any]:
    """The transaction item that records the first publish of `article`: its newsletter's outbox entry."""
    assert article.published_at is not None
    # The tags at publish time decide the newsletter's topics (those of them that are topics when it starts).
    return _publication_put(
        table_name,
        newsletter_id(article.id),
        {"kind": "newsletter", "article_id": article.id, "frequency": Frequency.INSTANT.value, "tags": article.tags},
        article.published_at,
    )


def breaking_write(table_name: str, article: Article) -> dict[str, Any]:
    """The transaction item that records an article marked breaking news: its alert's outbox entry. Its tags
    tell which readers the article's own newsletter reaches (those the alert leaves out)."""
    attributes = {"kind": "breaking", "article_id": article.id, "frequency": Frequency.INSTANT.value,
                  "tags": article.tags}  # fmt: skip
    return _publication_put(table_name, breaking_id(article.id), attributes, article.updated_at)


def _publication_put(table_name: str, delivery_id: str, attributes: dict[str, Any], opened: datetime) -> dict[str, Any]:
    item = {
        "pk": delivery_id,
        "sk": PUBLICATION_SK,
        **attributes,
        "opened_at": iso(opened),
        "open": "open",
        "listed": _LISTED,
        "listed_sort": f"{iso(opened)}#{delivery_id}",
        "state": DeliveryState.PENDING.value,
        "total": 0,
        "shards_done": 0,
    }
    return {
        "Put": {
            "TableName": table_name,
            "Item": to_attributes(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def _counts(aggregates: list[dict[str, Any]], total: int) -> tuple[LedgerCounts, int, int]:
    """The counts by state summed over a delivery's counter items, the late `Send` events, and the copies
    of recipients queued twice (each copy past the first is counted once, when its mailer finds it)."""
    counters = [item for item in aggregates if str(item["sk"]).startswith(COUNTS_PREFIX)]
    sums = {state.value: sum(int(item.get(state.value, 0)) for item in counters) for state in LedgerState}
    late = sum(int(item.get("late_send", 0)) for item in counters)
    duplicates = sum(int(item.get(DUPLICATE, 0)) for item in counters)
    return LedgerCounts(queued=total - duplicates - sum(sums.values()), **sums), late, duplicates


def _engagement(aggregates: list[dict[str, Any]]) -> Engagement | None:
    found = next((item for item in aggregates if item["sk"] == ENGAGEMENT_SK), None)
    clicks = {str(item["link"]): int(item.get("clicks", 0)) for item in aggregates
              if str(item["sk"]).startswith(CLICKS_PREFIX)}  # fmt: skip
    if found is None and not clicks:
        return None
    found = found or {}
    return Engagement(
        unique_opens=int(found.get("unique_opens", 0)),
        machine_opens=int(found.get("machine_opens", 0)),
        clicks=clicks,
        scanner_clicks=int(found.get("scanner_clicks", 0)),
    )


def _progress(item: dict[str, Any], aggregates: list[dict[str, Any]], now: datetime) -> DeliveryProgress:
    counts, late, duplicates = _counts(aggregates, int(item.get("total", 0)))
    paused = item.get("paused_until")
    paused_until = datetime.fromisoformat(paused) if paused else None
    if not (paused_until and paused_until > now and item["state"] != "done"):
        paused_until = None
    return DeliveryProgress(
        id=item["pk"],
        kind=DeliveryKind(item.get("kind", DeliveryKind.NEWSLETTER.value)),
        article_id=item.get("article_id"),
        state=DeliveryState(item["state"]),
        total=int(item.get("total", 0)) - duplicates,
        topics=item.get("topics") or [],
        sent=counts.sent + counts.delivered + counts.bounced + counts.complained,
        failed=counts.failed,
        suppressed=counts.suppressed,
        counts=counts,
        late_send_events=late,
        paused_until=paused_until,
        paused_reason=item.get("paused_reason") if paused_until else None,
        engagement=_engagement(aggregates),
        started_at=item.get("started_at"),
        finished_at=item.get("finished_at"),
    )


def _chain(kind: str, topic: str | None, *numbers: int) -> str:
    """The sort key of a fan-out chain's marker: `task#<shard>#<n>`, `shard#<shard>` for everything (as
    before topics existed), `task#<topic>#<shard>#<n>`, `shard#<topic>#<shard>` for a topic."""
    return "#".join([kind, *([topic] if topic else []), *(str(number) for number in numbers)])


class PublicationRepository:
    def __init__(self, client: Any, table_name: str, *, shards: int) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards

    def progress(self, delivery_id: str, now: datetime) -> DeliveryProgress | None:
        item = self.publication(delivery_id)
        return _progress(item, self._aggregates(delivery_id), now) if item else None

    def _aggregates(self, delivery_id: str) -> list[dict[str, Any]]:
        """The delivery's counter items (one per stream shard of the ledger) and engagement items."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :aggregates)",
            "ExpressionAttributeValues": {":pk": {"S": delivery_id}, ":aggregates": {"S": AGGREGATES}},
            "ConsistentRead": True,
        }
        found: list[dict[str, Any]] = []
        while True:
            with aws_errors():
                reply = self._client.query(**request)
            found += [from_attributes(item) for item in reply["Items"]]
            if "LastEvaluatedKey" not in reply:
                return found
            request["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def deliveries(self, *, limit: int, cursor: str | None, now: datetime) -> tuple[list[DeliveryProgress], str | None]:
        """Deliveries, newest first, with their progress."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-listed",
            "KeyConditionExpression": "listed = :listed",
            "ExpressionAttributeValues": {":listed": {"S": _LISTED}},
            "ScanIndexForward": False,
        }
        items, next_cursor = query_page(
            self._client.query, request, limit=limit, cursor=cursor, key_names=_LISTED_CURSOR_KEYS
        )
        return [_progress(item, self._aggregates(item["pk"]), now) for item in items], next_cursor

    def publication(self, delivery_id: str) -> dict[str, Any] | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(delivery_id), ConsistentRead=True)
        return from_attributes(reply["Item"]) if "Item" in reply else None

    def last_digest_end(self) -> datetime | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=DIGEST_CURSOR, ConsistentRead=True)
        end = from_attributes(reply.get("Item", {})).get("period_end")
        return datetime.fromisoformat(end) if end else None

    def record_digest(
        self, run: str, *, start: datetime, end: datetime, article_ids: list[str], tags: list[str]
    ) -> bool:
        """Record a digest run (its outbox entry) and move the digest window on, together; False if
        this run was recorded before (the same scheduled event delivered twice)."""
        attributes = {
            "kind": "digest",
            "frequency": Frequency.DIGEST.value,
            "period_start": iso(start),
            "period_end": iso(end),
            "article_ids": article_ids,
            "tags": tags,
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

    def resolve_topics(self, delivery_id: str, topics: list[str], *, shards: int, ledger_shards: int) -> list[str]:
        """Fix the topics a delivery is sent for, once (the first start decides; a repeated start reads what it
        decided), with the number of shard chains its fan-out runs (one per shard for everything, and one per
        shard and topic) and the partitions its ledger is spread over. A delivery that a version before ledger
        shards started keeps its one partition."""
        with aws_errors():
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=_key(delivery_id),
                    UpdateExpression="SET topics = :topics, shards_expected = :expected, ledger_shards = :ledger",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(shards_expected)",
                    ExpressionAttributeValues={
                        ":topics": to_attributes({"topics": topics})["topics"],
                        ":expected": {"N": str(shards * (1 + len(topics)))},
                        ":ledger": {"N": str(ledger_shards)},
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return list((self.publication(delivery_id) or {}).get("topics") or [])
        return topics

    def claim_task(
        self, delivery_id: str, shard: int, number: int, owner: str, *, now: datetime, topic: str | None = None
    ) -> Claim:
        """One fan-out chain per shard (and topic): a duplicate task is refused while the first one works or
        after it finished; a redelivery of the same message (same owner) or a task whose worker is surely
        gone (lease lapsed, for example redriven from the dead-letter queue) may do the work."""
        return self._claim(delivery_id, _chain("task", topic, shard, number), owner, now=now,
                           lease_until=now + TASK_LEASE)  # fmt: skip

    def finish_task(self, delivery_id: str, shard: int, number: int, *, topic: str | None = None) -> None:
        self._update_if(
            Key=_key(delivery_id, _chain("task", topic, shard, number)),
            UpdateExpression="SET #state = :done",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":done": {"S": "done"}},
        )

    def complete_shard(self, delivery_id: str, shard: int, counted: int, *, topic: str | None = None) -> bool:
        """Record that one audience shard (of everything, or of a topic) is fully queued, adding its recipients
        to `total` once."""
        marker = _chain("shard", topic, shard)
        return self._transact(
            [
                {"Put": {
                    "TableName": self._table,
                    "Item": to_attributes({"pk": delivery_id, "sk": marker, "counted": counted}),
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

    def complete_batch(self, delivery_id: str, batch_id: str, owner: str) -> bool:
        """Mark the batch done (its recipients are all claimed, settled or sent): a copy of it is skipped."""
        return self._update_if(
            Key=_key(delivery_id, f"batch#{batch_id}"),
            UpdateExpression="SET #state = :done",
            ConditionExpression="#owner = :owner AND #state = :processing",
            ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
            ExpressionAttributeValues={
                ":done": {"S": "done"},
                ":owner": {"S": owner},
                ":processing": {"S": "processing"},
            },
        )

    def pause(self, delivery_id: str, until: datetime, *, reason: str) -> None:
        """SES sends nothing for now (its daily quota is spent, or it refuses the account): sending waits until
        `until`, and the progress shows until when and why. A longer pause already set stays."""
        self._update_if(
            Key=_key(delivery_id),
            UpdateExpression="SET paused_until = :until, paused_reason = :reason",
            ConditionExpression=(
                "attribute_exists(pk) AND (attribute_not_exists(paused_until) OR paused_until < :until)"
            ),
            ExpressionAttributeValues={":until": {"S": iso(until)}, ":reason": {"S": reason[:DETAIL_LIMIT]}},
        )

    def apply_counts(
        self, delivery_id: str, stream_shard: str, *, first: str, last: str, changes: dict[str, int]
    ) -> bool:
        """Add one stream batch's changes to the delivery's counts, once: the counter item of the stream
        shard remembers the last sequence number it includes, and a batch it has seen is not added again."""
        names = {f"#c{index}": name for index, name in enumerate(sorted(changes))}
        values: dict[str, Any] = {f":c{index}": {"N": str(changes[name])} for index, name in enumerate(sorted(changes))}
        values.update({":first": {"S": first.zfill(_SEQUENCE_DIGITS)}, ":last": {"S": last.zfill(_SEQUENCE_DIGITS)}})
        adds = ", ".join(f"#c{index} :c{index}" for index in range(len(names)))
        request: dict[str, Any] = {
            "Key": _key(delivery_id, f"{COUNTS_PREFIX}{stream_shard}"),
            "UpdateExpression": "SET last_sequence = :last" + (f" ADD {adds}" if adds else ""),
            "ConditionExpression": "attribute_not_exists(last_sequence) OR last_sequence < :first",
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        return self._update_if(**request)

    def first_sighting(self, marker: str, *, forget_at: datetime) -> bool:
        """True the first time `marker` (a keyed hash of an SES message id, never an address) is seen; the
        marker is forgotten at `forget_at` (TTL). Each marker is a partition of its own: a delivery's opens and
        clicks come about as fast as its emails are delivered, more than one partition key takes at R = 1,000."""
        item = {"pk": f"seen#{marker}", "sk": "#seen", "expires_at": int(forget_at.timestamp())}
        return write_if(
            self._client.put_item,
            TableName=self._table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def add_engagement(
        self, delivery_id: str, *, unique_opens: int = 0, machine_opens: int = 0, scanner_clicks: int = 0
    ) -> None:
        with aws_errors():
            self._client.update_item(
                TableName=self._table,
                Key=_key(delivery_id, ENGAGEMENT_SK),
                UpdateExpression="ADD unique_opens :opens, machine_opens :machine, scanner_clicks :scanner",
                ExpressionAttributeValues={
                    ":opens": {"N": str(unique_opens)},
                    ":machine": {"N": str(machine_opens)},
                    ":scanner": {"N": str(scanner_clicks)},
                },
            )

    def add_clicks(self, delivery_id: str, link: str, link_key: str, clicks: int) -> None:
        with aws_errors():
            self._client.update_item(
                TableName=self._table,
                Key=_key(delivery_id, f"{CLICKS_PREFIX}{link_key}"),
                UpdateExpression="SET link = :link ADD clicks :clicks",
                ExpressionAttributeValues={":link": {"S": link[:2000]}, ":clicks": {"N": str(clicks)}},
            )

    def finish_if_complete(self, delivery_id: str, now: datetime) -> bool:
        """sending -> done once every shard is queued and every queued recipient is settled (none queued or
        pending). Safe to call from anywhere at any time: only one caller finishes it."""
        item = self.publication(delivery_id)
        expected = int(item.get("shards_expected", self._shards)) if item else self._shards
        if item is None or item.get("state") != DeliveryState.SENDING.value or item["shards_done"] < expected:
            return False
        counts, _, _ = _counts(self._aggregates(delivery_id), int(item["total"]))
        if counts.queued or counts.pending:
            return False
        # The final counts go in the same write as `done`: the table's stream hands both to the
        # newsletter.finished event (services/events.py), so the event can never miss or mistake them.
        final = counts.model_dump(exclude={"queued", "pending"})
        return self._update_if(
            Key=_key(delivery_id),
            UpdateExpression="SET #state = :done, finished_at = :now, final_counts = :counts REMOVE #open",
            ConditionExpression="#state = :sending",
            ExpressionAttributeNames={"#state": "state", "#open": "open"},
            ExpressionAttributeValues={
                ":done": {"S": DeliveryState.DONE.value},
                ":sending": {"S": DeliveryState.SENDING.value},
                ":now": {"S": iso(now)},
                ":counts": to_attributes({"m": final})["m"],
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
