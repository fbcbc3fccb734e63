"""The container: every service a function may use, each built on first use from the settings it needs and
kept for the life of the execution environment. `container()` is the process's one; `reset()` starts a new
one (tests do, after changing the environment), so nothing cached can survive a reset.

Each property imports the classes it builds when it is first used: every function imports this module, and
importing every service for every function would make each cold start pay for all of them.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from newsdesk import snapstart
from newsdesk.dal.clients import LazyClient
from newsdesk.models.base import build_imported_models
from newsdesk.settings import (
    ApiUrlSettings,
    ArticleSettings,
    AuditSettings,
    ConfirmationBounceSettings,
    ConsentSettings,
    EmailSettings,
    EngagementSettings,
    ErasureSettings,
    ErasureTableSettings,
    EventBusSettings,
    FanoutSettings,
    LedgerSettings,
    LinkSettings,
    MailerSettings,
    NewsSettings,
    PeopleSettings,
    PublicationSettings,
    RedriveSettings,
    RevisionSettings,
    SecretSettings,
    SendRateSettings,
    SettingsT,
    SignupLimitSettings,
    SiteSettings,
    SubscriberSettings,
    TestEmailSettings,
    TokenSettings,
    TopicSettings,
    UploadSettings,
    WebhookSettings,
    WebhookTableSettings,
    read_settings,
)

KEYRING_RELOAD_SECONDS = 30.0
"""The least time between two reads of the keyring past its cache (see `_keyring_after_rotation`)."""

if TYPE_CHECKING:
    from newsdesk.dal.articles import ArticleRepository
    from newsdesk.dal.email import SesSender
    from newsdesk.dal.erasures import ErasureRepository
    from newsdesk.dal.ledger import LedgerRepository
    from newsdesk.dal.publications import PublicationRepository
    from newsdesk.dal.subscribers import SubscriberRepository
    from newsdesk.dal.webhooks import WebhookRepository
    from newsdesk.models.keys import Keyring
    from newsdesk.services.articles import ArticleService
    from newsdesk.services.audit import AuditLog
    from newsdesk.services.delivery import DeliveryReports, FanoutService, MailerService, Tally
    from newsdesk.services.emails import EmailComposer
    from newsdesk.services.erasure import ErasureService, TopicCleanup
    from newsdesk.services.events import ChangeEvents
    from newsdesk.services.keys import SigningKeys
    from newsdesk.services.limits import ConfirmationBounces, ConfirmationLimits, TestEmailLimit
    from newsdesk.services.links import LinkSigner, Pseudonyms
    from newsdesk.services.news import NewsEditor, NewsReader
    from newsdesk.services.people import PeopleService
    from newsdesk.services.previews import PreviewService
    from newsdesk.services.recipients import RecipientKeys
    from newsdesk.services.scheduling import DeadLetterRedrive, DigestService, Housekeeping
    from newsdesk.services.ses_feedback import SesFeedback
    from newsdesk.services.subscriptions import SubscriptionService
    from newsdesk.services.tokens import TokenService
    from newsdesk.services.topics import TopicService
    from newsdesk.services.uploads import UploadService
    from newsdesk.services.webhooks import WebhookDispatch, WebhookSecrets, WebhookSender, WebhookService


class Container:
    def __init__(self) -> None:
        self._settings: dict[type, Any] = {}
        self._keyring_reloaded_at: float | None = None

    def settings(self, kind: type[SettingsT]) -> SettingsT:
        """`kind` read from the environment on first use (a ConfigurationError names what is missing)."""
        if kind not in self._settings:
            self._settings[kind] = read_settings(kind)
        return cast("SettingsT", self._settings[kind])

    # ------------------------------------------------------------------------------------------ clients
    # One client per service and process; each honours AWS_ENDPOINT_URL, which is how the local stack is
    # reached. A test may replace one (`container().ses = stand_in`) before the services using it are built.
    # SES, SQS and S3 clients are made on first use (LazyClient): a function's first request often never
    # reaches them, and making one loads its service's model, tens of milliseconds of a cold start.
    @cached_property
    def dynamodb(self) -> Any:
        from newsdesk.dal.dynamodb import dynamodb_client

        return dynamodb_client()

    @cached_property
    def ses(self) -> Any:
        from newsdesk.dal.email import ses_client

        return LazyClient(ses_client)

    @cached_property
    def sqs(self) -> Any:
        from newsdesk.dal.queues import sqs_client

        return LazyClient(sqs_client)

    @cached_property
    def s3(self) -> Any:
        from newsdesk.dal.uploads import s3_client

        return LazyClient(s3_client)

    @cached_property
    def events(self) -> Any:
        from newsdesk.dal.event_bus import events_client

        return events_client()

    # ------------------------------------------------------------------------------------- repositories
    @cached_property
    def article_repository(self) -> ArticleRepository:
        from newsdesk.dal.articles import ArticleRepository

        return ArticleRepository(
            self.dynamodb,
            self.settings(ArticleSettings).articles_table,
            publications_table=self.settings(PublicationSettings).publications_table,
            audit_table=self.audit_table,
            revisions_table=self.settings(RevisionSettings).revisions_table,
            revisions_kept=self.settings(RevisionSettings).revisions_kept,
        )

    @cached_property
    def subscriber_repository(self) -> SubscriberRepository:
        from newsdesk.dal.subscribers import SubscriberRepository

        settings = self.settings(SubscriberSettings)
        return SubscriberRepository(self.dynamodb, settings.subscribers_table, settings.topic_members_table)

    @cached_property
    def topic_service(self) -> TopicService:
        from newsdesk.dal.topics import TopicRepository
        from newsdesk.services.topics import TopicService

        return TopicService(TopicRepository(self.dynamodb, self.settings(TopicSettings).topics_table))

    @cached_property
    def publication_repository(self) -> PublicationRepository:
        from newsdesk.dal.publications import PublicationRepository
        from newsdesk.dal.subscribers import FANOUT_SHARDS

        table = self.settings(PublicationSettings).publications_table
        return PublicationRepository(self.dynamodb, table, shards=FANOUT_SHARDS)

    @cached_property
    def ledger_repository(self) -> LedgerRepository:
        from newsdesk.dal.ledger import LedgerRepository

        return LedgerRepository(self.dynamodb, self.settings(LedgerSettings).deliveries_table)

    @cached_property
    def webhook_repository(self) -> WebhookRepository:
        from newsdesk.dal.webhooks import WebhookRepository

        return WebhookRepository(self.dynamodb, self.settings(WebhookTableSettings).webhooks_table)

    @cached_property
    def erasure_repository(self) -> ErasureRepository:
        from newsdesk.dal.erasures import ErasureRepository

        return ErasureRepository(self.dynamodb, self.settings(ErasureTableSettings).erasures_table)

    # ------------------------------------------------------------------ built per use: the keyring is cached
    # by Powertools' parameter cache (CACHE_SECONDS), so a rotated key is picked up without a cold start.
    def keyring(self) -> Keyring:
        from newsdesk.dal.parameters import signing_keyring

        return signing_keyring(self.settings(SecretSettings).signing_secret_arn)

    def _keyring_after_rotation(self) -> Keyring | None:
        """The keyring read past the cache, for a key id the cached one lacks (a rotation this function has
        not seen yet); None when it was read so within KEYRING_RELOAD_SECONDS, so that made-up key ids in
        links cannot make every request a Secrets Manager call."""
        from newsdesk.dal.parameters import signing_keyring

        now = time.monotonic()
        if self._keyring_reloaded_at is not None and now - self._keyring_reloaded_at < KEYRING_RELOAD_SECONDS:
            return None
        self._keyring_reloaded_at = now
        return signing_keyring(self.settings(SecretSettings).signing_secret_arn, fresh=True)

    def signing_keys(self) -> SigningKeys:
        from newsdesk.services.keys import SigningKeys

        return SigningKeys(self.keyring(), reload=self._keyring_after_rotation)

    def link_signer(self) -> LinkSigner:
        from newsdesk.dal.parameters import api_base_url
        from newsdesk.services.links import LinkSigner

        return LinkSigner(self.signing_keys(), api_base_url(self.settings(LinkSettings).api_url_parameter))

    def api_url(self) -> str:
        """The API's public address (`PublicApiUrl`, else the execute-api one), without a trailing slash."""
        from newsdesk.dal.parameters import api_base_url

        return api_base_url(self.settings(ApiUrlSettings).api_url_parameter)

    def recipient_keys(self) -> RecipientKeys:
        from newsdesk.services.recipients import RecipientKeys

        return RecipientKeys(self.keyring().identifier_key)

    def pseudonyms(self) -> Pseudonyms:
        from newsdesk.services.links import Pseudonyms

        return Pseudonyms(self.keyring().identifier_key)

    def webhook_secrets(self) -> WebhookSecrets:
        from newsdesk.services.webhooks import WebhookSecrets

        return WebhookSecrets(self.signing_keys())

    # ----------------------------------------------------------------------------------------- services
    @cached_property
    def article_service(self) -> ArticleService:
        from newsdesk.dal.revisions import RevisionRepository
        from newsdesk.services.articles import ArticleService

        return ArticleService(
            self.article_repository,
            audit=self.audit_log,
            revisions=RevisionRepository(self.dynamodb, self.settings(RevisionSettings).revisions_table),
            media_base_url=self.settings(ArticleSettings).media_base_url,
        )

    @cached_property
    def audit_log(self) -> AuditLog:
        from newsdesk.dal.audit import AuditRepository
        from newsdesk.services.audit import AuditLog

        return AuditLog(AuditRepository(self.dynamodb, self.audit_table))

    @property
    def audit_table(self) -> str:
        return self.settings(AuditSettings).audit_table

    @cached_property
    def news_editor(self) -> NewsEditor:
        from newsdesk.services.news import NewsEditor

        return NewsEditor(self.article_service, self.article_repository)

    @cached_property
    def news_reader(self) -> NewsReader:
        from newsdesk.services.news import NewsReader

        return NewsReader(self.article_service, self.article_repository)

    @cached_property
    def token_service(self) -> TokenService:
        """What the authorizer checks tokens with: it reads tokens and people, and writes nothing."""
        from newsdesk.dal.people import PeopleRepository
        from newsdesk.dal.tokens import TokenRepository
        from newsdesk.services.tokens import TokenService

        people = PeopleRepository(self.dynamodb, self.settings(PeopleSettings).people_table)
        return TokenService(TokenRepository(self.dynamodb, self.settings(TokenSettings).tokens_table), people=people)

    @cached_property
    def people_service(self) -> PeopleService:
        """People and their tokens, each change recorded in the audit trail in its transaction."""
        from newsdesk.dal.people import PeopleRepository
        from newsdesk.dal.tokens import TokenRepository
        from newsdesk.services.people import PeopleService
        from newsdesk.services.tokens import TokenService

        people = PeopleRepository(
            self.dynamodb,
            self.settings(PeopleSettings).people_table,
            audit_table=self.audit_table,
            articles_table=self.settings(ArticleSettings).articles_table,
        )
        tokens = TokenRepository(self.dynamodb, self.settings(TokenSettings).tokens_table, audit_table=self.audit_table)
        return PeopleService(
            people, tokens=TokenService(tokens, people=people, audit=self.audit_log), audit=self.audit_log
        )

    @cached_property
    def preview_service(self) -> PreviewService:
        from newsdesk.dal.revisions import PreviewRepository
        from newsdesk.services.previews import PreviewService

        previews = PreviewRepository(self.dynamodb, self.settings(RevisionSettings).revisions_table)
        return PreviewService(previews, articles=self.article_service, links=self.link_signer, audit=self.audit_log)

    @cached_property
    def email_composer(self) -> EmailComposer:
        from newsdesk.services.emails import EmailComposer

        site = self.settings(SiteSettings)
        return EmailComposer(
            sender=self.settings(EmailSettings).sender_address,
            publication=site.publication_name,
            site_url=site.site_base,
            privacy_policy_url=site.privacy_policy_url,
        )

    @cached_property
    def ses_sender(self) -> SesSender:
        from newsdesk.dal.email import SesSender

        return SesSender(self.ses, configuration_set=self.settings(EmailSettings).ses_configuration_set)

    @cached_property
    def confirmation_limits(self) -> ConfirmationLimits:
        from newsdesk.dal.limits import RateLimitRepository
        from newsdesk.services.limits import ConfirmationLimits, LimitSettings

        settings = self.settings(SignupLimitSettings)
        return ConfirmationLimits(
            RateLimitRepository(self.dynamodb, settings.rate_limits_table),
            LimitSettings(
                per_mailbox_per_day=settings.confirmations_per_mailbox_per_day,
                per_source_per_hour=settings.confirmations_per_source_per_hour,
                per_hour=settings.confirmations_per_hour,
                exempt_loopback=settings.exempt_loopback_from_source_limit,
            ),
            pseudonyms=self.pseudonyms,
            # Sign-ups only (imports are not paused): built when a sign-up first asks.
            bounces=lambda: self.confirmation_bounces,
        )

    @cached_property
    def confirmation_bounces(self) -> ConfirmationBounces:
        from newsdesk.dal.limits import RateLimitRepository
        from newsdesk.services.limits import ConfirmationBounces

        settings = self.settings(ConfirmationBounceSettings)
        return ConfirmationBounces(
            RateLimitRepository(self.dynamodb, settings.rate_limits_table),
            max_rate=settings.confirmation_bounce_rate_percent / 100,
            stack=settings.stack_name,
        )

    @cached_property
    def test_email_limit(self) -> TestEmailLimit:
        from newsdesk.dal.limits import RateLimitRepository
        from newsdesk.services.limits import TestEmailLimit

        settings = self.settings(TestEmailSettings)
        return TestEmailLimit(
            RateLimitRepository(self.dynamodb, settings.rate_limits_table),
            per_hour=settings.test_emails_per_token_per_hour,
        )

    @cached_property
    def subscription_service(self) -> SubscriptionService:
        from newsdesk.services.subscriptions import SubscriptionService

        return SubscriptionService(
            self.subscriber_repository,
            sender=self.ses_sender,
            composer=self.email_composer,
            links=self.link_signer,
            # Only the functions that send confirmations have the limits' table: built when first needed.
            limits=lambda: self.confirmation_limits,
            topics=self.topic_service,
            publications=self.publication_repository,
            privacy_policy_url=self.settings(SiteSettings).privacy_policy_url,
            record_consent_ip=self.settings(ConsentSettings).record_consent_ip,
        )

    @cached_property
    def fanout_service(self) -> FanoutService:
        from newsdesk.dal.ledger import shards_for
        from newsdesk.dal.queues import QueuePublisher
        from newsdesk.services.delivery import FanoutService

        settings = self.settings(FanoutSettings)
        return FanoutService(
            publications=self.publication_repository,
            subscribers=self.subscriber_repository,
            fanout_queue=QueuePublisher(self.sqs, settings.fanout_queue_url),
            send_queue=QueuePublisher(self.sqs, settings.send_queue_url),
            topics=self.topic_service.slugs,
            ledger_shards=shards_for(self.settings(SendRateSettings).send_rate_per_second),
        )

    @cached_property
    def mailer_service(self) -> MailerService:
        from newsdesk.dal.queues import QueuePublisher
        from newsdesk.services.delivery import MailerService

        settings = self.settings(MailerSettings)
        return MailerService(
            publications=self.publication_repository,
            ledger=self.ledger_repository,
            subscribers=self.subscriber_repository,
            articles=self.article_repository,
            sender=self.ses_sender,
            composer=self.email_composer,
            links=self.link_signer,
            recipient_keys=self.recipient_keys,
            send_queue=QueuePublisher(self.sqs, settings.send_queue_url),
            rate=self.settings(SendRateSettings).mailer_rate,
            reconciliation_window=timedelta(seconds=settings.reconciliation_window_seconds),
            catalog=self.topic_service.all,
            max_attempts=settings.max_send_attempts,
        )

    @cached_property
    def tally(self) -> Tally:
        from newsdesk.services.delivery import Tally

        return Tally(publications=self.publication_repository)

    @cached_property
    def ses_feedback(self) -> SesFeedback:
        from newsdesk.services.ses_feedback import SesFeedback

        engagement = None
        if self.settings(EngagementSettings).track_engagement:
            from newsdesk.services.engagement import EngagementCounter

            engagement = EngagementCounter(self.publication_repository, self.keyring().identifier_key)
        return SesFeedback(
            ledger=self.ledger_repository,
            subscribers=self.subscriber_repository,
            engagement=engagement,
            # Read only for a sign-up's confirmation that bounced.
            confirmation_bounces=lambda: self.confirmation_bounces,
        )

    @cached_property
    def delivery_reports(self) -> DeliveryReports:
        from newsdesk.services.delivery import DeliveryReports

        return DeliveryReports(
            articles=self.article_repository,
            publications=self.publication_repository,
            ledger=self.ledger_repository,
            sender=self.ses_sender,
            composer=self.email_composer,
            links=self.link_signer,
            subscribers=self.subscriber_repository,
            # Only EditorFunction sends test emails: the limits' table is read when first needed.
            test_emails=lambda: self.test_email_limit,
        )

    @cached_property
    def digest_service(self) -> DigestService:
        from newsdesk.services.scheduling import DigestService

        return DigestService(articles=self.article_repository, publications=self.publication_repository)

    @cached_property
    def dead_letter_redrive(self) -> DeadLetterRedrive:
        from newsdesk.dal.queues import DeadLetterQueue
        from newsdesk.dal.redrives import RedriveRounds
        from newsdesk.services.scheduling import DeadLetterRedrive

        settings = self.settings(RedriveSettings)
        return DeadLetterRedrive(
            [
                DeadLetterQueue(self.sqs, settings.fanout_dead_letter_queue_url),
                DeadLetterQueue(self.sqs, settings.send_dead_letter_queue_url),
            ],
            RedriveRounds(self.dynamodb, self.settings(PublicationSettings).publications_table),
        )

    @cached_property
    def housekeeping(self) -> Housekeeping:
        from newsdesk.services.scheduling import Housekeeping

        return Housekeeping(
            publications=self.publication_repository, fanout=self.fanout_service, redrive=self.dead_letter_redrive.run
        )

    @cached_property
    def upload_service(self) -> UploadService:
        from newsdesk.dal.queues import QueuePublisher
        from newsdesk.dal.uploads import UploadObjects, UploadRepository
        from newsdesk.services.imports import SubscriberImporter
        from newsdesk.services.uploads import UploadService

        settings = self.settings(UploadSettings)
        uploads = UploadRepository(self.dynamodb, settings.uploads_table, retention_days=settings.upload_retention_days)
        objects = UploadObjects(self.s3)
        importer = SubscriberImporter(
            uploads=uploads,
            objects=objects,
            subscribers=self.subscriber_repository,
            subscriptions=self.subscription_service,
            chunks=QueuePublisher(self.sqs, settings.import_queue_url),
            confirmations=QueuePublisher(self.sqs, settings.confirmation_queue_url),
            # Each consumer sends at one mailer's share of the SES rate (the queue allows two at once).
            confirmation_rate=self.settings(SendRateSettings).mailer_rate,
        )
        return UploadService(
            uploads=uploads,
            objects=objects,
            articles=self.article_service,
            importer=importer,
            default_author=self.settings(SiteSettings).publication_name,
        )

    # -------------------------------------------------------------------------------- events, webhooks
    @cached_property
    def change_events(self) -> ChangeEvents:
        from newsdesk.dal.event_bus import EventBus
        from newsdesk.services.events import ChangeEvents

        bus = EventBus(self.events, self.settings(EventBusSettings).event_bus_name)
        return ChangeEvents(bus, site_base=self.settings(SiteSettings).site_base)

    @cached_property
    def webhook_service(self) -> WebhookService:
        from newsdesk.dal.queues import QueuePublisher
        from newsdesk.services.webhooks import WebhookService
        from newsdesk.webhook_targets import TargetMode

        settings = self.settings(WebhookSettings)
        return WebhookService(
            self.webhook_repository,
            delivery_queue=QueuePublisher(self.sqs, settings.webhook_delivery_queue_url),
            secrets=self.webhook_secrets,
            mode=TargetMode(settings.webhook_targets),
            ports=settings.target_ports,
        )

    @cached_property
    def webhook_dispatch(self) -> WebhookDispatch:
        from newsdesk.dal.queues import QueuePublisher
        from newsdesk.services.webhooks import WebhookDispatch

        return WebhookDispatch(
            self.webhook_repository,
            delivery_queue=QueuePublisher(self.sqs, self.settings(WebhookSettings).webhook_delivery_queue_url),
            recipient_keys=self.recipient_keys,
            tombstones=lambda ids: self.erasure_repository.tombstones(ids),
        )

    @cached_property
    def webhook_sender(self) -> WebhookSender:
        from newsdesk.dal.queues import QueuePublisher, ReceivedMessages
        from newsdesk.dal.webhook_client import WebhookClient
        from newsdesk.services.webhooks import WebhookSender
        from newsdesk.webhook_targets import TargetMode

        settings = self.settings(WebhookSettings)
        return WebhookSender(
            self.webhook_repository,
            client=WebhookClient(TargetMode(settings.webhook_targets), ports=settings.target_ports),
            delivery_queue=QueuePublisher(self.sqs, settings.webhook_delivery_queue_url),
            received=ReceivedMessages(self.sqs, settings.webhook_delivery_queue_url),
            secrets=self.webhook_secrets,
            retry_base_seconds=settings.webhook_retry_base_seconds,
        )

    # ------------------------------------------------------------------------------------------ erasure
    @cached_property
    def erasure_service(self) -> ErasureService:
        from newsdesk.dal.queues import QueuePublisher
        from newsdesk.services.erasure import ErasureService

        return ErasureService(
            self.erasure_repository,
            subscribers=self.subscriber_repository,
            ledger=self.ledger_repository,
            webhooks=self.webhook_repository,
            limits=lambda: self.confirmation_limits,
            recipient_keys=self.recipient_keys,
            queue=QueuePublisher(self.sqs, self.settings(ErasureSettings).erasure_queue_url),
        )

    @cached_property
    def topic_cleanup(self) -> TopicCleanup:
        from newsdesk.dal.queues import QueuePublisher
        from newsdesk.services.erasure import TopicCleanup

        return TopicCleanup(
            self.topic_service,
            self.subscriber_repository,
            queue=QueuePublisher(self.sqs, self.settings(ErasureSettings).erasure_queue_url),
        )


_current = Container()


def container() -> Container:
    return _current


def reset() -> Container:
    """A new container (and no cached parameters): what a new execution environment would start with."""
    from aws_lambda_powertools.utilities.parameters import clear_caches

    global _current
    _current = Container()
    clear_caches()
    return _current


def _resumed_from_snapshot() -> None:
    """Every environment resumed from one SnapStart snapshot would otherwise share its state: the same
    `random` sequence (the send back-off's jitter), the snapshot's connections (long closed) and clients,
    settings and services built then, and the signing secret cached with the snapshot's clock. Anything made
    before the snapshot is dropped here and made again on first use."""
    random.seed()
    reset()


# Hooks before the snapshot run in the reverse order of their registration: this one, registered as the
# handler module starts importing, runs after those its import registers (an HTTP function's routers).
snapstart.before_snapshot(build_imported_models)
snapstart.after_restore(_resumed_from_snapshot)


def site_settings() -> SiteSettings:
    """The publication's name and site, which pages and the feed show."""
    return _current.settings(SiteSettings)


def news_settings() -> NewsSettings:
    """The publication's language and logo, which the sitemaps, the feed and the structured data say."""
    return _current.settings(NewsSettings)


def api_url() -> str:
    """Where the API itself is served (the feed's own address is under it)."""
    return _current.api_url()


# ------------------------------------------------------------------------------- for the routes' Depends
# Powertools resolves `Depends(f)` by calling f() per request: each looks the service up in the current
# container, so a reset reaches the routes too.
def article_service() -> ArticleService:
    return _current.article_service


def audit_log() -> AuditLog:
    return _current.audit_log


def people_service() -> PeopleService:
    return _current.people_service


def preview_service() -> PreviewService:
    return _current.preview_service


def news_editor() -> NewsEditor:
    return _current.news_editor


def news_reader() -> NewsReader:
    return _current.news_reader


def delivery_reports() -> DeliveryReports:
    return _current.delivery_reports


def subscription_service() -> SubscriptionService:
    return _current.subscription_service


def topic_service() -> TopicService:
    return _current.topic_service


def upload_service() -> UploadService:
    return _current.upload_service


def webhook_service() -> WebhookService:
    return _current.webhook_service


def erasure_service() -> ErasureService:
    return _current.erasure_service


def topic_cleanup() -> TopicCleanup:
    return _current.topic_cleanup
