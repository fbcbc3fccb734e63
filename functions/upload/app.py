"""UploadFunction: files uploaded to the UploadsBucket (S3 events), and its two queues (SQS).

`articles/*.md` becomes an article, `subscribers/*.csv` is imported; the ImportQueue carries the rest of
a large import, the ConfirmationQueue the confirmation emails of imported addresses. A failed S3 event
is retried by Lambda's asynchronous invocation; a failed queue message is reported as a batch item failure.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter

from newsdesk.dependencies import container
from newsdesk.models.uploads import ImportTask, ObjectUpload
from newsdesk.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)
tasks: TypeAdapter[ImportTask] = TypeAdapter(ImportTask)


def object_upload(record: S3EventRecord) -> ObjectUpload:
    s3_object = record.s3.get_object
    return ObjectUpload(
        bucket=record.s3.bucket.name,
        # S3 sends keys form-encoded: "My+Story+%C3%A9.md" is "My Story é.md".
        key=unquote_plus(s3_object.key, encoding="utf-8", errors="strict"),
        size=s3_object.get("size"),
        etag=s3_object.etag,
        version_id=s3_object.version_id,
        sequencer=s3_object.get("sequencer") or "",
    )


def run_task(record: SQSRecord, lambda_context: LambdaContext) -> None:
    container().upload_service.run_task(
        tasks.validate_json(record.body),
        seconds_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:sqs":
        return process_partial_response(event=event, record_handler=run_task, processor=processor, context=context)
    service = container().upload_service
    applied = []
    for record in S3Event(event).records:
        upload = service.receive(
            object_upload(record), seconds_left=lambda: context.get_remaining_time_in_millis() / 1000
        )
        if upload is not None:
            applied.append({"key": upload.key, "outcome": upload.outcome.value})
    return {"uploads": applied}
