"""Webhook endpoints and their deliveries in DynamoDB (WebhooksTable; docs/data-model.md).

An endpoint is one item, written in one transaction with one subscription item per event type it wants
(so dispatch reads only the endpoints that asked for an event's type) and the count of endpoints (kept
under MAX_WEBHOOKS, so dispatch stays bounded). A delivery is one item per (endpoint, event): the body as
first sent (what a retry or replay sends again), its state and its latest attempts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
from newsdesk.errors import Conflict, NotFound, PreconditionFailed
from newsdesk.models.events import EventType
from newsdesk.models.webhooks import Attempt, DeliveryState, Webhook, WebhookDelivery

MAX_WEBHOOKS = 100
"""Endpoints per stack: every event is offered to each endpoint that wants its type, so this bounds dispatch."""
DELIVERY_RETENTION = timedelta(days=30)
"""Deliveries (and the bodies a replay sends) are kept this long after their last send."""
KEPT_ATTEMPTS = 20
_ENDPOINT_SK = "#webhook"
_COUNT_KEY = {"pk": {"S": "webhooks#count"}, "sk": {"S": "#count"}}
_ENDPOINTS_LIST = "webhooks"
_LIST_KEYS = frozenset({"pk", "sk", "list", "list_sort"})
_STATE = {"#state": "state", "#round": "round"}
_VERSION = {"#version": "version"}
_NEXT_VERSION = "#version = if_not_exists(#version, :zero) + :one"
"""Every write of an endpoint raises its version, so an editor's update made from an older read fails."""
_ONE_MORE = {":zero": {"N": "0"}, ":one": {"N": "1"}}


def _endpoint_key(webhook_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"webhook#{webhook_id}"}, "sk": {"S": _ENDPOINT_SK}}


def _delivery_key(webhook_id: str, event_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"webhook#{webhook_id}"}, "sk": {"S": f"delivery#{event_id}"}}


def _subscription_key(kind: EventType, webhook_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"type#{kind.value}"}, "sk": {"S": f"webhook#{webhook_id}"}}


def _deliveries_list(webhook_id: str) -> str:
    return f"deliveries#{webhook_id}"


@dataclass(frozen=True)
class StoredWebhook:
    """An endpoint with what only the delivery needs: its sealed secret."""

    webhook: Webhook
    sealed_secret: str


@dataclass(frozen=True)
class StoredDelivery:
    delivery: WebhookDelivery
    body: str
    round: int
    tries: int
    """Attempts made in the current round."""
    explicit: bool
    """A test or a replay: sent even to a disabled endpoint."""


def _stored(webhook: Webhook, exclude: set[str] | None = None) -> dict[str, Any]:
    """The endpoint's fields as stored: times in the one format conditions compare (clock.iso)."""
    item = webhook.model_dump(mode="json", exclude=exclude)
    item.update({key: iso(value) for key, value in webhook if isinstance(value, datetime) and key in item})
    return item


def _webhook(item: dict[str, Any]) -> Webhook:
    return Webhook.model_validate(item)


def _delivery(item: dict[str, Any]) -> StoredDelivery:
    return StoredDelivery(
        delivery=WebhookDelivery.model_validate(item),
        body=str(item["body"]),
        round=int(item.get("round", 1)),
        tries=int(item.get("tries", 0)),
        explicit=bool(item.get("explicit", False)),
    )


class WebhookRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ------------------------------------------------------------------ endpoints
    def create(self, webhook: Webhook, sealed_secret: str) -> None:
        item = {
            **_stored(webhook),
            "pk": f"webhook#{webhook.id}",
            "sk": _ENDPOINT_SK,
            "secret_sealed": sealed_secret,
            "list": _ENDPOINTS_LIST,
            "list_sort": f"{iso(webhook.created_at)}#{webhook.id}",
        }
        writes = [
            {"Update": {
                "TableName": self._table,
                "Key": _COUNT_KEY,
                "UpdateExpression": "ADD #count :one",
                "ConditionExpression": "attribute_not_exists(#count) OR #count < :max",
                "ExpressionAttributeNames": {"#count": "count"},
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": str(MAX_WEBHOOKS)}},
            }},
            {"Put": {"TableName": self._table, "Item": to_attributes(item),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            *self._subscription_puts(webhook.id, webhook.events),
        ]  # fmt: skip
        try:
            self._transact(writes)
        except ClientError as exc:
            if cancellation_reasons(exc)[:1] == ["ConditionalCheckFailed"]:
                raise Conflict(
                    f"a stack may have at most {MAX_WEBHOOKS} webhooks; delete one first", code="too_many_webhooks"
                ) from exc
            raise

    def get(self, webhook_id: str) -> StoredWebhook | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_endpoint_key(webhook_id), ConsistentRead=True)
        item = reply.get("Item")
        if not item:
            return None
        found = from_attributes(item)
        return StoredWebhook(_webhook(found), str(found["secret_sealed"]))

    def reseal(self, webhook_id: str, sealed: str, resealed: str) -> bool:
        """Store the endpoint's secret sealed again (under another key), unless it changed meanwhile."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_endpoint_key(webhook_id),
            UpdateExpression="SET secret_sealed = :new",
            ConditionExpression="secret_sealed = :old",
            ExpressionAttributeValues={":new": {"S": resealed}, ":old": {"S": sealed}},
        )

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[Webhook], str | None]:
        items, next_cursor = self._list_page(_ENDPOINTS_LIST, limit=limit, cursor=cursor)
        return [_webhook(item) for item in items], next_cursor

    def update(self, old: Webhook, new: Webhook) -> None:
        """Save `new` over `old`, its subscription items with it; PreconditionFailed unless the endpoint is
        still at `old.version` (no write of any kind since it was read)."""
        names: dict[str, str] = dict(_VERSION)
        values: dict[str, Any] = {":next": new.version}
        sets, removes = ["#version = :next"], []
        for index, (name, value) in enumerate(_stored(new, exclude={"id", "created_at", "version"}).items()):
            names[f"#f{index}"] = name
            if value is None:
                removes.append(f"#f{index}")
            else:
                sets.append(f"#f{index} = :f{index}")
                values[f":f{index}"] = value
        if old.version:
            condition, values[":seen"] = "#version = :seen", old.version
        else:
            condition = "attribute_not_exists(#version)"  # stored before endpoints had versions: version 0
        update = {
            "TableName": self._table,
            "Key": _endpoint_key(old.id),
            "UpdateExpression": f"SET {', '.join(sets)}" + (f" REMOVE {', '.join(removes)}" if removes else ""),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_attributes(values),
        }
        writes: list[dict[str, Any]] = [{"Update": update}]
        writes += self._subscription_puts(old.id, [kind for kind in new.events if kind not in old.events])
        writes += [
            {"Delete": {"TableName": self._table, "Key": _subscription_key(kind, old.id)}}
            for kind in old.events
            if kind not in new.events
        ]
        try:
            self._transact(writes)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                message = f"the webhook changed since version {old.version} was read; read it again and retry"
                raise PreconditionFailed(message) from exc
            raise

    def delete(self, webhook: Webhook) -> None:
        writes = [
            {"Delete": {"TableName": self._table, "Key": _endpoint_key(webhook.id),
                        "ConditionExpression": "attribute_exists(pk)"}},
            {"Update": {"TableName": self._table, "Key": _COUNT_KEY, "UpdateExpression": "ADD #count :minus",
                        "ExpressionAttributeNames": {"#count": "count"},
                        "ExpressionAttributeValues": {":minus": {"N": "-1"}}}},
            *({"Delete": {"TableName": self._table, "Key": _subscription_key(kind, webhook.id)}}
              for kind in webhook.events),
        ]  # fmt: skip
        try:
            self._transact(writes)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise NotFound(f"no webhook {webhook.id!r}") from exc
            raise

    def subscribers_of(self, kinds: Iterable[EventType]) -> dict[EventType, list[str]]:
        """The ids of the endpoints that asked for each event type (one Query per type)."""
        found: dict[EventType, list[str]] = {}
        for kind in kinds:
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"type#{kind.value}"}},
                "ProjectionExpression": "sk",
            }
            ids: list[str] = []
            while True:
                with aws_errors():
                    reply = self._client.query(**request)
                ids += [str(item["sk"]["S"]).removeprefix("webhook#") for item in reply["Items"]]
                if "LastEvaluatedKey" not in reply:
                    break
                request["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
            found[kind] = ids
        return found

    def endpoints(self, webhook_ids: Iterable[str]) -> dict[str, Webhook]:
        """The endpoints of these ids that still exist (strongly consistent)."""
        keys = [_endpoint_key(webhook_id) for webhook_id in dict.fromkeys(webhook_ids)]
        found: dict[str, Webhook] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            while request:
                with aws_errors():
                    reply = self._client.batch_get_item(RequestItems=request)
                for item in reply["Responses"].get(self._table, []):
                    webhook = _webhook(from_attributes(item))
                    found[webhook.id] = webhook
                request = reply.get("UnprocessedKeys") or {}
        return found

    def record_success(self, webhook_id: str, now: datetime) -> None:
        write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_endpoint_key(webhook_id),
            UpdateExpression=f"SET last_success_at = :now, {_NEXT_VERSION} REMOVE failing_since",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=_VERSION,
            ExpressionAttributeValues={":now": {"S": iso(now)}, **_ONE_MORE},
        )

    def record_failure(self, webhook_id: str, now: datetime) -> Webhook | None:
        """Note a failed attempt; the endpoint as it now stands (None if it is gone)."""
        try:
            with aws_errors():
                reply = self._client.update_item(
                    TableName=self._table,
                    Key=_endpoint_key(webhook_id),
                    UpdateExpression="SET last_failure_at = :now, failing_since = if_not_exists(failing_since, :now), "
                    + _NEXT_VERSION,
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames=_VERSION,
                    ExpressionAttributeValues={":now": {"S": iso(now)}, **_ONE_MORE},
                    ReturnValues="ALL_NEW",
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return _webhook(from_attributes(reply["Attributes"]))

    def disable(self, webhook: Webhook, reason: str, now: datetime) -> bool:
        """Turn off an endpoint that kept failing, unless it succeeded (or was changed) meanwhile."""
        assert webhook.failing_since is not None
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_endpoint_key(webhook.id),
            UpdateExpression=f"SET enabled = :off, disabled_at = :now, disabled_reason = :reason, {_NEXT_VERSION}",
            ConditionExpression="enabled = :on AND failing_since = :since",
            ExpressionAttributeNames=_VERSION,
            ExpressionAttributeValues={
                **_ONE_MORE,
                ":off": {"BOOL": False},
                ":on": {"BOOL": True},
                ":now": {"S": iso(now)},
                ":reason": {"S": reason},
                ":since": {"S": iso(webhook.failing_since)},
            },
        )

    # ------------------------------------------------------------------ deliveries
    def add_delivery(
        self,
        webhook_id: str,
        *,
        event_id: str,
        kind: EventType,
        body: str,
        now: datetime,
        subject: str | None = None,
        explicit: bool = False,
    ) -> bool:
        """Record a new delivery (round 1, nothing tried yet); False when this event was offered before."""
        item: dict[str, Any] = {
            "pk": f"webhook#{webhook_id}",
            "sk": f"delivery#{event_id}",
            "event_id": event_id,
            "type": kind.value,
            "body": body,
            "state": DeliveryState.PENDING.value,
            "round": 1,
            "tries": 0,
            "attempt": 0,
            "explicit": explicit,
            "attempts": [],
            "created_at": iso(now),
            "updated_at": iso(now),
            "list": _deliveries_list(webhook_id),
            "list_sort": f"{iso(now)}#{event_id}",
            "expires_at": int((now + DELIVERY_RETENTION).timestamp()),
            "subject": subject,
        }
        return write_if(
            self._client.put_item,
            TableName=self._table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def delivery(self, webhook_id: str, event_id: str) -> StoredDelivery | None:
        with aws_errors():
            reply = self._client.get_item(
                TableName=self._table, Key=_delivery_key(webhook_id, event_id), ConsistentRead=True
            )
        return _delivery(from_attributes(reply["Item"])) if "Item" in reply else None

    def deliveries(
        self, webhook_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[WebhookDelivery], str | None]:
        items, next_cursor = self._list_page(_deliveries_list(webhook_id), limit=limit, cursor=cursor)
        return [WebhookDelivery.model_validate(item) for item in items], next_cursor

    def claim_attempt(
        self, webhook_id: str, event_id: str, *, round_number: int, attempt: int, now: datetime, lease: timedelta
    ) -> bool:
        """Take attempt `attempt` of round `round`: refused when it was made, or another worker is making it."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_delivery_key(webhook_id, event_id),
            UpdateExpression="SET lease_attempt = :attempt, lease_until = :until",
            ConditionExpression=(
                "#round = :round AND #state = :pending AND tries = :before AND "
                "(attribute_not_exists(lease_until) OR lease_attempt < :attempt OR lease_until < :now)"
            ),
            ExpressionAttributeNames=_STATE,
            ExpressionAttributeValues={
                ":round": {"N": str(round_number)},
                ":pending": {"S": DeliveryState.PENDING.value},
                ":before": {"N": str(attempt - 1)},
                ":attempt": {"N": str(attempt)},
                ":until": {"S": iso(now + lease)},
                ":now": {"S": iso(now)},
            },
        )

    def record_attempt(
        self,
        webhook_id: str,
        stored: StoredDelivery,
        *,
        attempt: int,
        result: Attempt,
        state: DeliveryState,
        next_retry_at: datetime | None,
    ) -> bool:
        """The outcome of an attempt this worker claimed; False if a replay started a new round meanwhile."""
        attempts = [*stored.delivery.attempts, result][-KEPT_ATTEMPTS:]
        values: dict[str, Any] = {
            ":round": stored.round,
            ":attempt": attempt,
            ":total": result.attempt,
            ":state": state.value,
            ":attempts": [entry.model_dump(mode="json") for entry in attempts],
            ":now": iso(result.at),
            ":code": result.status_code,
            ":error": result.error,
            ":next": iso(next_retry_at) if next_retry_at else None,
        }
        sets = ["tries = :attempt", "attempt = :total", "#state = :state", "attempts = :attempts", "updated_at = :now"]
        removes = ["lease_until", "lease_attempt"]
        for field, placeholder in (("status_code", ":code"), ("#error", ":error"), ("next_retry_at", ":next")):
            if values[placeholder] is None:
                removes.append(field)
                del values[placeholder]
            else:
                sets.append(f"{field} = {placeholder}")
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_delivery_key(webhook_id, stored.delivery.event_id),
            UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            ConditionExpression="#round = :round AND lease_attempt = :attempt",
            ExpressionAttributeNames={**_STATE, "#error": "error"},
            ExpressionAttributeValues=to_attributes(values),
        )

    def give_up(self, webhook_id: str, stored: StoredDelivery, *, reason: str, now: datetime) -> None:
        """Fail a pending delivery without sending (its endpoint was disabled or deleted)."""
        write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_delivery_key(webhook_id, stored.delivery.event_id),
            UpdateExpression="SET #state = :failed, #error = :reason, updated_at = :now REMOVE next_retry_at",
            ConditionExpression="#round = :round AND #state = :pending",
            ExpressionAttributeNames={**_STATE, "#error": "error"},
            ExpressionAttributeValues={
                ":failed": {"S": DeliveryState.FAILED.value},
                ":pending": {"S": DeliveryState.PENDING.value},
                ":reason": {"S": reason},
                ":now": {"S": iso(now)},
                ":round": {"N": str(stored.round)},
            },
        )

    def start_round(self, webhook_id: str, stored: StoredDelivery, *, now: datetime) -> int:
        """Send a delivery again (a replay): a new round, pending, nothing tried; the round's number."""
        round_number = stored.round + 1
        updated = write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_delivery_key(webhook_id, stored.delivery.event_id),
            UpdateExpression=(
                "SET #round = :next, #state = :pending, tries = :zero, explicit = :yes, updated_at = :now, "
                "expires_at = :expires REMOVE next_retry_at, lease_until, lease_attempt"
            ),
            ConditionExpression="#round = :round",
            ExpressionAttributeNames=_STATE,
            ExpressionAttributeValues={
                ":next": {"N": str(round_number)},
                ":round": {"N": str(stored.round)},
                ":pending": {"S": DeliveryState.PENDING.value},
                ":zero": {"N": "0"},
                ":yes": {"BOOL": True},
                ":now": {"S": iso(now)},
                ":expires": {"N": str(int((now + DELIVERY_RETENTION).timestamp()))},
            },
        )
        if not updated:
            raise Conflict("the delivery is being replayed already; try again in a moment", code="replay_conflict")
        return round_number

    def deliveries_about(self, subject: str, *, limit: int) -> list[tuple[str, str]]:
        """(webhook id, event id) of up to `limit` deliveries whose body still names the subscriber `subject`
        stands for. The index is sparse (a scrubbed body leaves it), so the first page is always what is left."""
        with aws_errors():
            reply = self._client.query(
                TableName=self._table,
                IndexName="by-subject",
                KeyConditionExpression="subject = :subject",
                ExpressionAttributeValues={":subject": {"S": subject}},
                Limit=limit,
            )
        return [
            (str(item["pk"]["S"]).removeprefix("webhook#"), str(item["sk"]["S"]).removeprefix("delivery#"))
            for item in reply["Items"]
        ]

    def replace_body(self, webhook_id: str, event_id: str, body: str) -> bool:
        """Keep a scrubbed body in place of the stored one, and stop naming the subject; False if it named
        nobody any more (scrubbed already, or expired)."""
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_delivery_key(webhook_id, event_id),
            UpdateExpression="SET body = :body REMOVE subject",
            ConditionExpression="attribute_exists(subject)",
            ExpressionAttributeValues={":body": {"S": body}},
        )

    # ------------------------------------------------------------------ plumbing
    def _subscription_puts(self, webhook_id: str, kinds: Sequence[EventType]) -> list[dict[str, Any]]:
        return [
            {"Put": {"TableName": self._table, "Item": {**_subscription_key(kind, webhook_id),
                                                        "webhook_id": {"S": webhook_id}}}}
            for kind in kinds
        ]  # fmt: skip

    def _list_page(self, listed: str, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, one Query of at most limit + 1 items (the extra one says whether more follow)."""
        values = {":list": {"S": listed}}
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-list",
            "KeyConditionExpression": "#list = :list",
            "ExpressionAttributeNames": {"#list": "list"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        return query_page(self._client.query, request, limit=limit, cursor=cursor, key_names=_LIST_KEYS,
                          partition={"list": values[":list"]})  # fmt: skip

    def _transact(self, writes: list[dict[str, Any]]) -> None:
        with aws_errors():
            self._client.transact_write_items(TransactItems=writes)
