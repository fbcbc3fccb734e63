"""SesEventsFunction: SES bounce and complaint notifications (via SNS) suppress the subscriber for good.

Only permanent bounces suppress: a full mailbox (a transient bounce) may accept the next email.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from newsdesk.dependencies import subscription_service
from newsdesk.models.subscribers import SubscriberStatus
from newsdesk.observability import logger


def suppressions(notification: dict[str, Any]) -> list[tuple[str, SubscriberStatus]]:
    """(address, new status) pairs from one SES event-publishing or notification message."""
    kind = notification.get("eventType") or notification.get("notificationType")
    if kind == "Bounce" and notification.get("bounce", {}).get("bounceType") == "Permanent":
        recipients = notification["bounce"].get("bouncedRecipients", [])
        return [(r["emailAddress"], SubscriberStatus.BOUNCED) for r in recipients if r.get("emailAddress")]
    if kind == "Complaint":
        recipients = notification.get("complaint", {}).get("complainedRecipients", [])
        return [(r["emailAddress"], SubscriberStatus.COMPLAINED) for r in recipients if r.get("emailAddress")]
    return []


@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> dict[str, int]:
    service = subscription_service()
    suppressed = 0
    for record in event.records:
        try:
            notification = json.loads(record.sns.message)
        except json.JSONDecodeError:
            logger.warning("ignored an SNS message that is not JSON", extra={"message_id": record.sns.message_id})
            continue
        for address, status in suppressions(notification):
            suppressed += service.suppress(address, status)
    logger.info("SES feedback processed", extra={"suppressed": suppressed})
    return {"suppressed": suppressed}
