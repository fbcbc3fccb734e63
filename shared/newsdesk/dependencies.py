"""Services for the routes, built once per process from the settings; tests swap them through
`app.dependency_overrides` or by clearing these caches.

Each factory imports the classes it builds when it is first called: every function imports this module,
and importing every service for every function made each cold start pay for all of them (bench/cold_start.py).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from newsdesk.dal.clients import LazyClient
from newsdesk.dal.dynamodb import dynamodb_client
from newsdesk.dal.email import ses_client
from newsdesk.dal.queues import sqs_client
from newsdesk.settings import get_settings

if TYPE_CHECKING:
    from newsdesk.dal.articles import ArticleRepository
    from newsdesk.dal.email import SesSender
    from newsdesk.dal.ledger import LedgerRepository
    from newsdesk.dal.publications import PublicationRepository
    from newsdesk.dal.subscribers import SubscriberRepository
    from newsdesk.services.articles import ArticleService
    from newsdesk.services.delivery import DeliveryReports, FanoutService, MailerService, Tally
    from newsdesk.services.emails import EmailComposer
    from newsdesk.services.limits import ConfirmationLimits
    from newsdesk.services.links import LinkSigner
    from newsdesk.services.recipients import RecipientKeys
    from newsdesk.services.scheduling import DeadLetterRedrive, DigestService, Housekeeping
    from newsdesk.services.ses_feedback import SesFeedback
    from newsdesk.services.subscriptions import SubscriptionService
    from newsdesk.services.tokens import TokenService
    from newsdesk.services.uploads import UploadService


@lru_cache(maxsize=1)
def article_repository() -> ArticleRepository:
    from newsdesk.dal.articles import ArticleRepository

    return ArticleRepository(dynamodb_client(), get_settings().articles_table)


@lru_cache(maxsize=1)
def subscriber_repository() -> SubscriberRepository:
    from newsdesk.dal.subscribers import SubscriberRepository

    return SubscriberRepository(dynamodb_client(), get_settings().subscribers_table)


@lru_cache(maxsize=1)
def publication_repository() -> PublicationRepository:
    from newsdesk.dal.publications import PublicationRepository
    from newsdesk.dal.subscribers import FANOUT_SHARDS

    return PublicationRepository(dynamodb_client(), get_settings().publications_table, shards=FANOUT_SHARDS)


@lru_cache(maxsize=1)
def ledger_repository() -> LedgerRepository:
    from newsdesk.dal.ledger import LedgerRepository

    return LedgerRepository(dynamodb_client(), get_settings().deliveries_table)


@lru_cache(maxsize=1)
def article_service() -> ArticleService:
    from newsdesk.services.articles import ArticleService

    settings = get_settings()
    return ArticleService(
        article_repository(), publications_table=settings.publications_table, media_base_url=settings.media_base_url
    )


@lru_cache(maxsize=1)
def token_service() -> TokenService:
    from newsdesk.dal.tokens import TokenRepository
    from newsdesk.services.tokens import TokenService

    return TokenService(TokenRepository(dynamodb_client(), get_settings().tokens_table))


def link_signer() -> LinkSigner:
    """Built per use: the secret and the API URL come from Powertools' parameter cache (5 minutes)."""
    from newsdesk.dal.parameters import api_base_url, signing_secret
    from newsdesk.services.links import LinkSigner

    settings = get_settings()
    return LinkSigner(signing_secret(settings.signing_secret_arn), api_base_url(settings.api_url_parameter))


def recipient_keys() -> RecipientKeys:
    """Built per use, like the link signer: the key is derived from the signing secret (cached 5 minutes)."""
    from newsdesk.dal.parameters import signing_secret
    from newsdesk.services.recipients import RecipientKeys

    return RecipientKeys(signing_secret(get_settings().signing_secret_arn))


@lru_cache(maxsize=1)
def email_composer() -> EmailComposer:
    from newsdesk.services.emails import EmailComposer

    settings = get_settings()
    return EmailComposer(
        sender=settings.sender_address, publication=settings.publication_name, site_url=settings.site_base
    )


@lru_cache(maxsize=1)
def ses_sender() -> SesSender:
    from newsdesk.dal.email import SesSender

    return SesSender(LazyClient(ses_client), configuration_set=get_settings().ses_configuration_set)


@lru_cache(maxsize=1)
def confirmation_limits() -> ConfirmationLimits:
    from newsdesk.dal.limits import RateLimitRepository
    from newsdesk.errors import ConfigurationError
    from newsdesk.services.limits import ConfirmationLimits, LimitSettings

    settings = get_settings()
    if not settings.rate_limits_table:
        raise ConfigurationError("RATE_LIMITS_TABLE is not set: this function cannot send confirmations")
    return ConfirmationLimits(
        RateLimitRepository(dynamodb_client(), settings.rate_limits_table),
        LimitSettings(
            per_mailbox_per_day=settings.confirmations_per_mailbox_per_day,
            per_source_per_hour=settings.confirmations_per_source_per_hour,
            per_hour=settings.confirmations_per_hour,
            exempt_loopback=settings.exempt_loopback_from_source_limit,
        ),
        links=link_signer,
    )


@lru_cache(maxsize=1)
def subscription_service() -> SubscriptionService:
    from newsdesk.services.subscriptions import SubscriptionService

    return SubscriptionService(
        subscriber_repository(),
        sender=ses_sender(),
        composer=email_composer(),
        links=link_signer,
        limits=confirmation_limits,
    )


@lru_cache(maxsize=1)
def fanout_service() -> FanoutService:
    from newsdesk.dal.queues import QueuePublisher
    from newsdesk.services.delivery import FanoutService

    settings = get_settings()
    return FanoutService(
        publications=publication_repository(),
        subscribers=subscriber_repository(),
        fanout_queue=QueuePublisher(LazyClient(sqs_client), settings.fanout_queue_url),
        send_queue=QueuePublisher(LazyClient(sqs_client), settings.send_queue_url),
    )


@lru_cache(maxsize=1)
def mailer_service() -> MailerService:
    from datetime import timedelta

    from newsdesk.dal.queues import QueuePublisher
    from newsdesk.services.delivery import MailerService

    settings = get_settings()
    return MailerService(
        publications=publication_repository(),
        ledger=ledger_repository(),
        subscribers=subscriber_repository(),
        articles=article_repository(),
        sender=ses_sender(),
        composer=email_composer(),
        links=link_signer,
        recipient_keys=recipient_keys,
        send_queue=QueuePublisher(LazyClient(sqs_client), settings.send_queue_url),
        rate=settings.mailer_rate,
        reconciliation_window=timedelta(seconds=settings.reconciliation_window_seconds),
    )


@lru_cache(maxsize=1)
def tally() -> Tally:
    from newsdesk.services.delivery import Tally

    return Tally(publications=publication_repository())


@lru_cache(maxsize=1)
def ses_feedback() -> SesFeedback:
    from newsdesk.services.ses_feedback import SesFeedback

    engagement = None
    if get_settings().track_engagement:
        from newsdesk.dal.parameters import signing_secret
        from newsdesk.services.engagement import EngagementCounter

        engagement = EngagementCounter(publication_repository(), signing_secret(get_settings().signing_secret_arn))
    return SesFeedback(ledger=ledger_repository(), suppress=subscription_service().suppress, engagement=engagement)


@lru_cache(maxsize=1)
def delivery_reports() -> DeliveryReports:
    from newsdesk.services.delivery import DeliveryReports

    return DeliveryReports(
        articles=article_repository(),
        publications=publication_repository(),
        ledger=ledger_repository(),
        sender=ses_sender(),
        composer=email_composer(),
        links=link_signer,
        recipient_keys=recipient_keys,
    )


@lru_cache(maxsize=1)
def digest_service() -> DigestService:
    from newsdesk.services.scheduling import DigestService

    return DigestService(articles=article_repository(), publications=publication_repository())


@lru_cache(maxsize=1)
def dead_letter_redrive() -> DeadLetterRedrive:
    from newsdesk.dal.queues import DeadLetterQueue
    from newsdesk.dal.redrives import RedriveRounds
    from newsdesk.services.scheduling import DeadLetterRedrive

    settings = get_settings()
    return DeadLetterRedrive(
        [
            DeadLetterQueue(LazyClient(sqs_client), settings.fanout_dead_letter_queue_url),
            DeadLetterQueue(LazyClient(sqs_client), settings.send_dead_letter_queue_url),
        ],
        RedriveRounds(dynamodb_client(), settings.publications_table),
    )


@lru_cache(maxsize=1)
def housekeeping() -> Housekeeping:
    from newsdesk.services.scheduling import Housekeeping

    return Housekeeping(
        publications=publication_repository(), fanout=fanout_service(), redrive=dead_letter_redrive().run
    )


@lru_cache(maxsize=1)
def upload_service() -> UploadService:
    from newsdesk.dal.queues import QueuePublisher
    from newsdesk.dal.uploads import UploadObjects, UploadRepository, s3_client
    from newsdesk.services.imports import SubscriberImporter
    from newsdesk.services.uploads import UploadService

    settings = get_settings()
    uploads = UploadRepository(dynamodb_client(), settings.uploads_table, retention_days=settings.upload_retention_days)
    objects = UploadObjects(LazyClient(s3_client))
    importer = SubscriberImporter(
        uploads=uploads,
        objects=objects,
        subscribers=subscriber_repository(),
        subscriptions=subscription_service(),
        chunks=QueuePublisher(LazyClient(sqs_client), settings.import_queue_url),
        confirmations=QueuePublisher(LazyClient(sqs_client), settings.confirmation_queue_url),
        # Each consumer sends at one mailer's share of the SES rate (the queue allows two at once).
        confirmation_rate=settings.mailer_rate,
    )
    return UploadService(
        uploads=uploads,
        objects=objects,
        articles=article_service(),
        importer=importer,
        default_author=settings.publication_name,
    )


def reset() -> None:
    """Forget every cached service and parameter (tests call this after changing the environment)."""
    from aws_lambda_powertools.utilities.parameters import clear_caches

    from newsdesk.dal.uploads import s3_client

    for factory in (
        article_repository,
        subscriber_repository,
        publication_repository,
        article_service,
        token_service,
        email_composer,
        ses_sender,
        confirmation_limits,
        subscription_service,
        ledger_repository,
        fanout_service,
        mailer_service,
        tally,
        ses_feedback,
        delivery_reports,
        digest_service,
        dead_letter_redrive,
        housekeeping,
        upload_service,
        get_settings,
        dynamodb_client,
        ses_client,
        sqs_client,
        s3_client,
    ):
        factory.cache_clear()
    clear_caches()
