"""Handlers driven in-process with the sample events, against moto, with tables built from template.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_fixes
from local.functions import InProcessFunctions
from local.iam import AccessPolicy, enforced_in_process
from local.resolver import Resolver
from local.sources import EventSources
from local.stack import build_stack, local_resolver, project_template
from local.template import Template
from newsdesk import dependencies

ROOT = Path(__file__).resolve().parents[2]
API_URL = "https://api.newsdesk.test"
RECONCILIATION_WINDOW_SECONDS = 60


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stack:
    """The template's functions and tables, in this process; each function may only do what its IAM role
    allows (a refused call fails the test, see `stack`)."""

    template: Template
    resolver: Resolver
    functions: InProcessFunctions
    sources: EventSources
    policy: AccessPolicy

    def drain(self, *, skip: tuple[str, ...] = (), timeout: float = 120, wait_for_delayed: bool = True) -> None:
        """Run the queue and stream event sources until nothing is left to deliver."""
        self.sources.drain(skip=skip, timeout=timeout, wait_for_delayed=wait_for_delayed)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.functions.invoke(function, event)

    def call(self, function: str, event: dict[str, Any]) -> Reply:
        """Invoke an HTTP function and read its payload 2.0 answer."""
        answer = self.invoke(function, event)
        headers = {key.lower(): value for key, value in (answer.get("headers") or {}).items()}
        return Reply(answer["statusCode"], headers, answer.get("body") or "")

    def table(self, logical_id: str) -> str:
        return self.resolver.physical_name(logical_id)

    def items(self, logical_id: str) -> list[dict[str, Any]]:
        pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=self.table(logical_id))
        return [item for page in pages for item in page["Items"]]


@pytest.fixture(scope="session")
def template() -> Template:
    return project_template()


@pytest.fixture(scope="session")
def resolver(template: Template) -> Resolver:
    # A fast SES: the tests check what is sent, not how slowly (pacing has tests of its own). A window
    # of a minute: SES's events of a batch never wait that long here; tests that need it to pass move a
    # frozen clock on.
    return local_resolver(
        api_url=API_URL,
        parameters={
            "SendRatePerSecond": "5000",
            "ReconciliationWindowSeconds": str(RECONCILIATION_WINDOW_SECONDS),
            # Webhooks: retries at once (the schedule has tests of its own), and nothing but 127.0.0.1.
            "WebhookRetryBaseSeconds": "0",
            "WebhookTargets": "loopback",
        },
        template=template,
    )


@pytest.fixture(scope="session")
def functions(template: Template, resolver: Resolver) -> InProcessFunctions:
    return InProcessFunctions(template, resolver)


@contextmanager
def running_stack(
    monkeypatch: pytest.MonkeyPatch,
    template: Template,
    resolver: Resolver,
    functions: InProcessFunctions,
    *,
    ses_sandbox: bool = False,
) -> Iterator[Stack]:
    """The template's resources in moto, its functions in this process, each checked against its role
    (with `ses_sandbox`, SES as a new account has it: local.ses_identities)."""
    base = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": resolver.region,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    for key, value in base.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_fixes.apply()
    policy = AccessPolicy(resolver.account_id)
    with mock_aws(), enforced_in_process(policy):
        build_stack(resolver, policy=policy, ses_sandbox=ses_sandbox)
        for key, value in resolver.environment().items():
            monkeypatch.setenv(key, value)
        dependencies.reset()
        # Every handler is initialised before the test runs, as Lambda initialises before the first event
        # (once per worker: a test freezing time must not be the one whose clock a module's import sees).
        for logical_id in template.functions:
            functions.module(logical_id)
        sources = EventSources(
            template, resolver, functions.invoke, endpoint=None, service_credentials=policy.service_credentials
        )
        sources.pollers()  # stream positions are taken now, before the test writes anything
        yield Stack(template, resolver, functions, sources, policy)


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, template: Template, resolver: Resolver, functions: InProcessFunctions
) -> Iterator[Stack]:
    """The stack of template.yaml; a call AWS would refuse to a function fails the test."""
    with running_stack(monkeypatch, template, resolver, functions) as running:
        yield running
    refused = running.policy.take_denials()
    assert not refused, f"AWS would refuse these calls (the function's role lacks them): {refused}"
