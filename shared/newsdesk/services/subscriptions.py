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
    Frequency,
    Subscriber,
    SubscribeRequest,
    SubscriberStats,
    SubscriberStatus,
)
from newsdesk.observability import logger
from newsdesk.services.emails import EmailComposer
from newsdesk.services.links import InvalidLink, LinkPurpose, LinkSigner

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

    def _confirmation_email(self, email: str, name: str | None) -> bytes:
        return self._composer.confirmation(Recipient(email, name), self._links().url(LinkPurpose.CONFIRM, email))

    def _send_confirmation(self, email: str, name: str | None, claimed_at: datetime) -> None:
        raw = self._confirmation_email(email, name)
        try:
            self._sender.send(sender=self._composer.sender, recipient=email, raw=raw)
        except (SendThrottled, SendRejected) as exc:
            # The reply stays the same (no hint about the address); a later request may send again.
            logger.warning("confirmation email not sent", extra={"reason": str(exc)})
            self._repo.release_confirmation(email, claimed_at)

    def confirm_imported(self, email: str, name: str | None) -> bool:
        """Ask an address an import added as pending to confirm, through the same once-per-interval claim
        as a sign-up. False when no email is due (no longer pending, or asked recently) or SES refused
        the address for good; SendThrottled, with the claim given back, when it may be sent later."""
        now = self._clock()
        if not self._repo.claim_imported_confirmation(email, now=now, resend_after=now - CONFIRMATION_INTERVAL):
            return False
        raw = self._confirmation_email(email, name)
        try:
            self._sender.send(sender=self._composer.sender, recipient=email, raw=raw)
        except SendRejected as exc:
            logger.warning("imported address refused by SES", extra={"reason": str(exc)})
            return False
        except SendThrottled:
            self._repo.release_confirmation(email, now)
            raise
        return True

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

    def preferences(self, token: str | None) -> Subscriber:
        """The subscriber a preferences link was made for (InvalidLink if gone or not theirs)."""
        email = self._links().email(LinkPurpose.PREFERENCES, token)
        subscriber = self._repo.get(email)
        if subscriber is None or subscriber.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
            raise InvalidLink("this address is not subscribed any more")
        return subscriber

    def set_frequency(self, token: str | None, frequency: Frequency) -> Subscriber:
        subscriber = self.preferences(token)
        if not self._repo.set_frequency(subscriber.email, frequency, self._clock()):
            raise InvalidLink("this address is not subscribed any more")
        return subscriber.model_copy(update={"frequency": frequency})

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
