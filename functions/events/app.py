"""EventsFunction: the streams of ArticlesTable, SubscribersTable and PublicationsTable, turned into
Newsdesk's events on the stack's EventBridge bus (newsdesk.services.events). The event sources' filters
let through only the changes that make an event."""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from newsdesk.dal.dynamodb import from_attributes
from newsdesk.dependencies import container
from newsdesk.observability import logger, tracer
from newsdesk.services.events import ChangeSource, StreamChange
from newsdesk.settings import ArticleSettings, PublicationSettings, SubscriberSettings

if TYPE_CHECKING:
    # Types only: importing Powertools' batch package loads its processors (asyncio among them), which this
    # function, answering its batch item failures itself, never uses.
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _source(stream_arn: str) -> ChangeSource | None:
    table = stream_arn.split(":table/", 1)[-1].split("/", 1)[0]
    settings = container().settings
    return {
        settings(ArticleSettings).articles_table: ChangeSource.ARTICLES,
        settings(SubscriberSettings).subscribers_table: ChangeSource.SUBSCRIBERS,
        settings(PublicationSettings).publications_table: ChangeSource.PUBLICATIONS,
    }.get(table)


def stream_change(record: dict[str, Any]) -> StreamChange | None:
    source = _source(str(record.get("eventSourceARN") or ""))
    change = record.get("dynamodb")
    if source is None or not change:
        logger.warning("stream record of an unknown table ignored", extra={"event_id": record.get("eventID")})
        return None
    created = change.get("ApproximateCreationDateTime")
    old, new = change.get("OldImage"), change.get("NewImage")
    return StreamChange(
        source=source,
        record_id=str(record["eventID"]),
        sequence=str(change["SequenceNumber"]),
        old=from_attributes(old) if old else None,
        new=from_attributes(new) if new else None,
        at=datetime.fromtimestamp(int(created), UTC) if created else datetime.now(UTC),
    )


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    changes = [change for raw in event.get("Records") or [] if (change := stream_change(raw)) is not None]
    first_failed = container().change_events.publish(changes)
    # The stream gives back the first change not on the bus, and every later one (they stay in order).
    return {"batchItemFailures": [{"itemIdentifier": first_failed}] if first_failed else []}
