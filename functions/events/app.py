"""EventsFunction: the streams of ArticlesTable, SubscribersTable and PublicationsTable, turned into
Newsdesk's events on the stack's EventBridge bus (newsdesk.services.events). The event sources' filters
let through only the changes that make an event."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from newsdesk.dependencies import container
from newsdesk.observability import logger, tracer
from newsdesk.services.events import ChangeSource, StreamChange
from newsdesk.settings import ArticleSettings, PublicationSettings, SubscriberSettings

if TYPE_CHECKING:
    # Types only: importing Powertools' batch package loads its processors (asyncio among them), which this
    # function, answering its batch item failures itself, never uses.
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _plain(value: Any) -> Any:
    """Stream images hold numbers as Decimal and sets as sets: JSON's kinds instead."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | set):
        return [_plain(item) for item in value]
    return value


def _source(stream_arn: str) -> ChangeSource | None:
    table = stream_arn.split(":table/", 1)[-1].split("/", 1)[0]
    settings = container().settings
    return {
        settings(ArticleSettings).articles_table: ChangeSource.ARTICLES,
        settings(SubscriberSettings).subscribers_table: ChangeSource.SUBSCRIBERS,
        settings(PublicationSettings).publications_table: ChangeSource.PUBLICATIONS,
    }.get(table)


def stream_change(raw: dict[str, Any]) -> StreamChange | None:
    record = DynamoDBRecord(raw)
    source = _source(record.event_source_arn or "")
    change = record.dynamodb
    if source is None or change is None:
        logger.warning("stream record of an unknown table ignored", extra={"event_id": record.event_id})
        return None
    created = change.approximate_creation_date_time
    return StreamChange(
        source=source,
        record_id=str(record.event_id),
        sequence=str(change.sequence_number),
        old=_plain(change.old_image) if change.old_image else None,
        new=_plain(change.new_image) if change.new_image else None,
        at=datetime.fromtimestamp(int(created), UTC) if created else datetime.now(UTC),
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    changes = [change for raw in event.get("Records") or [] if (change := stream_change(raw)) is not None]
    first_failed = container().change_events.publish(changes)
    # The stream gives back the first change not on the bus, and every later one (they stay in order).
    return {"batchItemFailures": [{"itemIdentifier": first_failed}] if first_failed else []}
