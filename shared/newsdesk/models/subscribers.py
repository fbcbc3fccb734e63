"""Subscriber shapes: the public sign-up form, the stored record, and the editor's views."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from newsdesk.models.addresses import EmailAddress
from newsdesk.models.base import Model
from newsdesk.models.topics import MAX_TOPICS, TopicSlug
from newsdesk.models.types import AuthorName


class Frequency(StrEnum):
    INSTANT = "instant"
    DIGEST = "digest"


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


SUPPRESSED = frozenset({SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED})


Email = EmailAddress
"""Every address a subscriber model takes (see newsdesk.models.addresses for what is accepted)."""


class ConsentSource(StrEnum):
    API = "api"
    """`POST /subscribers` from a program (the request had no `Origin` header)."""
    FORM = "form"
    """`POST /subscribers` from a web page: browsers add `Origin` to every form or script POST."""
    IMPORT = "import"
    """A CSV file an editor uploaded; `object_key` names it."""


class Consent(Model):
    """How a subscriber's consent was given: kept with the subscriber, exported with them, erased with them."""

    source: ConsentSource
    requested_at: datetime = Field(description="When the sign-up (or import) asked for the subscription.")
    confirmed_at: datetime | None = Field(
        default=None, description="When the person confirmed it (for `subscribers/confirmed/` imports: the import)."
    )
    policy: str | None = Field(default=None, description="The privacy policy's address (PrivacyPolicyUrl) then.")
    ip: str | None = Field(default=None, description="The sign-up's source address; only with RecordConsentIp.")
    object_key: str | None = Field(default=None, description="For an import: the uploaded file that vouched.")
    topics: list[str] | None = Field(
        default=None,
        description="The topics agreed to (null: everything published; records from before topics were kept "
        "have none either).",
    )


CONSENT_HISTORY = 5
"""Earlier consents a subscriber keeps (each re-confirmation adds one, the oldest goes). Enough to show what
a person agreed to over years of leaving and coming back; few enough that the record stays within one 4 KB
read unit, which the mailer pays for every recipient it checks (an entry is about 200 bytes)."""


Topics = Annotated[list[TopicSlug], Field(min_length=1, max_length=MAX_TOPICS)]


class SubscribeRequest(Model):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: AuthorName | None = None
    topics: Topics | None = Field(
        default=None, description="Slugs of the topics to follow (`GET /topics`); absent: everything published."
    )
    frequency: Frequency = Frequency.INSTANT
    breaking: bool = Field(
        default=False, description="Breaking-news alerts too: sent at once, whatever `frequency` and `topics` say."
    )


class SubscribeAccepted(Model):
    """The same answer for every address: the public can never learn who is subscribed."""

    status: str = "accepted"
    message: str = "If this address can be subscribed, a confirmation email is on its way."


class Subscriber(Model):
    email: str
    name: str | None = None
    frequency: Frequency = Frequency.INSTANT
    status: SubscriberStatus
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    confirmation_sent_at: datetime | None = None
    topics: list[str] | None = Field(
        default=None, description="The topics followed; null: everything published; empty: nothing."
    )
    breaking: bool = Field(default=False, description="Gets breaking-news alerts.")
    consent: Consent | None = Field(default=None, description="Absent for subscribers who joined before it was kept.")
    consent_history: list[Consent] = Field(
        default_factory=list,
        description=f"Earlier consents, oldest first (at most {CONSENT_HISTORY}): a re-confirmation adds one.",
    )
    revision: int = Field(default=0, exclude=True)
    """Raised by every write that changes what the subscriber receives (status, frequency, topics): the
    data layer's transactions are conditional on the revision they read."""
    audience_changed_at: datetime | None = Field(default=None, exclude=True)
    """When the subscriber last joined, left or moved between audiences (see services.delivery)."""

    @property
    def follows_everything(self) -> bool:
        return self.topics is None

    def agreeing(self, consent: Consent | None) -> dict[str, object]:
        """The fields that record `consent` as the one in force: the consent it replaces, if the person
        had confirmed it, joins the history (appended, never overwritten; the oldest beyond CONSENT_HISTORY
        go). A pending sign-up's unconfirmed request is replaced, not kept: nobody agreed to it."""
        if consent is None:  # a subscriber from before consent was kept, confirming a link that carries none
            return {}
        history = list(self.consent_history)
        if self.consent is not None and self.consent.confirmed_at is not None:
            history.append(self.consent)
        return {"consent": consent, "consent_history": history[-CONSENT_HISTORY:]}


class SubscriberPage(Model):
    items: list[Subscriber]
    next_cursor: str | None = None


class SubscriberStats(Model):
    pending: int
    confirmed: int
    unsubscribed: int
    bounced: int
    complained: int
    total: int
