"""Per-recipient delivery records: one per (article, recipient), and the claim that makes sends unique.

The record is written conditionally *before* the send: whoever writes it first is the only one who may
mail that recipient that article, so duplicated batches, redeliveries and concurrent mailers cannot send
twice. Recipients are keyed by a hash of their address: erasing a subscriber leaves no address here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from newsdesk.clock import iso
from newsdesk.dal.dynamodb import aws_errors, error_code, from_attributes, to_attributes, write_if


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


def recipient_key(email: str) -> str:
    return "to#" + hashlib.sha256(email.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Existing:
    """A record someone wrote first: its outcome, and the batch that wrote it."""

    outcome: Outcome
    batch_id: str


def _key(delivery_id: str, email: str) -> dict[str, Any]:
    return {"pk": {"S": delivery_id}, "sk": {"S": recipient_key(email)}}


class DeliveryRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def claim(self, delivery_id: str, email: str, outcome: Outcome, *, batch_id: str, at: datetime) -> Existing | None:
        """Record `outcome` for the recipient unless a record exists; None when ours is written,
        else the record that was there first."""
        item = {"pk": delivery_id, "sk": recipient_key(email), "outcome": outcome.value,
                "batch_id": batch_id, "at": iso(at)}  # fmt: skip
        try:
            with aws_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item=to_attributes(item),
                    ConditionExpression="attribute_not_exists(sk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = from_attributes(exc.response.get("Item") or {})
            return Existing(Outcome(old.get("outcome", Outcome.SENT.value)), str(old.get("batch_id", "")))
        return None

    def settle(self, delivery_id: str, email: str, outcome: Outcome, detail: str) -> None:
        """Change a claimed record's outcome (a send that SES refused for good)."""
        with aws_errors():
            self._client.update_item(
                TableName=self._table,
                Key=_key(delivery_id, email),
                UpdateExpression="SET outcome = :outcome, detail = :detail",
                ExpressionAttributeValues={":outcome": {"S": outcome.value}, ":detail": {"S": detail[:500]}},
            )

    def unclaim(self, delivery_id: str, email: str, batch_id: str) -> None:
        """Remove our claim on a recipient we did not manage to send to, so a retry will."""
        write_if(
            self._client.delete_item,
            TableName=self._table,
            Key=_key(delivery_id, email),
            ConditionExpression="batch_id = :batch",
            ExpressionAttributeValues={":batch": {"S": batch_id}},
        )
