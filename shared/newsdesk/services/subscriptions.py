"""The mailing list: double opt-in, one-click unsubscribe, suppression, and the editor's views."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from newsdesk.clock import utc_now
from newsdesk.dal.email import SesSender
from newsdesk.dal.subscribers import SubscriberRepository
from newsdesk.errors import NotFound, SendRejected, SendThrottled
from newsdesk.messages import Recipient
from newsdesk.models.addresses import normalize_address
from newsdesk.models.subscribers import (
    Frequency,
    Subscriber,
    SubscribeRequest,
    SubscriberStats,
    SubscriberStatus,
)
from newsdesk.observability import logger
from newsdesk.redaction import without_addresses
from newsdesk.services.csv_export import csv_page
from newsdesk.services.emails import EmailComposer
from newsdesk.services.limits import ConfirmationLimits
from newsdesk.services.links import InvalidLink, LinkPurpose, LinkSigner

CONFIRMATION_INTERVAL = timedelta(minutes=10)
EXPORT_PAGE = 5000
EXPORT_COLUMNS = ("email", "name", "frequency", "status", "created_at", "confirmed_at", "unsubscribed_at")


class ConfirmOutcome(StrEnum):
    CONFIRMABLE = "confirmable"
    """The link may confirm (shown on the page before its button is pressed)."""
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"
    NOT_PENDING = "not_pending"


@dataclass(frozen=True)
class ConfirmationView:
    """What the confirmation page shows before the person presses its button."""

    outcome: ConfirmOutcome
    """CONFIRMABLE, ALREADY_CONFIRMED or NOT_PENDING."""
    subscriber: Subscriber | None = None


class SubscriptionService:
    def __init__(
        self,
        repository: SubscriberRepository,
        *,
        sender: SesSender,
        composer: EmailComposer,
        links: Callable[[], LinkSigner],
        limits: Callable[[], ConfirmationLimits],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._sender = sender
        self._composer = composer
        self._links = links
        self._limits = limits
        self._clock = clock

    # ------------------------------------------------------------------ readers
    def subscribe(self, request: SubscribeRequest, *, source_ip: str | None) -> None:
        """Start (or restart) double opt-in. Whatever the address's state, the caller learns nothing:
        confirmed and suppressed addresses get no email, others at most one per CONFIRMATION_INTERVAL,
        within the limits per mailbox, per source address and per hour (newsdesk.services.limits)."""
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
            request.email, now=now, resend_after=now - CONFIRMATION_INTERVAL, frequency=request.frequency
        )
        if not claimed:
            return
        try:
            refused = self._limits().allow_signup(request.email, source_ip, now)
            if refused is not None:
                # The same reply as ever; the claim is given back so that a request within the limits can send.
                logger.info("confirmation withheld", extra={"limit": refused.value})
            sent = refused is None and self._send_confirmation(request.email)
        except BaseException:
            self._repo.release_confirmation(request.email, now)  # a busy database must not block the address
            raise
        if not sent:
            self._repo.release_confirmation(request.email, now)

    def _confirmation_email(self, email: str) -> bytes:
        # Never the name from the request: whoever asked may not be the address's owner, and the owner
        # must not get a stranger's words in an email they did not ask for.
        return self._composer.confirmation(Recipient(email), self._links().url(LinkPurpose.CONFIRM, email))

    def _send_confirmation(self, email: str) -> bool:
        """Send one confirmation; False when it did not go (a later request may try again)."""
        try:
            raw = self._confirmation_email(email)
            self._sender.send(sender=self._composer.sender, recipient=email, raw=raw)
        except (SendThrottled, SendRejected, ValueError) as exc:
            # ValueError: an address no message can be addressed to. The reply stays the same either way.
            logger.warning("confirmation email not sent", extra={"reason": without_addresses(str(exc))})
            return False
        return True

    def confirm_imported(self, email: str, upload_id: str) -> bool:
        """Ask an address the import `upload_id` added as pending to confirm: once (a redelivered batch
        sends nothing twice), within its mailbox's limit. False when no email went (asked already, no
        longer pending, over the limit, or refused by SES for good); SendThrottled, with the claim given
        back, when it may be sent later."""
        now = self._clock()
        if not self._repo.claim_imported_confirmation(email, upload_id=upload_id, now=now):
            return False
        try:
            if not self._limits().allow_import(email, now):
                logger.info("confirmation withheld", extra={"limit": "mailbox", "upload_id": upload_id})
                return False
            self._sender.send(sender=self._composer.sender, recipient=email, raw=self._confirmation_email(email))
        except (SendRejected, ValueError) as exc:
            logger.warning("imported address refused by SES", extra={"reason": without_addresses(str(exc))})
            return False
        except BaseException:
            # Not sent (throttled, or a fault): the next attempt at this batch may ask this address.
            self._repo.release_confirmation(email, now)
            raise
        return True

    def confirmation(self, token: str | None) -> ConfirmationView:
        """What a confirmation link leads to, changing nothing (link scanners open every link)."""
        link = self._links().open(LinkPurpose.CONFIRM, token)
        subscriber = self._repo.get(link.email)
        return ConfirmationView(self._outcome(subscriber, link.issued_at), subscriber)

    def confirm(self, token: str | None) -> ConfirmOutcome:
        """The person pressed the confirmation page's button."""
        link = self._links().open(LinkPurpose.CONFIRM, token)
        subscriber = self._repo.get(link.email)
        outcome = self._outcome(subscriber, link.issued_at)
        if outcome is not ConfirmOutcome.CONFIRMABLE or subscriber is None:
            return outcome
        now = self._clock()
        if subscriber.status is SubscriberStatus.PENDING:
            done = self._repo.confirm(subscriber, now)
        else:
            done = self._repo.reconfirm(subscriber, now)
        if not done:
            return ConfirmOutcome.NOT_PENDING
        logger.info("subscription confirmed")
        return ConfirmOutcome.CONFIRMED

    @staticmethod
    def _outcome(subscriber: Subscriber | None, issued_at: datetime) -> ConfirmOutcome:
        if subscriber is None:
            return ConfirmOutcome.NOT_PENDING
        if subscriber.status is SubscriberStatus.CONFIRMED:
            return ConfirmOutcome.ALREADY_CONFIRMED
        if subscriber.status is SubscriberStatus.PENDING:
            return ConfirmOutcome.CONFIRMABLE
        left = subscriber.unsubscribed_at
        # Only a link made after the person left brings them back: an older one was a different "yes".
        if subscriber.status is SubscriberStatus.UNSUBSCRIBED and left is not None and issued_at > left:
            return ConfirmOutcome.CONFIRMABLE
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
        """Suppress an address SES reported; one that could never have been stored is ignored."""
        try:
            address = normalize_address(email)
        except ValueError:
            return False
        return self._repo.suppress(address, status, self._clock())

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
        return csv_page(EXPORT_COLUMNS, (subscriber.model_dump(mode="json") for subscriber in subscribers)), next_cursor

    def erase(self, email: str) -> None:
        # Both forms: records stored before addresses were normalized may hold a Unicode domain.
        forms = {email.strip().lower()}
        with contextlib.suppress(ValueError):
            forms.add(normalize_address(email))
        erased = [self._repo.erase(form) for form in sorted(forms)]
        if not any(erased):
            raise NotFound("no subscriber with that address")
        logger.info("subscriber erased")
