"""Configuration from environment variables, read once and validated at cold start."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError

from newsdesk.errors import ConfigurationError


class Settings(BaseModel):
    """Every variable the functions read; names are the upper-case field names."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    articles_table: str = Field(min_length=3)
    publications_table: str = Field(min_length=3)
    tokens_table: str = Field(min_length=3)
    subscribers_table: str = Field(min_length=3)
    deliveries_table: str = Field(min_length=3)
    fanout_queue_url: str = Field(min_length=1)
    send_queue_url: str = Field(min_length=1)
    fanout_dead_letter_queue_url: str = Field(min_length=1)
    send_dead_letter_queue_url: str = Field(min_length=1)
    send_rate_per_second: float = Field(gt=0, description="the SES account's send rate, shared by the mailers")
    mailer_concurrency: int = Field(ge=1)
    sender_address: str = Field(min_length=3, description="verified SES sender, e.g. news@example.org")
    ses_configuration_set: str = Field(min_length=1)
    signing_secret_arn: str = Field(min_length=1)
    api_url_parameter: str = Field(min_length=1, description="SSM parameter holding the API's base URL")
    uploads_table: str = Field(min_length=3)
    upload_retention_days: int = Field(default=90, ge=1)
    import_queue_url: str = Field(min_length=1)
    confirmation_queue_url: str = Field(min_length=1)
    media_base_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="address that serves the uploads bucket's media/ as <base>/media/...; empty: images stay relative",
    )
    rate_limits_table: str = Field(default="", description="only the functions that send confirmations need it")
    confirmations_per_mailbox_per_day: int = Field(default=3, ge=1)
    confirmations_per_source_per_hour: int = Field(default=20, ge=1)
    confirmations_per_hour: int = Field(default=5000, ge=1)
    exempt_loopback_from_source_limit: bool = Field(default=False, description="the local stack only")
    reconciliation_window_seconds: int = Field(
        default=900, ge=1, le=43200, description="how long a pending send may wait for its Send event"
    )
    track_engagement: bool = False
    local_pages: str = Field(default="", description="the local stack only: where the runner's own pages are")
    publication_name: str = "Newsdesk"
    site_url: AnyHttpUrl = AnyHttpUrl("https://example.com")

    @property
    def site_base(self) -> str:
        return str(self.site_url).rstrip("/")

    @property
    def mailer_rate(self) -> float:
        """Messages per second one mailer may send, so that all of them together stay within SES's rate."""
        return self.send_rate_per_second / self.mailer_concurrency


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings.model_validate({name.lower(): value for name, value in os.environ.items()})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid or missing environment variables: {problems}") from exc
