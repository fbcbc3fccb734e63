"""ErasureFunction: continues, a bounded step per message (ErasureQueue), the erasures and deleted topics'
clean-ups that one editor request could not finish (newsdesk.services.erasure)."""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from typing import TYPE_CHECKING, Any

from newsdesk.batches import Record, process_batch
from newsdesk.dependencies import container
from newsdesk.models.erasures import ErasureTask
from newsdesk.observability import logger, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


def run_step(record: Record) -> None:
    task = ErasureTask.model_validate_json(record["body"])
    if task.kind == "person":
        container().erasure_service.resume(task.id)
    else:
        container().topic_cleanup.resume(task.id)


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_batch(event["Records"], run_step)
