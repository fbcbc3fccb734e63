"""The template's stack on an embedded AWS, built one way for `make dev`, the tests and the benchmarks.

`build_stack` resolves template.yaml with the local parameters, creates its resources (in moto's server at
an endpoint, or in this process under moto's `mock_aws`), gives each function the IAM role SAM generates
for it and the resource-based policy its permissions make, and makes the local SES publish its events. What
runs the functions (worker processes or this process) and what feeds them (local.lambda_runtime.sources) is the caller's
choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from local.apigateway.invoke_policies import InvokePolicies
from local.aws.embedded import LocalResource, create_resources
from local.aws.ses_events import SesEventPublisher
from local.iam.policies import AccessPolicy, function_roles_from_template
from local.iam.ses_identities import set_sandbox
from local.template.model import FUNCTION, NAME_PREFIX, Template, load_template
from local.template.resolver import Resolver, check_parameters, local_parameters

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
DEFAULT_REGION = "us-east-1"


@cache
def project_template() -> Template:
    """template.yaml, read once per process."""
    return load_template(TEMPLATE)


def local_resolver(
    *,
    api_url: str | None = None,
    parameters: Mapping[str, str] | None = None,
    region: str = DEFAULT_REGION,
    prefix: str = NAME_PREFIX,
    template: Template | None = None,
) -> Resolver:
    """The template (template.yaml unless given) as the local stack deploys it: the local parameters of an
    API at `api_url` (when given), then `parameters`, which win. ValueError when CloudFormation would refuse
    one of the values."""
    template = template or project_template()
    overrides = (local_parameters(api_url) if api_url else {}) | dict(parameters or {})
    check_parameters(template, overrides)
    return Resolver(template, region=region, parameter_overrides=overrides, prefix=prefix)


@dataclass
class BuiltStack:
    resolver: Resolver
    policy: AccessPolicy
    resources: list[LocalResource]
    invoke_policies: InvokePolicies = field(repr=False)
    ses_events: SesEventPublisher = field(repr=False)

    @property
    def template(self) -> Template:
        return self.resolver.template


def build_stack(
    resolver: Resolver,
    *,
    endpoint: str | None = None,
    policy: AccessPolicy | None = None,
    ses_sandbox: bool = False,
) -> BuiltStack:
    """Create the resolver's resources; afterwards `policy` (a new one unless given) holds every function's
    role, `invoke_policies` who may invoke each function, and the local SES publishes the events of this
    stack's emails. With `ses_sandbox` the local SES behaves as a new account's does: it sends only to
    addresses a verified identity covers, and IAM checks the send against their identities too
    (local.iam.ses_identities).

    Without an endpoint the resources are created in this process, inside moto's `mock_aws`.
    """
    template = resolver.template
    set_sandbox(resolver.account_id, resolver.region, ses_sandbox)
    resources = create_resources(template, resolver, endpoint)
    resources += [
        LocalResource(logical_id, FUNCTION, resolver.physical_name(logical_id)) for logical_id in template.functions
    ]
    policy = policy or AccessPolicy(resolver.account_id)
    # After creation: the roles name ARNs that exist only now (the signing secret's, for one).
    policy.use_roles(function_roles_from_template(resolver))
    ses_events = SesEventPublisher(resolver)
    ses_events.install()
    return BuiltStack(resolver, policy, resources, InvokePolicies.from_template(resolver), ses_events)
