"""UploadFunction: files uploaded to the UploadsBucket (S3 events), and its two queues (SQS).

`articles/*.md` becomes an article, `subscribers/*.csv` is imported; the ImportQueue carries the rest of
a large import, the ConfirmationQueue the confirmation emails of imported addresses. A failed S3 event
is retried by Lambda's asynchronous invocation; a failed queue message is reported as a batch item failure.
"""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from pydantic import TypeAdapter

from newsdesk.batches import Record, process_batch
from newsdesk.dependencies import container
from newsdesk.models.uploads import ImportTask, ObjectUpload
from newsdesk.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


@cache
def import_tasks() -> TypeAdapter[ImportTask]:
    """The queues' tasks, validated by an adapter built when the first one arrives (not at every cold start)."""
    return TypeAdapter(ImportTask)


def object_upload(record: Record) -> ObjectUpload:
    s3 = record["s3"]
    s3_object = s3["object"]
    return ObjectUpload(
        bucket=s3["bucket"]["name"],
        # S3 sends keys form-encoded: "My+Story+%C3%A9.md" is "My Story é.md".
        key=unquote_plus(s3_object["key"], encoding="utf-8", errors="strict"),
        size=s3_object.get("size"),
        etag=s3_object.get("eTag") or "",
        version_id=s3_object.get("versionId"),
        sequencer=s3_object.get("sequencer") or "",
    )


def run_task(record: Record, lambda_context: LambdaContext) -> None:
    container().upload_service.run_task(
        import_tasks().validate_json(record["body"]),
        seconds_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
    )


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    records = event["Records"]
    if records and records[0].get("eventSource") == "aws:sqs":
        return process_batch(records, lambda record: run_task(record, context))
    service = container().upload_service
    applied = []
    for record in records:
        upload = service.receive(
            object_upload(record), seconds_left=lambda: context.get_remaining_time_in_millis() / 1000
        )
        if upload is not None:
            applied.append({"key": upload.key, "outcome": upload.outcome.value})
    return {"uploads": applied}
