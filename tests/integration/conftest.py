"""Handlers driven in-process with the sample events, against moto, with tables built from template.yaml."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.apigateway.server import ApiServer
from local.aws import moto_fixes
from local.iam.policies import AccessPolicy, enforced_in_process
from local.lambda_runtime.events import ApiContext, HttpRequest
from local.lambda_runtime.functions import InProcessFunctions
from local.lambda_runtime.sources import EventSources
from local.stack import build_stack, local_resolver, project_template
from local.template.model import Template
from local.template.resolver import Resolver
from newsdesk import dependencies, models
from newsdesk.api.routing import RoutedApp
from newsdesk.cli import main
from newsdesk.models.base import build_imported_models

ROOT = Path(__file__).resolve().parents[2]
BusTap = Callable[[], list[dict[str, Any]]]
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
    api: ApiServer

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

    def http(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """A request to the HTTP API as API Gateway serves it: the route, the token authorizer (with `token`,
        if given) and the function, in this process."""
        path, _, query = path.partition("?")
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        body = b""
        if json_body is not None:
            sent.setdefault("Content-Type", "application/json")
            body = json.dumps(json_body).encode()
        response = self.api.dispatch(HttpRequest(method, path, query, list(sent.items()), body))
        answer_headers = {key.lower(): value for key, value in response.headers}
        return Reply(response.status, answer_headers, response.body.decode("utf-8", errors="replace"))

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
            # Every test sends as one editor token; the hourly test-email limit has a test of its own.
            "TestEmailsPerTokenPerHour": "100000",
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
    (with `ses_sandbox`, SES as a new account has it: local.iam.ses_identities)."""
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
        built = build_stack(resolver, policy=policy, ses_sandbox=ses_sandbox)
        for key, value in resolver.environment().items():
            monkeypatch.setenv(key, value)
        dependencies.reset()
        # Every handler is initialised before the test runs, as Lambda initialises before the first event
        # (once per worker: a test freezing time must not be the one whose clock a module's import sees).
        for logical_id in template.functions:
            app = getattr(functions.module(logical_id), "app", None)
            if isinstance(app, RoutedApp):
                app.include_all()  # the routers too: importing one binds the clock the module sees
        # Models build on first use, and pydantic cannot build one while time is frozen (freezegun replaces
        # datetime.datetime itself): build them all now (some are imported only when a service needs them).
        for module in pkgutil.iter_modules(models.__path__, f"{models.__name__}."):
            importlib.import_module(module.name)
        build_imported_models()
        sources = EventSources(
            template, resolver, functions.invoke, endpoint=None, service_credentials=policy.service_credentials
        )
        sources.pollers()  # stream positions are taken now, before the test writes anything
        api = ApiServer(
            ("127.0.0.1", 0), template, functions, ApiContext(region=resolver.region),
            invoke_policies=built.invoke_policies,
        )  # fmt: skip
        try:
            yield Stack(template, resolver, functions, sources, policy, api)
        finally:
            api.server_close()


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, template: Template, resolver: Resolver, functions: InProcessFunctions
) -> Iterator[Stack]:
    """The stack of template.yaml; a call AWS would refuse to a function fails the test."""
    with running_stack(monkeypatch, template, resolver, functions) as running:
        yield running
    refused = running.policy.take_denials()
    assert not refused, f"AWS would refuse these calls (the function's role lacks them): {refused}"


@pytest.fixture
def bus(stack: Stack) -> BusTap:
    """What reaches the stack's bus: a rule of our own on it (as any AWS consumer would add), to a queue.
    Each call returns the events that came since the last one, in the bus's envelope."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue_url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = stack.resolver.physical_name("NewsdeskEventBus")
    events.put_rule(Name="tap", EventBusName=name, EventPattern=json.dumps({"source": ["newsdesk"]}))
    events.put_targets(Rule="tap", EventBusName=name, Targets=[{"Id": "tap", "Arn": queue_arn}])

    def read() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            found += [json.loads(message["Body"]) for message in messages]
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return found

    return read


@pytest.fixture
def admin(stack: Stack, capsys: pytest.CaptureFixture[str]) -> str:
    """An admin's token: one made as `newsdesk token create --name` made tokens before people existed."""
    assert main(["--table", stack.table("TokensTable"), "token", "create", "--name", "admin"]) == 0
    return capsys.readouterr().out.splitlines()[1]
