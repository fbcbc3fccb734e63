"""Subscribers in DynamoDB, keyed by address, and the audiences fan-out reads. Every state change is a
conditional write, so racing requests (a confirm and an unsubscribe, fifty sign-ups at once) can never
resurrect or duplicate anyone.

Who receives what is kept where fan-out reads it, in two places (docs/data-model.md):
- a subscriber of everything carries `audience` (`<frequency>#<shard>`, only while confirmed), the key of
  the sparse `by-audience` index of SubscribersTable;
- a reader of chosen topics has one item per topic in TopicMembersTable, keyed by
  `<frequency>#<topic>#<shard>` and the address, written in the same transaction as the subscriber.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import (
    aws_errors,
    cancellation_reasons,
    decode_cursor,
    encode_cursor,
    error_code,
    from_attributes,
    query_page,
    to_attributes,
    write_if,
)
from newsdesk.errors import ServiceBusy
from newsdesk.models.subscribers import Consent, Frequency, Subscriber, SubscriberStatus

FANOUT_SHARDS = 8
_AUDIENCE_CURSOR_KEYS = frozenset({"email", "audience"})  # by-audience and TopicMembersTable alike
_BREAKING_CURSOR_KEYS = frozenset({"email", "breaking_audience"})
"""Confirmed subscribers are spread over this many `audience` partitions, which fan-out reads in parallel."""

_STATUS = {"#status": "status"}
PENDING_DAYS = 7


class Choice(NamedTuple):
    """What a sign-up chose: how often, which topics (None: everything), and breaking-news alerts."""

    frequency: Frequency
    topics: list[str] | None
    breaking: bool = False


def _expiry(moment: datetime) -> int:
    return int((moment + timedelta(days=PENDING_DAYS)).timestamp())


def audience_key(frequency: Frequency, shard: int) -> str:
    return f"{frequency.value}#{shard}"


def shard_of(email: str) -> int:
    return zlib.crc32(email.encode()) % FANOUT_SHARDS


def audience(frequency: Frequency, email: str) -> str:
    return audience_key(frequency, shard_of(email))


def topic_audience_key(frequency: Frequency, topic: str, shard: int) -> str:
    """A partition of TopicMembersTable: the readers of one topic, frequency and shard."""
    return f"{frequency.value}#{topic}#{shard}"


def topic_audience(frequency: Frequency, topic: str, email: str) -> str:
    return topic_audience_key(frequency, topic, shard_of(email))


def breaking_audience_key(shard: int) -> str:
    """A partition of the sparse `by-breaking` index: the readers of one shard who asked for breaking news."""
    return f"breaking#{shard}"


@dataclass(frozen=True)
class AudienceState:
    """What the mailer checks about a recipient just before sending."""

    status: SubscriberStatus
    topics: list[str] | None
    """None: everything."""
    audience_changed_at: datetime | None
    breaking: bool = False
    """Asked for breaking-news alerts."""


@dataclass(frozen=True)
class Member:
    """One reader in an audience page: a subscriber of everything (`topics` None) or of chosen topics."""

    email: str
    name: str | None
    topics: list[str] | None
    frequency: Frequency | None = None
    """Read for breaking-news alerts only (their audience mixes frequencies)."""


def _key(email: str) -> dict[str, Any]:
    return {"email": {"S": email}}


def _stored(subscriber: Subscriber) -> dict[str, Any]:
    # Times in the one format the conditional updates compare with (clock.iso): a claim written here
    # must be found equal by `release_confirmation`, and ordered right by the resend guard.
    item = subscriber.model_dump(mode="json", exclude_none=True)
    item.update({key: iso(value) for key, value in subscriber if isinstance(value, datetime)})
    item.pop("audience_changed_at", None)  # written by transitions only
    return item


class ImportResult(StrEnum):
    ADDED = "added"
    """New on the list (or added by this very row of this import on an earlier attempt)."""
    KNOWN = "known"
    """Already on the list, in whatever status: left exactly as it is."""
    REPEATED = "repeated"
    """An earlier row of the same import added it."""


class SubscriberRepository:
    def __init__(self, client: Any, table_name: str, members_table: str) -> None:
        self._client = client
        self._table = table_name
        self._members = members_table

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
        request: dict[str, Any] = {"TableName": self._table}
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
        items, next_cursor = query_page(call, request, limit=limit, cursor=cursor, key_names=key_names, filters=filters)
        return [Subscriber.model_validate(item) for item in items], next_cursor

    def audience_states(self, emails: list[str]) -> dict[str, AudienceState]:
        """The status, topics and last audience change of each known address among `emails` (strongly
        consistent)."""
        found: dict[str, AudienceState] = {}
        for start in range(0, len(emails), 100):
            keys = [_key(email) for email in emails[start : start + 100]]
            request: dict[str, Any] = {
                self._table: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": "email, #status, topics, audience_changed_at, breaking",
                    "ExpressionAttributeNames": _STATUS,
                }
            }
            while request:
                with aws_errors():
                    reply = self._client.batch_get_item(RequestItems=request)
                for item in reply["Responses"].get(self._table, []):
                    plain = from_attributes(item)
                    changed = plain.get("audience_changed_at")
                    found[plain["email"]] = AudienceState(
                        SubscriberStatus(plain["status"]),
                        plain.get("topics"),
                        datetime.fromisoformat(changed) if changed else None,
                        bool(plain.get("breaking")),
                    )
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

    def audience(
        self, frequency: Frequency, shard: int, *, topic: str | None, page_size: int, cursor: str | None
    ) -> Iterator[tuple[list[Member], str | None]]:
        """The confirmed readers of one shard of an audience — of everything when `topic` is None, else of the
        topic — a page at a time, each with the opaque cursor to resume after it (None after the last)."""
        request: dict[str, Any] = {
            "KeyConditionExpression": "audience = :audience",
            "Limit": page_size,
        }
        if topic is None:
            key = audience_key(frequency, shard)
            request.update(TableName=self._table, IndexName="by-audience")
        else:
            # A topic's readers carry the topics each follows: fan-out skips those an earlier topic's pass queued.
            key = topic_audience_key(frequency, topic, shard)
            request.update(TableName=self._members)
        request["ExpressionAttributeValues"] = {":audience": {"S": key}}
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor, _AUDIENCE_CURSOR_KEYS)
        while True:
            with aws_errors():
                reply = self._client.query(**request)
            members = []
            for item in map(from_attributes, reply["Items"]):
                topics = None if topic is None else list(item.get("topics", []))
                members.append(Member(item["email"], item.get("name") or None, topics))
            last = reply.get("LastEvaluatedKey")
            yield members, encode_cursor(last) if last else None
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def breaking_audience(
        self, shard: int, *, page_size: int, cursor: str | None
    ) -> Iterator[tuple[list[Member], str | None]]:
        """The confirmed readers of one shard who asked for breaking news, with their frequency and topics (so
        fan-out can leave out those the article's newsletter reaches), a page at a time as `audience` gives."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-breaking",
            "KeyConditionExpression": "breaking_audience = :audience",
            "ExpressionAttributeValues": {":audience": {"S": breaking_audience_key(shard)}},
            "Limit": page_size,
        }
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor, _BREAKING_CURSOR_KEYS)
        while True:
            with aws_errors():
                reply = self._client.query(**request)
            members = [
                Member(item["email"], item.get("name") or None, item.get("topics"), Frequency(item["frequency"]))
                for item in map(from_attributes, reply["Items"])
            ]
            last = reply.get("LastEvaluatedKey")
            yield members, encode_cursor(last) if last else None
            if not last:
                return
            request["ExclusiveStartKey"] = last

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
        added and tells a repeated address (returned with the row that added it) from a known one. Imports
        add subscribers of everything (their readers choose topics on the preferences page).
        """
        if subscriber.topics is not None:
            raise ValueError("imported subscribers follow everything")
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

    def claim_confirmation(self, email: str, *, now: datetime, resend_after: datetime) -> bool:
        """The right to send a known address a confirmation now, if none went to it since `resend_after`.

        Nothing the person chose or agreed to changes (status, name, frequency, topics, consent): the request's
        choices travel in its confirmation link and are stored only when that link is confirmed, so a
        stranger's sign-up of a pending or unsubscribed address cannot alter it. A pending address lives
        PENDING_DAYS longer, so the new link can still be confirmed. Confirmed, bounced and complained
        addresses are never claimed.
        """
        guard = "(attribute_not_exists(confirmation_sent_at) OR confirmation_sent_at < :cutoff)"
        values: dict[str, Any] = {":now": {"S": iso(now)}, ":cutoff": {"S": iso(resend_after)}}
        if write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression="SET confirmation_sent_at = :now, expires_at = :expires",
            ConditionExpression=f"#status = :pending AND {guard}",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                **values,
                ":pending": {"S": SubscriberStatus.PENDING.value},
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
            ExpressionAttributeValues={**values, ":unsubscribed": {"S": SubscriberStatus.UNSUBSCRIBED.value}},
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

    # ------------------------------------------------------------------ transitions
    # Every change of what a subscriber receives (status, frequency, topics) is decided on a consistent read
    # and written conditional on the revision read, together with the membership items it adds or removes,
    # in one transaction: racing requests cannot resurrect an address or leave a membership behind. A write
    # that lost a race reads again and decides again.

    def confirm(
        self, subscriber: Subscriber, now: datetime, consent: Consent | None = None, choice: Choice | None = None
    ) -> bool:
        """pending -> confirmed, with the `choice` (frequency and topics) the confirmed link carried; False if the
        status moved on since `subscriber` was read (an unsubscribe wins the race). Without a `choice` (a link
        from before links carried it) the stored choice is kept, and must be the one read."""

        def decide(current: Subscriber) -> Subscriber | None:
            moved = choice is None and _choice(current) != _choice(subscriber)
            if current.status is not SubscriberStatus.PENDING or moved:
                return None
            return current.model_copy(update={
                "status": SubscriberStatus.CONFIRMED, "confirmed_at": now, "updated_at": now, **_chosen(choice),
                **current.agreeing(consent or _confirmed(current.consent, now)),
            })  # fmt: skip

        return self._apply(subscriber.email, decide, now) is not None

    def reconfirm(
        self, subscriber: Subscriber, now: datetime, consent: Consent | None = None, choice: Choice | None = None
    ) -> bool:
        """unsubscribed -> confirmed, when the person follows a confirmation link made after they left (with the
        link's `choice`, if it carries one); False if anything moved meanwhile (another unsubscribe, a bounce, an
        erasure). The consent they gave before joins the history."""
        if subscriber.unsubscribed_at is None:
            return False

        def decide(current: Subscriber) -> Subscriber | None:
            if (
                current.status is not SubscriberStatus.UNSUBSCRIBED
                or current.unsubscribed_at != subscriber.unsubscribed_at
                or (choice is None and _choice(current) != _choice(subscriber))
            ):
                return None
            return current.model_copy(update={
                "status": SubscriberStatus.CONFIRMED, "confirmed_at": now, "updated_at": now,
                "unsubscribed_at": None, **_chosen(choice),
                **current.agreeing(consent or _confirmed(current.consent, now)),
            })  # fmt: skip

        return self._apply(subscriber.email, decide, now) is not None

    def unsubscribe(self, email: str, now: datetime) -> bool:
        """pending or confirmed -> unsubscribed; False if there was nothing to do."""

        def decide(current: Subscriber) -> Subscriber | None:
            if current.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
                return None
            return current.model_copy(
                update={"status": SubscriberStatus.UNSUBSCRIBED, "unsubscribed_at": now, "updated_at": now}
            )

        return self._apply(email, decide, now) is not None

    def leave_topics(self, email: str, topics: Iterable[str], now: datetime) -> Subscriber | None:
        """Stop following `topics` (a reader of chosen topics, pending or confirmed); the subscriber as it is
        now, or None when there was nothing to leave. A reader left with no topics gets nothing."""
        leaving = set(topics)

        def decide(current: Subscriber) -> Subscriber | None:
            if current.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED) or current.topics is None:
                return None
            remaining = [topic for topic in current.topics if topic not in leaving]
            if remaining == current.topics:
                return None
            return current.model_copy(update={"topics": remaining, "updated_at": now})

        return self._apply(email, decide, now)

    def suppress(self, email: str, status: SubscriberStatus, now: datetime) -> bool:
        """Mark a known address bounced or complained, for good; a complaint is never downgraded."""

        def decide(current: Subscriber) -> Subscriber | None:
            if current.status is SubscriberStatus.COMPLAINED:
                return None
            return current.model_copy(update={"status": status, "updated_at": now})

        return self._apply(email, decide, now) is not None

    def set_preferences(
        self,
        email: str,
        *,
        frequency: Frequency,
        topics: list[str] | None,
        keep_topics: bool = False,
        breaking: bool | None = None,
        now: datetime,
    ) -> Subscriber | None:
        """Choose instant or digest, and the topics (None: everything; unless `keep_topics`), and breaking-news
        alerts (None: as they are); a confirmed subscriber moves to those audiences at once. None unless the
        subscriber is pending or confirmed."""

        def decide(current: Subscriber) -> Subscriber | None:
            if current.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
                return None
            chosen = current.topics if keep_topics else topics
            alerts = current.breaking if breaking is None else breaking
            return current.model_copy(
                update={"frequency": frequency, "topics": chosen, "breaking": alerts, "updated_at": now}
            )

        return self._apply(email, decide, now)

    # ------------------------------------------------------------------ erasure (services.erasure), in its order
    def stop_mailing(self, email: str, now: datetime) -> int:
        """The person being erased follows nothing from now on (no topic, and not everything), so no audience
        lists them; how many topic membership items went (with the change, in its transaction)."""
        removed = 0

        def decide(current: Subscriber) -> Subscriber | None:
            nonlocal removed
            removed = len(_memberships(current))
            if current.topics == [] and not current.breaking:
                return None
            return current.model_copy(update={"topics": [], "breaking": False, "updated_at": now})

        self._apply(email, decide, now)
        return removed

    def forget_consent(self, email: str) -> bool:
        """Remove the consent record and its history; False if there is no such subscriber."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(email),
            UpdateExpression="SET revision = if_not_exists(revision, :zero) + :one REMOVE consent, consent_history",
            ConditionExpression="attribute_exists(email)",
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
        )

    def erase(self, email: str) -> bool:
        """Delete the subscriber, consent record included, and every membership item; False if unknown."""
        for attempt in range(_RACE_RETRIES):
            current = self.get(email)
            if current is None:
                return False
            if self._write(current, None):
                return True
            _pause(attempt)
        raise ServiceBusy("this subscriber keeps changing; try again in a moment")

    # ------------------------------------------------------------------ a deleted topic's readers
    def topic_readers(self, topic: str, *, limit: int) -> list[str]:
        """Up to `limit` addresses that still hold a membership of `topic` (any frequency and shard): at most
        one Query per partition, and the partitions empty as their readers are dropped."""
        found: list[str] = []
        for frequency in Frequency:
            for shard in range(FANOUT_SHARDS):
                if len(found) >= limit:
                    return found
                with aws_errors():
                    reply = self._client.query(
                        TableName=self._members,
                        KeyConditionExpression="audience = :audience",
                        ExpressionAttributeValues={":audience": {"S": topic_audience_key(frequency, topic, shard)}},
                        ProjectionExpression="email",
                        Limit=limit - len(found),
                    )
                found += [str(item["email"]["S"]) for item in reply["Items"]]
        return found

    def drop_topic(self, email: str, topic: str, now: datetime) -> None:
        """A deleted topic leaves the reader's topics, with its membership items (in one transaction); a
        membership that no record accounts for is removed on its own."""

        def decide(current: Subscriber) -> Subscriber | None:
            if current.topics is None or topic not in current.topics:
                return None
            return current.model_copy(update={"topics": [t for t in current.topics if t != topic], "updated_at": now})

        if self._apply(email, decide, now) is None:
            for frequency in Frequency:
                with aws_errors():
                    self._client.delete_item(
                        TableName=self._members, Key=_member_key(topic_audience(frequency, topic, email), email)
                    )

    def _apply(self, email: str, decide: Callable[[Subscriber], Subscriber | None], now: datetime) -> Subscriber | None:
        """Read, decide and write until the write finds what was read; the subscriber written, or None when
        `decide` found nothing to do (or nobody with that address)."""
        for attempt in range(_RACE_RETRIES):
            current = self.get(email)
            if current is None:
                return None
            after = decide(current)
            if after is None:
                return None
            after = after.model_copy(update={"revision": current.revision + 1})
            if (
                _memberships(after) != _memberships(current)
                or _audience(after) != _audience(current)
                or _breaking_audience(after) != _breaking_audience(current)
            ):
                after = after.model_copy(update={"audience_changed_at": now})
            if self._write(current, after):
                return after
            _pause(attempt)
        raise ServiceBusy("this subscriber keeps changing; try again in a moment")

    def _write(self, current: Subscriber, after: Subscriber | None) -> bool:
        """Write `after` (None: delete) over `current`, with the membership items that change; False when the
        subscriber is no longer at the revision read."""
        condition = "attribute_exists(email) AND " + (
            "revision = :revision" if current.revision else "attribute_not_exists(revision)"
        )
        values: dict[str, Any] = {":revision": {"N": str(current.revision)}} if current.revision else {}
        if after is None:
            own: dict[str, Any] = {"Delete": {"TableName": self._table, "Key": _key(current.email)}}
        else:
            own = {"Update": {"TableName": self._table, "Key": _key(current.email), **_state_update(after)}}
            values.update(own["Update"].pop("ExpressionAttributeValues"))
        body = next(iter(own.values()))
        body["ConditionExpression"] = condition
        if values:
            body["ExpressionAttributeValues"] = values
        before_keys = _memberships(current)
        after_keys = _memberships(after) if after is not None else set()
        moved = after is not None and (after.topics != current.topics or after.name != current.name)
        writes = [own]
        writes += [
            {"Delete": {"TableName": self._members, "Key": _member_key(key, current.email)}}
            for key in sorted(before_keys - after_keys)
        ]
        if after is not None:
            writes += [
                {"Put": {"TableName": self._members, "Item": _member_item(key, after)}}
                for key in sorted(after_keys if moved else after_keys - before_keys)
            ]
        if len(writes) == 1:
            call = self._client.delete_item if after is None else self._client.update_item
            return write_if(call, **body)
        try:
            with aws_errors():
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and set(cancellation_reasons(exc)) <= {
                "ConditionalCheckFailed",
                "None",
                "TransactionConflict",
            }:
                return False
            raise
        return True


_RACE_RETRIES = 8
_STATE_FIELDS = ("status", "frequency", "topics", "confirmed_at", "unsubscribed_at", "updated_at", "consent",
                 "consent_history", "audience_changed_at", "revision", "breaking")  # fmt: skip


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not security


def _choice(subscriber: Subscriber) -> tuple[Frequency, tuple[str, ...] | None, bool]:
    return (
        subscriber.frequency,
        tuple(subscriber.topics) if subscriber.topics is not None else None,
        subscriber.breaking,
    )


def _chosen(choice: Choice | None) -> dict[str, object]:
    return (
        {} if choice is None else {"frequency": choice.frequency, "topics": choice.topics, "breaking": choice.breaking}
    )


def _confirmed(consent: Consent | None, now: datetime) -> Consent | None:
    return consent.model_copy(update={"confirmed_at": now}) if consent is not None else None


def _audience(subscriber: Subscriber) -> str | None:
    """The `by-audience` key of a subscriber of everything, while confirmed."""
    if subscriber.status is not SubscriberStatus.CONFIRMED or subscriber.topics is not None:
        return None
    return audience(subscriber.frequency, subscriber.email)


def _breaking_audience(subscriber: Subscriber) -> str | None:
    """The `by-breaking` key of a reader who asked for breaking news, while confirmed."""
    if subscriber.status is not SubscriberStatus.CONFIRMED or not subscriber.breaking:
        return None
    return breaking_audience_key(shard_of(subscriber.email))


def _memberships(subscriber: Subscriber | None) -> set[str]:
    """The topic audiences (TopicMembersTable keys) a confirmed reader of chosen topics is in."""
    if subscriber is None or subscriber.status is not SubscriberStatus.CONFIRMED or subscriber.topics is None:
        return set()
    return {topic_audience(subscriber.frequency, topic, subscriber.email) for topic in subscriber.topics}


def _member_key(audience_key: str, email: str) -> dict[str, Any]:
    return {"audience": {"S": audience_key}, "email": {"S": email}}


def _member_item(audience_key: str, subscriber: Subscriber) -> dict[str, Any]:
    # The reader's whole topic set rides along, so fan-out can tell, in one topic's pass, who it queued in an
    # earlier topic's pass without reading anything else.
    item = {"audience": audience_key, "email": subscriber.email, "name": subscriber.name,
            "topics": list(subscriber.topics or [])}  # fmt: skip
    return to_attributes(item)


def _state_update(after: Subscriber) -> dict[str, Any]:
    """SET (or REMOVE, for None) every field a transition may change, and the derived `audience`."""
    stored = _stored(after)
    stored["revision"] = after.revision
    if after.audience_changed_at is not None:
        stored["audience_changed_at"] = iso(after.audience_changed_at)
    fields: dict[str, Any] = {name: stored.get(name) for name in _STATE_FIELDS}
    fields["audience"] = _audience(after)
    fields["breaking_audience"] = _breaking_audience(after)
    if after.status is not SubscriberStatus.PENDING:
        fields["expires_at"] = None
    names = {f"#f{index}": name for index, name in enumerate(fields)}
    sets = [f"#f{index} = :f{index}" for index, value in enumerate(fields.values()) if value is not None]
    removes = [f"#f{index}" for index, value in enumerate(fields.values()) if value is None]
    values = {f":f{index}": attribute for index, (name, value) in enumerate(fields.items())
              if value is not None for attribute in [to_attributes({name: value})[name]]}  # fmt: skip
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {"UpdateExpression": expression, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
