"""Every test runs each function with only its IAM role: a policy that lacks an action the code uses fails.

This is the proof that the class of defect is closed: take one action out of the mailer's role, and the
newsletter the code would have sent is refused, as AWS would refuse it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from local.functions import InProcessFunctions
from local.resolver import Resolver
from local.template import Template
from tests.integration.conftest import Stack, running_stack
from tests.integration.test_newsletter import add_subscribers, publish_new_article
from tests.support.mail import outbox


def without_action(template: Template, function_id: str, action: str) -> Template:
    """A copy of the template whose function may no longer perform `action`."""
    data = copy.deepcopy(template.data)
    for policy in data["Resources"][function_id]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [name for name in actions if name != action]
    return Template(data=data, root=template.root)


@pytest.fixture
def stack_without_claims(monkeypatch: pytest.MonkeyPatch, template: Template, resolver: Resolver) -> Iterator[Stack]:
    narrowed = without_action(template, "MailerFunction", "dynamodb:PutItem")
    narrowed_resolver = Resolver(narrowed, region=resolver.region, parameter_overrides=resolver.parameter_overrides)
    with running_stack(monkeypatch, narrowed, narrowed_resolver, InProcessFunctions(narrowed, narrowed_resolver)) as s:
        yield s


def test_a_role_without_an_action_the_code_uses_is_refused_like_on_aws(stack_without_claims: Stack) -> None:
    stack = stack_without_claims
    add_subscribers(2)

    publish_new_article(stack)
    stack.drain(skip=("MailerFunction",))
    with pytest.raises(TimeoutError):  # the batches fail, come back and fail again
        stack.sources.drain(timeout=3)

    refused = {(d.function_id, d.action, d.resource) for d in stack.policy.take_denials()}
    deliveries = f"arn:aws:dynamodb:us-east-1:123456789012:table/{stack.table('DeliveriesTable')}"
    assert refused == {("MailerFunction", "dynamodb:PutItem", deliveries)}
    assert outbox() == []
