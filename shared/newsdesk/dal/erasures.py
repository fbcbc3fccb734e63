"""Erasures in DynamoDB: one item per erased person, keyed by the erasure's id (a keyed hash of the address).

While the erasure runs the item holds the address (the steps that still need it read it here, so any worker
can resume) and how far it got; once done it keeps only the id, the times and the counts, and expires by TTL
TOMBSTONE_DAYS later. Until then it is the tombstone: an event about the person still in flight is dropped.
Every change is conditional on the step (and position) it read, so two workers never count a page twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import aws_errors, from_attributes, to_attributes, write_if
from newsdesk.models.erasures import ErasedCounts, Erasure, ErasureState, ErasureStep

TOMBSTONE_DAYS = 14
"""How long a finished erasure's tombstone stays: longer than an event can wait in a queue (SQS keeps a
message 14 days at most), so every event about the person made before the erasure meets it."""
_NAMES = {"#state": "state", "#step": "step"}


@dataclass(frozen=True)
class StoredErasure:
    erasure: Erasure
    email: str | None
    """The address while the erasure runs (removed when it is done)."""
    position: str | None
    """Where the current step stopped (an opaque cursor), if it stopped within its work."""


def _key(erasure_id: str) -> dict[str, Any]:
    return {"pk": {"S": erasure_id}}


def _stored(item: Mapping[str, Any]) -> StoredErasure:
    plain = from_attributes(item)
    counts = {name: int(plain.get(name, 0)) for name in ErasedCounts.model_fields}
    erasure = Erasure(id=plain["pk"], state=plain["state"], step=plain.get("step"), requested_at=plain["requested_at"],
                      updated_at=plain["updated_at"], finished_at=plain.get("finished_at"),
                      erased=ErasedCounts(**counts))  # fmt: skip
    return StoredErasure(erasure, plain.get("email"), plain.get("position"))


class ErasureRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, erasure_id: str) -> StoredErasure | None:
        with aws_errors():
            reply = self._client.get_item(TableName=self._table, Key=_key(erasure_id), ConsistentRead=True)
        return _stored(reply["Item"]) if "Item" in reply else None

    def begin(self, erasure_id: str, email: str, now: datetime) -> StoredErasure:
        """Start erasing `email` (the tombstone is this write), or find the erasure already running."""
        item = {"pk": erasure_id, "state": ErasureState.RUNNING.value, "step": next(iter(ErasureStep)).value,
                "email": email, "requested_at": iso(now), "updated_at": iso(now)}  # fmt: skip
        # A finished erasure is started again: the address was stored again since (a new sign-up).
        write_if(
            self._client.put_item,
            TableName=self._table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(pk) OR #state = :done",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":done": {"S": ErasureState.DONE.value}},
        )
        found = self.get(erasure_id)
        assert found is not None  # written, or running already; nothing deletes a running erasure
        return found

    def progress(
        self, current: StoredErasure, *, step: ErasureStep, position: str | None, erased: ErasedCounts, now: datetime
    ) -> bool:
        """Record work done from `current`: counts added, and the step (and position in it) reached; False
        when another worker moved the erasure on meanwhile (its work is counted there)."""
        was = current.erasure
        assert was.step is not None
        values: dict[str, Any] = {":running": {"S": ErasureState.RUNNING.value}, ":was": {"S": was.step.value},
                                  ":step": {"S": step.value}, ":now": {"S": iso(now)}}  # fmt: skip
        sets = ["#step = :step", "updated_at = :now"]
        adds = []
        for name, count in erased.model_dump().items():
            if count:
                adds.append(f"{name} :{name}")
                values[f":{name}"] = {"N": str(count)}
        if position is not None:
            sets.append("#position = :position")
            values[":position"] = {"S": position}
        condition = "#state = :running AND #step = :was AND "
        if current.position is None:
            condition += "attribute_not_exists(#position)"
        else:
            condition += "#position = :was_position"
            values[":was_position"] = {"S": current.position}
        expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
        if position is None:
            expression += " REMOVE #position"
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(was.id),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={**_NAMES, "#position": "position"},
            ExpressionAttributeValues=values,
        )

    def finish(self, current: StoredErasure, now: datetime) -> bool:
        """Done: the address goes; the tombstone stays TOMBSTONE_DAYS. False if finished by another worker."""
        expires = int((now + timedelta(days=TOMBSTONE_DAYS)).timestamp())
        return write_if(
            self._client.update_item,
            TableName=self._table,
            Key=_key(current.erasure.id),
            UpdateExpression="SET #state = :done, finished_at = :now, updated_at = :now, expires_at = :expires "
            "REMOVE email, #step, #position",
            ConditionExpression="#state = :running",
            ExpressionAttributeNames={**_NAMES, "#position": "position"},
            ExpressionAttributeValues={
                ":done": {"S": ErasureState.DONE.value},
                ":running": {"S": ErasureState.RUNNING.value},
                ":now": {"S": iso(now)},
                ":expires": {"N": str(expires)},
            },
        )

    def tombstones(self, erasure_ids: Iterable[str]) -> dict[str, Erasure]:
        """The erasures among these ids (running or finished within TOMBSTONE_DAYS)."""
        keys = [_key(erasure_id) for erasure_id in dict.fromkeys(erasure_ids)]
        found: dict[str, Erasure] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True,
                              "ProjectionExpression": "pk, #state, requested_at, updated_at, finished_at",
                              "ExpressionAttributeNames": {"#state": "state"}}
            }  # fmt: skip
            while request:
                with aws_errors():
                    reply = self._client.batch_get_item(RequestItems=request)
                for item in reply["Responses"].get(self._table, []):
                    stored = _stored(item)
                    found[stored.erasure.id] = stored.erasure
                request = reply.get("UnprocessedKeys") or {}
        return found
