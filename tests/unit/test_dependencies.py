"""The container: each function builds its services from its own template environment alone, and a reset
leaves nothing cached behind."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from local.stack import local_resolver
from newsdesk import dependencies
from newsdesk.errors import ConfigurationError
from newsdesk.settings import SiteSettings

# What each handler (and each HTTP function's routes) takes from the container.
SERVICES = {
    "AuthorizerFunction": ["token_service"],
    "PublicFunction": ["article_service", "subscription_service", "preview_service"],
    "EditorFunction": ["article_service", "delivery_reports", "subscription_service", "upload_service",
                       "webhook_service", "erasure_service", "topic_cleanup", "people_service", "audit_log",
                       "preview_service"],
    "FanoutFunction": ["fanout_service"],
    "MailerFunction": ["mailer_service"],
    "SchedulerFunction": ["article_service", "digest_service", "housekeeping"],
    "UploadFunction": ["upload_service"],
    "SesEventsFunction": ["ses_feedback"],
    "TallyFunction": ["tally"],
    "EventsFunction": ["change_events"],
    "WebhooksFunction": ["webhook_dispatch", "webhook_sender"],
    "ErasureFunction": ["erasure_service", "topic_cleanup"],
}  # fmt: skip


UseOnly = Callable[[dict[str, str]], dependencies.Container]


@pytest.fixture
def only_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[UseOnly]:
    """Replace the process environment with exactly the given variables (plus a region for boto3)."""

    def use(variables: dict[str, str]) -> dependencies.Container:
        for name in list(os.environ):
            monkeypatch.delenv(name)
        for name, value in (variables | {"AWS_DEFAULT_REGION": "us-east-1"}).items():
            monkeypatch.setenv(name, value)
        return dependencies.reset()

    yield use
    dependencies.reset()


def test_every_function_builds_its_services_from_its_own_environment_alone(only_environment: UseOnly) -> None:
    resolver = local_resolver(api_url="https://api.newsdesk.test")
    functions = resolver.template.functions
    assert set(SERVICES) == set(functions), "a function of template.yaml is missing from SERVICES"

    for name, services in SERVICES.items():
        container = only_environment(resolver.function_environment(functions[name]))
        for service in services:
            assert getattr(container, service) is not None, f"{name} cannot build {service}"


def test_the_authorizer_needs_nothing_but_its_tokens_and_people_tables(only_environment: UseOnly) -> None:
    container = only_environment({"TOKENS_TABLE": "newsdesk-tokens", "PEOPLE_TABLE": "newsdesk-people"})

    assert container.token_service is not None
    with pytest.raises(ConfigurationError, match="SEND_QUEUE_URL"):
        _ = container.mailer_service  # what the authorizer never builds names what it lacks


def test_the_site_address_is_checked_and_joined_to_paths_without_a_double_slash(only_environment: UseOnly) -> None:
    assert only_environment({"SITE_URL": "https://news.example.org/"}).settings(SiteSettings).site_base == (
        "https://news.example.org"
    )
    assert only_environment({}).settings(SiteSettings).site_base == "https://example.com"
    for wrong in ("news.example.org", "https://", "ftp://news.example.org", "https://news example.org"):
        with pytest.raises(ConfigurationError, match="SITE_URL"):
            only_environment({"SITE_URL": wrong}).settings(SiteSettings)


def test_a_reset_rebuilds_every_service(only_environment: UseOnly) -> None:
    first = only_environment({"TOKENS_TABLE": "newsdesk-tokens", "PEOPLE_TABLE": "newsdesk-people"})
    service = first.token_service

    second = dependencies.reset()

    assert dependencies.container() is second is not first
    assert second.token_service is not service
