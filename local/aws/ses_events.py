"""The local SES's events: what SES publishes about each email, sent where the template says.

moto's SES accepts and keeps emails but publishes no events. Here each email the local SES v2 accepts
produces the events SES would produce — `Send`, then `Delivery` — with the email's message tags, for the
configuration set's event destinations in the template (EventBridge or SNS), filtered by their
`MatchingEventTypes`. As the real SES mailbox simulator does, `bounce@simulator.amazonses.com` bounces
(permanent), `complaint@simulator.amazonses.com` is delivered and then complains, and
`success@simulator.amazonses.com` is delivered (a `+label` before the @ is allowed).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from functools import wraps
from typing import Any

from local.iam.ses_identities import covering_identity, embedded_ses
from local.template.resolver import Resolver

log = logging.getLogger(__name__)

SIMULATOR_DOMAIN = "simulator.amazonses.com"
DESTINATION = "AWS::SES::ConfigurationSetEventDestination"
# The detail-type SES gives each event type on EventBridge, and the name MatchingEventTypes uses for it.
_DETAIL_TYPES = {
    "Send": ("Email Sent", "send"),
    "Delivery": ("Email Delivered", "delivery"),
    "Bounce": ("Email Bounced", "bounce"),
    "Complaint": ("Email Complaint Received", "complaint"),
    "Reject": ("Email Rejected", "reject"),
    "Open": ("Email Opened", "open"),
    "Click": ("Email Clicked", "click"),
}

_lock = threading.Lock()
_publishers: dict[tuple[str, str], SesEventPublisher] = {}


@dataclass(frozen=True)
class Destination:
    event_types: frozenset[str]
    event_bus: str | None = None
    topic_arn: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SesEventPublisher:
    """Publishes the events of the emails the local SES accepts, for one stack (region and account)."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.destinations: dict[str, list[Destination]] = {}
        self._lock = threading.Lock()
        self._events = 0
        self._sends: list[float] = []
        for resource in resolver.template.of_type(DESTINATION):
            props = resolver.resolve(resource.properties)
            target = props["EventDestination"]
            if not target.get("Enabled", True):
                continue
            bus = (target.get("EventBridgeDestination") or {}).get("EventBusArn")
            topic = (target.get("SnsDestination") or {}).get("TopicARN")
            self.destinations.setdefault(str(props["ConfigurationSetName"]), []).append(
                Destination(frozenset(target.get("MatchingEventTypes") or []), bus, topic)
            )

    def install(self) -> None:
        """Publish the events of this stack's emails from now on (in this process)."""
        _patch_moto()
        with _lock:
            _publishers[(self.resolver.account_id, self.resolver.region)] = self

    def accepted(self, request: dict[str, Any], message_id: str) -> None:
        """The local SES accepted this SendEmail request: publish its events."""
        configuration_set = request.get("ConfigurationSetName")
        destinations = self.destinations.get(str(configuration_set), [])
        if not destinations:
            return
        with self._lock:
            self._sends.append(time.time())
        recipients = [address for field in ("ToAddresses", "CcAddresses", "BccAddresses")
                      for address in (request.get("Destination") or {}).get(field) or []]  # fmt: skip
        mail = self._mail(request, message_id, recipients)
        for kind, body in [("Send", {}), *_outcomes(recipients)]:
            event = {"eventType": kind, "mail": mail, kind.lower(): body}
            for destination in destinations:
                if _DETAIL_TYPES[kind][1] in destination.event_types:
                    self._publish(destination, kind, event)

    def _mail(self, request: dict[str, Any], message_id: str, recipients: list[str]) -> dict[str, Any]:
        sender = str(request.get("FromEmailAddress") or "")
        tags: dict[str, list[str]] = {
            "ses:configuration-set": [str(request.get("ConfigurationSetName"))],
            "ses:from-domain": [sender.rpartition("@")[2]],
            "ses:source-ip": ["127.0.0.1"],
        }
        for tag in request.get("EmailTags") or []:
            tags.setdefault(str(tag["Name"]), []).append(str(tag["Value"]))
        headers = _headers(request)
        account, region = self.resolver.account_id, self.resolver.region
        # The identity SES authorized the send with: the one covering the sender's address.
        address = parseaddr(sender)[1]
        identity = covering_identity(address, embedded_ses(account)(region).identities) or address.rpartition("@")[2]
        return {
            "timestamp": _now(),
            "source": sender,
            "sourceArn": f"arn:aws:ses:{region}:{account}:identity/{identity}",
            "sendingAccountId": self.resolver.account_id,
            "messageId": message_id,
            "destination": recipients,
            "headersTruncated": False,
            "headers": [{"name": name, "value": value} for name, value in headers],
            "commonHeaders": {
                "from": [value for name, value in headers if name.lower() == "from"],
                "to": [value for name, value in headers if name.lower() == "to"],
                "subject": next((value for name, value in headers if name.lower() == "subject"), ""),
                "messageId": message_id,
            },
            "tags": tags,
        }

    def usage(self, *, reset: bool = False) -> dict[str, Any]:
        """Events published (each one an SQS request on AWS, from EventBridge to the queue) and sends."""
        with self._lock:
            sends = self._sends
            taken = {
                "ses_events": self._events,
                "ses_sends": {"count": len(sends), "first": min(sends, default=0.0), "last": max(sends, default=0.0)},
            }
            if reset:
                self._events, self._sends = 0, []
        return taken

    def _publish(self, destination: Destination, kind: str, event: dict[str, Any]) -> None:
        with self._lock:
            self._events += 1
        account, region = self.resolver.account_id, self.resolver.region
        if destination.event_bus:
            from moto.events.models import events_backends

            answer = events_backends[account][region].put_events(
                [
                    {
                        "Source": "aws.ses",
                        "DetailType": _DETAIL_TYPES[kind][0],
                        "Detail": json.dumps(event),
                        "EventBusName": destination.event_bus,
                        "Resources": [],
                    }
                ]
            )
            if any("ErrorCode" in entry for entry in answer):
                log.error("the local SES could not publish a %s event: %s", kind, answer)
        if destination.topic_arn:
            from moto.sns.models import sns_backends

            sns_backends[account][region].publish(message=json.dumps(event), arn=destination.topic_arn)


def _outcomes(recipients: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """What happens after sending, per recipient, as SES's mailbox simulator behaves (others: delivered)."""
    delivered, bounced, complained = [], [], []
    for address in recipients:
        local, _, domain = address.lower().rpartition("@")
        kind = local.split("+", 1)[0] if domain == SIMULATOR_DOMAIN else "success"
        if kind in ("bounce", "suppressionlist"):
            bounced.append(address)
        else:
            delivered.append(address)
            if kind == "complaint":
                complained.append(address)
    outcomes: list[tuple[str, dict[str, Any]]] = []
    if delivered:
        outcomes.append(("Delivery", {"timestamp": _now(), "processingTimeMillis": 120, "recipients": delivered,
                                      "smtpResponse": "250 2.6.0 Message received",
                                      "reportingMTA": "a1-1.smtp-out.local.amazonses.com"}))  # fmt: skip
    if bounced:
        outcomes.append(("Bounce", {
            "feedbackId": str(uuid.uuid4()), "bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"} for address in bounced],
            "timestamp": _now(), "reportingMTA": "dns; local.amazonses.com",
        }))  # fmt: skip
    if complained:
        outcomes.append(("Complaint", {
            "feedbackId": str(uuid.uuid4()), "complainedRecipients": [{"emailAddress": a} for a in complained],
            "timestamp": _now(), "userAgent": "Amazon SES Mailbox Simulator", "complaintFeedbackType": "abuse",
        }))  # fmt: skip
    return outcomes


def _headers(request: dict[str, Any]) -> list[tuple[str, str]]:
    raw = ((request.get("Content") or {}).get("Raw") or {}).get("Data")
    if not raw:
        return []
    # The headers only: parsing a newsletter's MIME body too cost more than sending it.
    message = BytesHeaderParser(policy=policy.default).parsebytes(base64.b64decode(raw))
    return [(name, str(value)) for name, value in message.items()]


_patched = False


def _patch_moto() -> None:
    """moto's SES v2 SendEmail, calling the stack's publisher with the request once the email is accepted."""
    global _patched
    with _lock:
        if _patched:
            return
        _patched = True
    from moto.sesv2.responses import SESV2Response

    original: Callable[[SESV2Response], str] = SESV2Response.send_email

    @wraps(original)
    def send_email(self: SESV2Response) -> str:
        answer = original(self)
        publisher = _publishers.get((self.current_account, self.region))
        if publisher is not None:
            try:
                publisher.accepted(json.loads(self.body), json.loads(answer)["MessageId"])
            except Exception:  # a failure to publish must not fail the send, as with SES itself
                log.exception("the local SES could not publish the events of an email")
        return answer

    SESV2Response.send_email = send_email  # type: ignore[method-assign]
