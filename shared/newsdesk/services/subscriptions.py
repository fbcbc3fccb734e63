"""The mailing list: double opt-in, one-click unsubscribe, suppression, and the editor's views."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from newsdesk.clock import utc_now
from newsdesk.dal.email import SesSender
from newsdesk.dal.subscribers import SubscriberRepository
from newsdesk.errors import NotFound, SendRejected, SendThrottled
from newsdesk.messages import Recipient
from newsdesk.models.subscribers import (
    Subscriber,
    SubscribeRequest,
    SubscriberStats,
    SubscriberStatus,
)
from newsdesk.observability import logger
from newsdesk.services.emails import EmailComposer
from newsdesk.services.links import LinkPurpose, LinkSigner

CONFIRMATION_INTERVAL = timedelta(minutes=10)
EXPORT_PAGE = 5000
EXPORT_COLUMNS = ("email", "name", "frequency", "status", "created_at", "confirmed_at", "unsubscribed_at")


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"
    NOT_PENDING = "not_pending"


class SubscriptionService:
    def __init__(
        self,
        repository: SubscriberRepository,
        *,
        sender: SesSender,
        composer: EmailComposer,
        links: Callable[[], LinkSigner],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._sender = sender
        self._composer = composer
        self._links = links
        self._clock = clock

    # ------------------------------------------------------------------ readers
    def subscribe(self, request: SubscribeRequest) -> None:
        """Start (or restart) double opt-in. Whatever the address's state, the caller learns nothing:
        confirmed and suppressed addresses get no email, others at most one per CONFIRMATION_INTERVAL."""
        now = self._clock()
        created = self._repo.create_pending(
            Subscriber(
                email=request.email,
                name=request.name,
                frequency=request.frequency,
                status=SubscriberStatus.PENDING,
                created_at=now,
                updated_at=now,
                confirmation_sent_at=now,
            )
        )
        claimed = created or self._repo.claim_confirmation(
            request.email,
            now=now,
            resend_after=now - CONFIRMATION_INTERVAL,
            name=request.name,
            frequency=request.frequency,
        )
        if claimed:
            self._send_confirmation(request.email, request.name, now)

    def _send_confirmation(self, email: str, name: str | None, claimed_at: datetime) -> None:
        links = self._links()
        raw = self._composer.confirmation(Recipient(email, name), links.url(LinkPurpose.CONFIRM, email))
        try:
            self._sender.send(sender=self._composer.sender, recipient=email, raw=raw)
        except (SendThrottled, SendRejected) as exc:
            # The reply stays the same (no hint about the address); a later request may send again.
            logger.warning("confirmation email not sent", extra={"reason": str(exc)})
            self._repo.release_confirmation(email, claimed_at)

    def confirm(self, token: str | None) -> ConfirmOutcome:
        email = self._links().email(LinkPurpose.CONFIRM, token)
        subscriber = self._repo.get(email)
        if subscriber is None:
            return ConfirmOutcome.NOT_PENDING
        if subscriber.status is SubscriberStatus.CONFIRMED:
            return ConfirmOutcome.ALREADY_CONFIRMED
        if subscriber.status is SubscriberStatus.PENDING and self._repo.confirm(subscriber, self._clock()):
            logger.info("subscription confirmed")
            return ConfirmOutcome.CONFIRMED
        return ConfirmOutcome.NOT_PENDING

    def subscribe_url(self) -> str:
        return f"{self._links().base_url}/subscribers"

    def check_unsubscribe_link(self, token: str | None) -> str:
        return self._links().email(LinkPurpose.UNSUBSCRIBE, token)

    def unsubscribe(self, token: str | None) -> None:
        """Idempotent: an address already gone (or never there) is simply not mailed."""
        email = self.check_unsubscribe_link(token)
        if self._repo.unsubscribe(email, self._clock()):
            logger.info("unsubscribed")

    # ------------------------------------------------------------------ SES feedback
    def suppress(self, email: str, status: SubscriberStatus) -> bool:
        return self._repo.suppress(email.strip().lower(), status, self._clock())

    # ------------------------------------------------------------------ editors
    def page(
        self, *, status: SubscriberStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Subscriber], str | None]:
        return self._repo.page(status=status, limit=limit, cursor=cursor)

    def stats(self) -> SubscriberStats:
        counts = {status.value: self._repo.count(status) for status in SubscriberStatus}
        return SubscriberStats(**counts, total=sum(counts.values()))

    def export_csv(self, *, status: SubscriberStatus | None, cursor: str | None) -> tuple[str, str | None]:
        """One page of the list as CSV (with a header row), and the cursor of the next page."""
        subscribers, next_cursor = self._repo.page(status=status, limit=EXPORT_PAGE, cursor=cursor)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        for subscriber in subscribers:
            row = subscriber.model_dump(mode="json")
            writer.writerow([_csv_safe(row.get(column)) for column in EXPORT_COLUMNS])
        return buffer.getvalue(), next_cursor

    def erase(self, email: str) -> None:
        if not self._repo.erase(email.strip().lower()):
            raise NotFound("no subscriber with that address")
        logger.info("subscriber erased")


def _csv_safe(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula in spreadsheets: keep exported names inert.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
