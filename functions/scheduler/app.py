"""SchedulerFunction: the template's schedules (EventBridge Scheduler) name a job in their input.

- publish-due (every minute): publish every scheduled article whose time has come, through the one
  publish path; a late run catches up, and overlapping runs publish each article once.
- digest (weekly): record one digest of the week's articles; its delivery runs like a newsletter's.
- housekeeping (daily): restart deliveries the stream never started, and re-drive dead letters.
"""

from __future__ import annotations

from newsdesk import startup  # isort: skip  (first: the load runs without the cyclic GC)

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import container
from newsdesk.models.base import Model
from newsdesk.observability import logger, metrics, tracer


class ScheduledJob(Model):
    job: str
    scheduled_time: str = ""


@startup.loaded
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = ScheduledJob.model_validate(event)
    if job.job == "publish-due":
        published = container().article_service.publish_due()
        return {"published": [article.id for article in published]}
    if job.job == "digest":
        return {"articles": container().digest_service.run(job.scheduled_time or "manual")}
    if job.job == "housekeeping":
        return container().housekeeping.run()
    raise ValueError(f"unknown job {job.job!r}")
