"""SES's own record of every email: its events settle the ledger and suppress addresses that must not be
mailed again.

SES publishes an event for each email of the configuration set (through EventBridge and a queue). The
newsletter's message tags name its delivery, the partitions of its ledger, the recipient key and the attempt,
which find the ledger record (an email without the partitions' tag is of a ledger in one partition); every
change is conditional on the state it moves from, so a repeated or late event changes nothing twice:

- Send: pending -> sent, with SES's message id (a Send of an earlier attempt than the record's is a late
  event: that recipient may have two copies, and it is counted; it settles a record still pending too).
- Delivery: pending or sent -> delivered.
- Bounce: a permanent one -> bounced, and the subscriber is suppressed; a transient one changes nothing.
- Complaint: -> complained, and the subscriber is suppressed.
- Reject, Rendering Failure: -> failed, with the reason.

Bounces and complaints about other emails (confirmations) suppress too, and a permanent bounce of a
sign-up's confirmation counts towards the bounce rate that pauses confirmations (newsdesk.services.limits).
Details kept never hold an address.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from newsdesk.clock import utc_now
from newsdesk.dal.ledger import MAX_SHARDS, LedgerRepository, LedgerShape
from newsdesk.models.addresses import MAX_ADDRESS_LENGTH, normalize_address
from newsdesk.models.delivery import LedgerState
from newsdesk.models.subscribers import SubscriberStatus
from newsdesk.observability import logger
from newsdesk.redaction import without_addresses
from newsdesk.services.engagement import EngagementCounter
from newsdesk.services.limits import EMAIL_TAG, SIGNUP_CONFIRMATION, ConfirmationBounces
from newsdesk.services.ses_event import TAG_ATTEMPT, TAG_DELIVERY, TAG_LEDGER_SHARDS, TAG_RECIPIENT, SesEvent

if TYPE_CHECKING:
    from newsdesk.dal.subscribers import SubscriberRepository

_SENT_OR_BEFORE = (LedgerState.PENDING, LedgerState.SENT)
_ACCEPTED = (LedgerState.PENDING, LedgerState.SENT, LedgerState.DELIVERED)


class SesFeedback:
    def __init__(
        self,
        *,
        ledger: LedgerRepository,
        subscribers: SubscriberRepository,
        engagement: EngagementCounter | None,
        confirmation_bounces: Callable[[], ConfirmationBounces],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._ledger = ledger
        self._subscribers = subscribers
        self._engagement = engagement
        self._confirmation_bounces = confirmation_bounces
        self._clock = clock

    def handle(self, event: SesEvent) -> None:
        kind = event.kind
        if kind == "Bounce" and event.part("bounce").get("bounceType") == "Permanent":
            for recipient in event.part("bounce").get("bouncedRecipients") or []:
                if recipient.get("emailAddress"):
                    self._suppress(str(recipient["emailAddress"]), SubscriberStatus.BOUNCED)
            if event.tag(EMAIL_TAG) == SIGNUP_CONFIRMATION and event.message_id:
                now = self._clock()
                self._confirmation_bounces().count(event.message_id, sent_at=event.sent_at or now, now=now)
        if kind == "Complaint":
            for recipient in event.part("complaint").get("complainedRecipients") or []:
                if recipient.get("emailAddress"):
                    self._suppress(str(recipient["emailAddress"]), SubscriberStatus.COMPLAINED)
        delivery_id, recipient_key = event.tag(TAG_DELIVERY), event.tag(TAG_RECIPIENT)
        if not delivery_id or not recipient_key:
            return  # not a newsletter or digest (a confirmation, a test email)
        attempt = int(event.tag(TAG_ATTEMPT) or "1")
        if kind in ("Open", "Click"):
            if self._engagement is not None:
                self._engagement.count(delivery_id, event)
            return
        shards = event.tag(TAG_LEDGER_SHARDS)
        if shards is not None and not (shards.isdigit() and 0 < int(shards) <= MAX_SHARDS):
            logger.warning("ignored an SES event whose ledger tag is not ours", extra={"delivery": delivery_id})
            return
        ledger = LedgerShape(delivery_id, int(shards) if shards else None)
        self._settle(kind, event, ledger, recipient_key, attempt)

    def _suppress(self, email: str, status: SubscriberStatus) -> bool:
        """Suppress an address SES reported; one that could never have been stored is ignored.

        SES reports the address it was asked to send to, which is the stored form: that spelling (lower-cased)
        is tried as it is, and the address is normalized only when nobody changed under it (its rules, in
        email_validator, are tens of milliseconds of a cold start: bench/cold_start.py)."""
        reported = email.strip().lower()
        now = self._clock()
        # Only what could be a stored key is looked up as it is (DynamoDB refuses an empty or oversized key).
        could_be_stored = "@" in reported and len(reported) <= MAX_ADDRESS_LENGTH
        if could_be_stored and self._subscribers.suppress(reported, status, now):
            return True
        try:
            address = normalize_address(email)
        except ValueError:
            return False
        return address != reported and self._subscribers.suppress(address, status, now)

    def flush(self) -> None:
        """Write what the events handled since the last flush add to the deliveries' counts (once per batch of
        events: see services.engagement)."""
        if self._engagement is not None:
            self._engagement.flush()

    def _settle(self, kind: str, event: SesEvent, ledger: LedgerShape, recipient_key: str, attempt: int) -> None:
        now = self._clock()
        delivery_id = ledger.delivery_id

        def move(to: LedgerState, allowed: tuple[LedgerState, ...], **extra: Any) -> bool:
            return self._ledger.move(ledger, recipient_key, to=to, allowed_from=allowed, now=now, **extra)

        if kind == "Send":
            # A record failed for want of a Send event that then came is sent after all.
            sent = move(LedgerState.SENT, (LedgerState.PENDING, LedgerState.FAILED), attempt=attempt,
                        message_id=event.message_id)  # fmt: skip
            if not sent and self._ledger.mark_late_send(ledger, recipient_key, attempt=attempt, now=now):
                logger.warning("a Send event came after its email was sent again", extra={"delivery": delivery_id})
                # The email reached its reader: a record still waiting for a later attempt's Send event (an
                # attempt perhaps killed before SES) is settled, and not sent yet again.
                move(LedgerState.SENT, (LedgerState.PENDING, LedgerState.FAILED), message_id=event.message_id)
        elif kind == "Delivery":
            move(LedgerState.DELIVERED, _SENT_OR_BEFORE, message_id=event.message_id)
        elif kind == "Bounce":
            bounce = event.part("bounce")
            if bounce.get("bounceType") == "Permanent":
                statuses = {str(r.get("status", "")) for r in bounce.get("bouncedRecipients") or [] if r.get("status")}
                detail = f"permanent bounce ({bounce.get('bounceSubType', 'General')}"
                detail += f", {', '.join(sorted(statuses))})" if statuses else ")"
                move(LedgerState.BOUNCED, _ACCEPTED, message_id=event.message_id, detail=without_addresses(detail))
        elif kind == "Complaint":
            feedback = event.part("complaint").get("complaintFeedbackType")
            detail = f"complaint ({feedback})" if feedback else "complaint"
            move(LedgerState.COMPLAINED, (*_ACCEPTED, LedgerState.BOUNCED), message_id=event.message_id, detail=detail)
        elif kind == "Reject":
            reason = str(event.part("reject").get("reason") or "rejected")
            move(LedgerState.FAILED, _SENT_OR_BEFORE, detail=without_addresses(f"SES rejected it: {reason}"))
        elif kind == "Rendering Failure":
            message = str(event.part("failure").get("errorMessage") or "rendering failed")
            move(LedgerState.FAILED, _SENT_OR_BEFORE, detail=without_addresses(f"SES could not render it: {message}"))
