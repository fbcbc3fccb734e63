"""Configuration from environment variables: one pydantic model per concern, read and validated when the first
service that needs it is built (newsdesk.dependencies), so each function reads only the variables it uses and a
variable one function lacks cannot break another. Variable names are the upper-case field names.
"""

import os
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from newsdesk.errors import ConfigurationError

if TYPE_CHECKING:
    from newsdesk.webhook_targets import TargetPorts


class _Environment(BaseModel):
    # Built when first read: a function reads a few of these classes, and building the others at import would
    # be part of every cold start. Plain pydantic rather than pydantic-settings: every value here is a string,
    # a number or a flag, which pydantic reads from a string itself, and pydantic-settings' import (asyncio,
    # argparse, its CLI and cloud sources) cost more of a cold start than everything else settings do.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class SiteSettings(_Environment):
    publication_name: str = "Newsdesk"
    # The template's SiteUrl pattern; a str, as pydantic's URL types import importlib.metadata (and build their
    # validator) at every cold start for a value only ever joined to paths.
    site_url: str = Field(default="https://example.com", pattern=r"^https?://[^\s/]+\S*$")
    privacy_policy_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="shown in confirmation emails and pages, and kept in each consent record; empty: none",
    )
    local_pages: str = Field(default="", description="the local stack only: where the runner's own pages are")

    @property
    def site_base(self) -> str:
        return str(self.site_url).rstrip("/")


class NewsSettings(_Environment):
    """What the sitemaps, the feed and each article's structured data say about the publication."""

    publication_language: str = Field(
        default="en",
        pattern=r"^[a-z]{2,3}(-[a-z]{2,4})?$",
        description="ISO 639 code of the articles' language (`en`, `fr`; `zh-cn` and `zh-tw` as Google News asks)",
    )
    publisher_logo_url: str = Field(
        default="", pattern=r"^(https?://\S+)?$", description="the publisher's logo in structured data; empty: none"
    )


class ArticleSettings(_Environment):
    articles_table: str = Field(min_length=3)
    media_base_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="address that serves the uploads bucket's media/ as <base>/media/...; empty: images stay relative",
    )


class PublicationSettings(_Environment):
    publications_table: str = Field(min_length=3)


class SubscriberSettings(_Environment):
    subscribers_table: str = Field(min_length=3)
    topic_members_table: str = Field(min_length=3)


class TopicSettings(_Environment):
    topics_table: str = Field(min_length=3)


class ConsentSettings(_Environment):
    record_consent_ip: bool = Field(default=False, description="keep the sign-up's source IP in the consent record")


class TokenSettings(_Environment):
    tokens_table: str = Field(min_length=3)


class PeopleSettings(_Environment):
    people_table: str = Field(min_length=3, description="the newsroom's people, whose tokens open /admin")


class RevisionSettings(_Environment):
    revisions_table: str = Field(min_length=3, description="articles' revisions and their preview links")
    revisions_kept: int = Field(default=20, ge=1, le=100, description="revisions kept per article (the newest)")


class AuditSettings(_Environment):
    audit_table: str = Field(min_length=3, description="the audit trail: who changed what, and when")


class LedgerSettings(_Environment):
    deliveries_table: str = Field(min_length=3)


class SecretSettings(_Environment):
    signing_secret_arn: str = Field(min_length=1)


class ApiUrlSettings(_Environment):
    api_url_parameter: str = Field(min_length=1, description="SSM parameter holding the API's base URL")


class LinkSettings(SecretSettings, ApiUrlSettings):
    """What signed links need: the key, and the API's address they point at."""


class EmailSettings(_Environment):
    sender_address: str = Field(min_length=3, description="verified SES sender, e.g. news@example.org")
    ses_configuration_set: str = Field(min_length=1)


class SendRateSettings(_Environment):
    send_rate_per_second: float = Field(gt=0, description="the SES account's send rate, shared by the mailers")
    mailer_concurrency: int = Field(ge=1)

    @property
    def mailer_rate(self) -> float:
        """Messages per second one mailer may send, so that all of them together stay within SES's rate."""
        return self.send_rate_per_second / self.mailer_concurrency


class FanoutSettings(_Environment):
    fanout_queue_url: str = Field(min_length=1)
    send_queue_url: str = Field(min_length=1)


class MailerSettings(_Environment):
    send_queue_url: str = Field(min_length=1)
    reconciliation_window_seconds: int = Field(
        default=900, ge=1, le=43200, description="how long a pending send may wait for its Send event"
    )
    max_send_attempts: int = Field(
        default=5, ge=1, le=10, description="emails to one recipient SES never confirmed, before it is failed"
    )


class RedriveSettings(_Environment):
    fanout_dead_letter_queue_url: str = Field(min_length=1)
    send_dead_letter_queue_url: str = Field(min_length=1)


class SignupLimitSettings(_Environment):
    rate_limits_table: str = Field(min_length=3)
    confirmations_per_mailbox_per_day: int = Field(default=3, ge=1)
    confirmations_per_source_per_hour: int = Field(default=20, ge=1)
    confirmations_per_hour: int = Field(default=5000, ge=1)
    exempt_loopback_from_source_limit: bool = Field(default=False, description="the local stack only")


class ConfirmationBounceSettings(_Environment):
    rate_limits_table: str = Field(min_length=3)
    confirmation_bounce_rate_percent: float = Field(
        default=5, gt=0, le=100, description="above this bounce rate in the last hour, sign-ups' confirmations pause"
    )
    stack_name: str = Field(min_length=1, description="the stack's name: a dimension of the metrics its alarms watch")


class TestEmailSettings(_Environment):
    rate_limits_table: str = Field(min_length=3)
    test_emails_per_token_per_hour: int = Field(default=20, ge=1)


class UploadSettings(_Environment):
    uploads_table: str = Field(min_length=3)
    upload_retention_days: int = Field(default=90, ge=1)
    import_queue_url: str = Field(min_length=1)
    confirmation_queue_url: str = Field(min_length=1)


class EngagementSettings(_Environment):
    track_engagement: bool = False


class EventBusSettings(_Environment):
    event_bus_name: str = Field(min_length=1, description="the stack's EventBridge bus for Newsdesk's events")


class WebhookTableSettings(_Environment):
    webhooks_table: str = Field(min_length=3, description="webhook endpoints and their deliveries")


class WebhookSettings(WebhookTableSettings):
    webhook_delivery_queue_url: str = Field(min_length=1, description="one message per delivery attempt")
    webhook_retry_base_seconds: int = Field(
        default=60, ge=0, le=900, description="the wait before a failed delivery's first retry; doubled each time"
    )
    webhook_targets: str = Field(
        default="public",
        pattern=r"^(public|public-and-loopback|loopback)$",
        description="where webhooks may point: public https hosts; the local stack adds (or only allows) 127.0.0.1",
    )
    webhook_allowed_ports: str = Field(
        default="443", pattern=r"^\d{1,5}(,\d{1,5})*$", description="the ports a webhook on a public host may use"
    )
    aws_endpoint_url: str = Field(
        default="", description="the local stack only: its embedded AWS, whose port is never a webhook target"
    )

    @property
    def target_ports(self) -> "TargetPorts":
        # Imported here: the webhook rules (and ipaddress) are for the functions that check a target.
        from newsdesk.webhook_targets import TargetPorts

        allowed = frozenset(int(port) for port in self.webhook_allowed_ports.split(","))
        if not all(0 < port < 65536 for port in allowed):
            raise ConfigurationError(f"WEBHOOK_ALLOWED_PORTS: not a port list: {self.webhook_allowed_ports}")
        try:
            local_aws = urlsplit(self.aws_endpoint_url).port if self.aws_endpoint_url else None
        except ValueError as exc:
            raise ConfigurationError(f"AWS_ENDPOINT_URL: not a URL: {self.aws_endpoint_url}") from exc
        return TargetPorts(allowed=allowed, local_aws=local_aws)


class ErasureTableSettings(_Environment):
    erasures_table: str = Field(min_length=3, description="where each erasure stands, and its tombstone")


class ErasureSettings(ErasureTableSettings):
    erasure_queue_url: str = Field(min_length=1, description="steps of erasures and topic clean-ups still to do")


SettingsT = TypeVar("SettingsT", bound=_Environment)


def read_settings(kind: type[SettingsT]) -> SettingsT:
    """`kind` read from the environment now (names matched whatever their case); a missing or invalid variable
    is a ConfigurationError naming it."""
    environment = {name.lower(): value for name, value in os.environ.items()}
    try:
        return kind.model_validate({name: environment[name] for name in kind.model_fields if name in environment})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid or missing environment variables: {problems}") from exc
