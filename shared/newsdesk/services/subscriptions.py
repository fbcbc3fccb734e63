"""The mailing list: double opt-in with a consent record, topics and the preference center, one-click
unsubscribe (from an email's topics or from everything), suppression, and the editor's views."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from newsdesk.clock import utc_now
from newsdesk.dal.email import SesSender
from newsdesk.dal.publications import PublicationRepository
from newsdesk.dal.subscribers import Choice, SubscriberRepository
from newsdesk.errors import NotFound, SendRefusedForAccount, SendRejected, SendThrottled
from newsdesk.messages import Recipient
from newsdesk.models.addresses import stored_forms
from newsdesk.models.subscribers import (
    Consent,
    ConsentSource,
    Frequency,
    Subscriber,
    SubscribeRequest,
    SubscriberStats,
    SubscriberStatus,
)
from newsdesk.models.topics import Topic
from newsdesk.observability import logger
from newsdesk.redaction import without_addresses
from newsdesk.services.csv_export import csv_page
from newsdesk.services.emails import EmailComposer
from newsdesk.services.limits import EMAIL_TAG, SIGNUP_CONFIRMATION, ConfirmationLimits
from newsdesk.services.links import InvalidLink, LinkPurpose, LinkSigner
from newsdesk.services.topics import TopicService

CONFIRMATION_INTERVAL = timedelta(minutes=10)
EXPORT_PAGE = 5000
EXPORT_COLUMNS = (
    "email", "name", "frequency", "status", "topics", "created_at", "confirmed_at", "unsubscribed_at",
    "consent_source", "consent_requested_at", "consent_confirmed_at", "consent_policy", "consent_ip",
    "consent_object_key",
)  # fmt: skip
EVERYTHING = "*"
"""The `topics` cell of a subscriber of everything in the CSV export (an empty cell: no topic at all)."""
DELIVERY = "d"
"""An unsubscribe link's detail: the delivery the email belonged to."""
_FREQUENCY, _TOPICS, _BREAKING = "f", "t", "b"
"""A confirmation link's details: what its request chose (frequency, topics unless everything, and breaking-news
alerts when asked for)."""


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
    topics: list[Topic] | None = None
    """The topics the subscription is for; None: everything."""


class UnsubscribeScope(StrEnum):
    EMAIL = "email"
    """What the email's one-click link does: leave the topics it was sent for (or everything, for a reader
    of everything, or a link that names no topics)."""
    EVERYTHING = "everything"


@dataclass(frozen=True)
class UnsubscribeView:
    """Where an unsubscribe link's reader stands, for its page (and what its button would do)."""

    subscribed: bool
    """False once unsubscribed, suppressed or erased: the page says so and asks nothing."""
    leaves_everything: bool = True
    """True when the one-click button leaves the whole list."""
    sent_for: list[Topic] | None = None
    """The topics the email was sent for that the reader still follows (None: not a topic email)."""
    following: list[Topic] | None = None
    """The topics the reader follows (None: everything)."""
    preferences_url: str | None = None


@dataclass(frozen=True)
class Unsubscribed:
    """What an unsubscribe did."""

    everything: bool
    """True: the reader left the list."""
    left: list[Topic]
    """The topics left (empty when the reader had left them already)."""
    remaining: list[Topic]
    """The topics the reader still follows (when not `everything`)."""
    preferences_url: str | None = None


@dataclass(frozen=True)
class PreferencesView:
    subscriber: Subscriber
    topics: list[Topic]
    """Every topic of the catalog, to choose from."""


class SubscriptionService:
    def __init__(
        self,
        repository: SubscriberRepository,
        *,
        sender: SesSender,
        composer: EmailComposer,
        links: Callable[[], LinkSigner],
        limits: Callable[[], ConfirmationLimits],
        topics: TopicService,
        publications: PublicationRepository,
        privacy_policy_url: str = "",
        record_consent_ip: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._sender = sender
        self._composer = composer
        self._links = links
        self._limits = limits
        self._topics = topics
        self._publications = publications
        self._policy = privacy_policy_url or None
        self._record_ip = record_consent_ip
        self._clock = clock

    # ------------------------------------------------------------------ readers
    def subscribe(self, request: SubscribeRequest, *, source_ip: str | None, source: ConsentSource) -> None:
        """Start (or restart) double opt-in. Whatever the address's state, the caller learns nothing:
        confirmed and suppressed addresses get no email, others at most one per CONFIRMATION_INTERVAL,
        within the limits per mailbox, per source address and per hour (newsdesk.services.limits).
        Unknown topics are refused before the address is looked at."""
        topics = self._topics.known(request.topics) if request.topics is not None else None
        now = self._clock()
        consent = Consent(
            source=source, requested_at=now, policy=self._policy, ip=source_ip if self._record_ip else None
        )
        created = self._repo.create_pending(
            Subscriber(
                email=request.email,
                name=request.name,
                frequency=request.frequency,
                topics=topics,
                breaking=request.breaking,
                status=SubscriberStatus.PENDING,
                created_at=now,
                updated_at=now,
                confirmation_sent_at=now,
                consent=consent,
            )
        )
        # A known address keeps what it has: this request's choices travel in its link, stored once confirmed.
        claimed = created or self._repo.claim_confirmation(
            request.email, now=now, resend_after=now - CONFIRMATION_INTERVAL
        )
        if not claimed:
            return
        try:
            refused = self._limits().allow_signup(request.email, source_ip, now)
            if refused is not None:
                # The same reply as ever; the claim is given back so that a request within the limits can send.
                logger.info("confirmation withheld", extra={"limit": refused.value})
            choice = Choice(request.frequency, topics, request.breaking)
            sent = refused is None and self._send_confirmation(request.email, consent, choice)
        except BaseException:
            self._repo.release_confirmation(request.email, now)  # a busy database must not block the address
            raise
        if not sent:
            self._repo.release_confirmation(request.email, now)

    def _confirmation_email(self, email: str, consent: Consent, choice: Choice | None = None) -> bytes:
        # Never the name from the request: whoever asked may not be the address's owner, and the owner
        # must not get a stranger's words in an email they did not ask for. The link carries how consent
        # was asked for and what the request chose, so what is kept is what the person confirms (a known
        # address keeps its stored record until then).
        details: dict[str, Any] = {"src": consent.source.value, "pol": consent.policy, "ip": consent.ip,
                                   "key": consent.object_key}  # fmt: skip
        if choice is not None:
            details.update({_FREQUENCY: choice.frequency.value, _TOPICS: choice.topics, _BREAKING: choice.breaking})
        url = self._links().url(LinkPurpose.CONFIRM, email, {k: v for k, v in details.items() if v})
        return self._composer.confirmation(Recipient(email), url)

    def _send_confirmation(self, email: str, consent: Consent, choice: Choice) -> bool:
        """Send one confirmation; False when it did not go (a later request may try again)."""
        try:
            raw = self._confirmation_email(email, consent, choice)
            # Tagged: SES's events about it tell its bounce apart, for the bounce rate that pauses confirmations.
            self._sender.send(sender=self._composer.sender, recipient=email, raw=raw,
                              tags={EMAIL_TAG: SIGNUP_CONFIRMATION})  # fmt: skip
        except SendRefusedForAccount as exc:
            logger.error(
                "SES refuses to send for this account: confirmation email not sent", extra={"reason": str(exc)}
            )
            return False
        except (SendThrottled, SendRejected, ValueError) as exc:
            # ValueError: an address no message can be addressed to. The reply stays the same either way.
            logger.warning("confirmation email not sent", extra={"reason": without_addresses(str(exc))})
            return False
        return True

    def confirm_imported(self, email: str, upload_id: str, *, object_key: str | None = None) -> bool:
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
            consent = Consent(source=ConsentSource.IMPORT, requested_at=now, policy=self._policy, object_key=object_key)
            self._sender.send(
                sender=self._composer.sender, recipient=email, raw=self._confirmation_email(email, consent)
            )
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
        outcome = self._outcome(subscriber, link.issued_at)
        choice = self._choice_of(link.details)
        chosen = choice[1] if choice is not None else subscriber.topics if subscriber is not None else None
        return ConfirmationView(outcome, subscriber, None if chosen is None else self._named(chosen))

    def confirm(self, token: str | None) -> ConfirmOutcome:
        """The person pressed the confirmation page's button."""
        link = self._links().open(LinkPurpose.CONFIRM, token)
        subscriber = self._repo.get(link.email)
        outcome = self._outcome(subscriber, link.issued_at)
        if outcome is not ConfirmOutcome.CONFIRMABLE or subscriber is None:
            return outcome
        now = self._clock()
        choice = self._choice_of(link.details)
        topics = choice[1] if choice is not None else subscriber.topics
        consent = _consent_confirmed(subscriber, link.details, link.issued_at, now, topics)
        if subscriber.status is SubscriberStatus.PENDING:
            done = self._repo.confirm(subscriber, now, consent, choice)
        else:
            done = self._repo.reconfirm(subscriber, now, consent, choice)
        if not done:
            return ConfirmOutcome.NOT_PENDING
        logger.info("subscription confirmed")
        return ConfirmOutcome.CONFIRMED

    def _choice_of(self, details: dict[str, Any]) -> Choice | None:
        """What the request a confirmation link was made for chose (None for links from before links carried
        it). A topic deleted since is left out."""
        frequency = details.get(_FREQUENCY)
        if frequency not in {member.value for member in Frequency}:
            return None
        topics = details.get(_TOPICS)
        breaking = details.get(_BREAKING) is True
        if not isinstance(topics, list):
            return Choice(Frequency(frequency), None, breaking)
        existing = self._topics.slugs()
        return Choice(Frequency(frequency), [slug for slug in topics if isinstance(slug, str) and slug in existing],
                      breaking)  # fmt: skip

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

    def unsubscribe_view(self, token: str | None) -> UnsubscribeView:
        """Where the reader of an unsubscribe link stands, changing nothing."""
        link = self._links().open(LinkPurpose.UNSUBSCRIBE, token)
        subscriber = self._repo.get(link.email)
        if subscriber is None or subscriber.status not in _SUBSCRIBED:
            return UnsubscribeView(subscribed=False)
        preferences = self._links().url(LinkPurpose.PREFERENCES, link.email)
        if subscriber.topics is None:
            return UnsubscribeView(subscribed=True, preferences_url=preferences)
        following = self._named(subscriber.topics)
        delivered = self._delivery_topics(link.details.get(DELIVERY))
        if not delivered:
            return UnsubscribeView(subscribed=True, following=following, preferences_url=preferences)
        sent_for = [topic for topic in following if topic.slug in delivered]
        return UnsubscribeView(subscribed=True, leaves_everything=False, sent_for=sent_for, following=following,
                               preferences_url=preferences)  # fmt: skip

    def unsubscribe(self, token: str | None, scope: UnsubscribeScope = UnsubscribeScope.EMAIL) -> Unsubscribed:
        """Idempotent: an address already gone (or never there) is simply not mailed. The email's own link
        leaves the topics that email was sent for (RFC 8058's one click); a reader of everything, a link
        without topics, or `scope=everything` leaves the list."""
        link = self._links().open(LinkPurpose.UNSUBSCRIBE, token)
        now = self._clock()
        subscriber = self._repo.get(link.email)
        delivered = self._delivery_topics(link.details.get(DELIVERY)) if scope is UnsubscribeScope.EMAIL else None
        if subscriber is None or subscriber.topics is None or not delivered:
            if self._repo.unsubscribe(link.email, now):
                logger.info("unsubscribed")
            return Unsubscribed(everything=True, left=[], remaining=[])
        preferences = self._links().url(LinkPurpose.PREFERENCES, link.email)
        left = self._named([topic for topic in subscriber.topics if topic in delivered])
        after = self._repo.leave_topics(link.email, delivered, now)
        if after is None:  # left already (or unsubscribed meanwhile)
            current = self._repo.get(link.email)
            remaining = current.topics if current is not None and current.status in _SUBSCRIBED else []
            return Unsubscribed(everything=False, left=[], remaining=self._named(remaining or []),
                                preferences_url=preferences)  # fmt: skip
        logger.info("left topics", extra={"topics": [topic.slug for topic in left]})
        return Unsubscribed(everything=False, left=left, remaining=self._named(after.topics or []),
                            preferences_url=preferences)  # fmt: skip

    def _delivery_topics(self, delivery_id: object) -> set[str]:
        """The topics a delivery was sent for (none for a link without one, or an email for everyone)."""
        if not isinstance(delivery_id, str) or not delivery_id:
            return set()
        record = self._publications.publication(delivery_id) or {}
        return set(record.get("topics") or [])

    def _named(self, slugs: list[str]) -> list[Topic]:
        """These topics, as the catalog names them; a deleted topic is no longer shown."""
        catalog = {topic.slug: topic for topic in self._topics.all()}
        return [catalog[slug] for slug in slugs if slug in catalog]

    def preferences(self, token: str | None) -> PreferencesView:
        """The subscriber a preferences link was made for, and the topics to choose from (InvalidLink if gone
        or not theirs)."""
        email = self._links().email(LinkPurpose.PREFERENCES, token)
        subscriber = self._repo.get(email)
        if subscriber is None or subscriber.status not in _SUBSCRIBED:
            raise InvalidLink("this address is not subscribed any more")
        return PreferencesView(subscriber, self._topics.all())

    def save_preferences(
        self,
        token: str | None,
        *,
        frequency: Frequency,
        topics: list[str] | None,
        change_topics: bool = True,
        breaking: bool | None = None,
    ) -> PreferencesView:
        """Save the preference center's form: how often, and (with `change_topics`) which topics (None:
        everything). A topic not in the catalog (deleted since the page was shown, or never there) refuses the
        whole form (UnknownTopics), which then changes nothing."""
        email = self._links().email(LinkPurpose.PREFERENCES, token)
        catalog = self._topics.all()
        if topics is not None and change_topics:
            self._topics.known(topics)
        chosen = None if topics is None else [topic.slug for topic in catalog if topic.slug in set(topics)]
        saved = self._repo.set_preferences(
            email, frequency=frequency, topics=chosen, keep_topics=not change_topics, breaking=breaking,
            now=self._clock(),
        )  # fmt: skip
        if saved is None:
            raise InvalidLink("this address is not subscribed any more")
        return PreferencesView(saved, catalog)

    # ------------------------------------------------------------------ editors
    def get(self, email: str) -> Subscriber:
        for form in stored_forms(email):
            found = self._repo.get(form)
            if found is not None:
                return found
        raise NotFound("no subscriber with that address")

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
        rows = ({column: _cell(subscriber, column) for column in EXPORT_COLUMNS} for subscriber in subscribers)
        return csv_page(EXPORT_COLUMNS, rows), next_cursor


_SUBSCRIBED = (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED)


def _consent_confirmed(
    subscriber: Subscriber, details: dict[str, object], issued_at: datetime, now: datetime, topics: list[str] | None
) -> Consent | None:
    """The consent the person gives by confirming, with the topics they agree to: the request their link was
    made for (links made before links carried it fall back on the stored request)."""
    source = details.get("src")
    if isinstance(source, str) and source in {member.value for member in ConsentSource}:

        def text(name: str) -> str | None:
            value = details.get(name)
            return value if isinstance(value, str) and value else None

        return Consent(source=ConsentSource(source), requested_at=issued_at, confirmed_at=now, policy=text("pol"),
                       ip=text("ip"), object_key=text("key"), topics=topics)  # fmt: skip
    if subscriber.consent is not None:
        return subscriber.consent.model_copy(update={"confirmed_at": now, "topics": topics})
    return None


def _cell(subscriber: Subscriber, column: str) -> object:
    if column == "topics":
        return EVERYTHING if subscriber.topics is None else " ".join(subscriber.topics)
    if column.startswith("consent_"):
        if subscriber.consent is None:
            return None
        return subscriber.consent.model_dump(mode="json").get(column.removeprefix("consent_"))
    return subscriber.model_dump(mode="json").get(column)
