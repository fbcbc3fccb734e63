"""TallyFunction: the delivery ledger's stream keeps each delivery's counts by state, and finishes it.

The event source uses a tumbling window only for the `shardId` Lambda then passes along: counts are applied
per stream shard with its last sequence number, so a retried batch is never counted twice. A delivery's
records are in several ledger partitions (`<delivery id>#<n>`), so on several stream shards: each shard's
changes are summed per delivery, into that shard's own counter item.
"""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dal.ledger import DUPLICATE_PREFIX, delivery_of
from newsdesk.dal.publications import DUPLICATE
from newsdesk.dependencies import container
from newsdesk.observability import logger, tracer
from newsdesk.services.delivery import LedgerChange


def _state(image: dict[str, Any] | None) -> str | None:
    return str(image["state"]["S"]) if image and "state" in image else None


def ledger_change(record: dict[str, Any]) -> LedgerChange | None:
    """What one stream record changed about a ledger record's state (or a recipient's second copy, counted
    out of the total once); None for other items."""
    stream = record.get("dynamodb") or {}
    keys = stream.get("Keys") or {}
    sort_key = str((keys.get("sk") or {}).get("S", ""))
    if sort_key.startswith(DUPLICATE_PREFIX):
        if record.get("eventName") != "INSERT":
            return None
        return LedgerChange(delivery_id=delivery_of(str(keys["pk"]["S"])), sequence=str(stream["SequenceNumber"]),
                            old_state=None, new_state=DUPLICATE, late_send=False)  # fmt: skip
    if not sort_key.startswith("to#"):
        return None
    old, new = stream.get("OldImage"), stream.get("NewImage")
    old_state, new_state = _state(old), _state(new)
    late = bool(new and "late_send" in new) and not bool(old and "late_send" in old)
    if old_state == new_state and not late:
        return None
    return LedgerChange(
        delivery_id=delivery_of(str(keys["pk"]["S"])),
        sequence=str(stream["SequenceNumber"]),
        old_state=old_state,
        new_state=new_state,
        late_send=late,
    )


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    changes = [change for record in event.get("Records") or [] if (change := ledger_change(record))]
    if changes:
        container().tally.apply(str(event["shardId"]), changes)
    return {"state": {}}
