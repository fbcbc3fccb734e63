"""Partial batch responses for the functions that SQS queues and DynamoDB streams invoke (ReportBatchItemFailures).

Each record is handled in turn; a record whose handling raised is logged and reported as a batch item failure,
so its event source delivers it again, and when every record failed the invocation fails. That is what
Powertools' `BatchProcessor` does; its package, though, loads every processor it has (the asynchronous ones
bring asyncio) and its data classes load the classes of every event source, together about 0.1 s of each cold
start (bench/cold_start.py) for a loop of a few lines. Records stay the dicts Lambda sends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from newsdesk.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

Record = dict[str, Any]


class BatchFailedError(Exception):
    """Every record of a batch failed: the invocation fails, and the event source delivers the batch again."""


def message_id(record: Record) -> str:
    """An SQS record's identifier in a batch item failure."""
    return str(record["messageId"])


def sequence_number(record: Record) -> str:
    """A DynamoDB stream record's identifier in a batch item failure (the stream resumes from the lowest)."""
    return str(record["dynamodb"]["SequenceNumber"])


def process_batch(
    records: Sequence[Record], handle: Callable[[Record], None], *, item_id: Callable[[Record], str] = message_id
) -> PartialItemFailureResponse:
    """Handle every record; report the ones that raised, or fail the invocation when none succeeded."""
    failed: list[str] = []
    for record in records:
        try:
            handle(record)
        except Exception:  # any failure is this record's alone: the others are still handled
            item = item_id(record)
            logger.exception("a record failed; its event source delivers it again", extra={"item": item})
            failed.append(item)
    if records and len(failed) == len(records):
        raise BatchFailedError(f"all {len(records)} records of the batch failed (each is logged above)")
    return {"batchItemFailures": [{"itemIdentifier": item} for item in failed]}
