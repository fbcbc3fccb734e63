"""Lambda's resource-based policies: who may invoke each function.

CloudFormation turns each AWS::Lambda::Permission of the expanded template (the template's own, and those SAM
adds for event sources and authorizers) into one statement of its function's policy. `function_policies`
writes each policy as Lambda stores it (what Lambda's 20 KB limit counts), and `InvokePolicies` makes
Lambda's check when a service invokes a function: the local API asks it before every integration and
authorizer it calls, so a route that its function's policy does not cover fails locally as it fails on AWS.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from local.iam.policies import condition_holds, wildcard_matches
from local.template.model import Template
from local.template.resolver import Resolver
from local.template.sam import expanded_for, lambda_permissions

POLICY_SIZE_LIMIT = 20 * 1024
"""Bytes: Lambda refuses a permission that would make its function's policy larger (PolicyLengthExceeded)."""
STATEMENT_ID_LIMIT = 100
INVOKE = "lambda:InvokeFunction"
API_GATEWAY = "apigateway.amazonaws.com"
# What a permission may say that is emulated; anything else (function URLs, organizations, Alexa tokens) is
# refused rather than ignored.
_EMULATED = {"Action", "FunctionName", "Principal", "SourceArn", "SourceAccount"}


def statement_id(stack_name: str, permission_id: str) -> str:
    """The statement CloudFormation adds for a permission is named after the stack and the resource, with a
    random suffix (here a fixed one of the same length); Lambda keeps 100 characters at most."""
    suffix = hashlib.sha256(permission_id.encode()).hexdigest()[:12].upper()
    return f"{stack_name}-{permission_id}-{suffix}"[:STATEMENT_ID_LIMIT]


def _function_of(reference: Any, resources: dict[str, Any]) -> str:
    """The function a permission's FunctionName names (!Ref F, !GetAtt F.Arn, an alias of F SAM made, or an
    !If whose branches all name F): the local stack has no versions, so an alias's permission is its function's."""
    if isinstance(reference, dict) and "Fn::If" in reference:
        named = {_function_of(branch, resources) for branch in reference["Fn::If"][1:]}
        if len(named) == 1:
            return named.pop()
    elif isinstance(reference, dict) and "Ref" in reference:
        target = resources.get(str(reference["Ref"])) or {}
        if target.get("Type") == "AWS::Lambda::Alias":
            return _function_of(target["Properties"]["FunctionName"], resources)
        return str(reference["Ref"])
    elif isinstance(reference, dict) and "Fn::GetAtt" in reference:
        target = reference["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
    raise ValueError(f"a permission names its function as {reference!r}: only !Ref or !GetAtt F.Arn run locally")


def function_policies(resolver: Resolver) -> dict[str, dict[str, Any]]:
    """Each function's resource-based policy as Lambda stores it once the resolver's template is deployed:
    one statement per permission, with the names and ARNs the resolver gives the stack."""
    expanded = expanded_for(resolver)
    # A permission may name a resource SAM generates (a Schedule event's rule): resolved as the template's own.
    resolver = copy.copy(resolver)
    resources = {**expanded["Resources"], **resolver.template.data["Resources"]}
    resolver.template = Template({**resolver.template.data, "Resources": resources}, resolver.template.root)
    policies: dict[str, dict[str, Any]] = {}
    for permission_id, properties in sorted(lambda_permissions(expanded).items()):
        unknown = set(properties) - _EMULATED
        if unknown:
            raise ValueError(f"{permission_id}: {', '.join(sorted(unknown))} not emulated locally")
        function_id = _function_of(properties["FunctionName"], resources)
        resolved = resolver.resolve({key: value for key, value in properties.items() if key != "FunctionName"})
        if not str(resolved["Principal"]).endswith(".amazonaws.com"):
            raise ValueError(f"{permission_id}: only service principals are emulated locally")
        condition: dict[str, dict[str, str]] = {}
        if "SourceAccount" in resolved:
            condition["StringEquals"] = {"AWS:SourceAccount": str(resolved["SourceAccount"])}
        if "SourceArn" in resolved:
            condition["ArnLike"] = {"AWS:SourceArn": str(resolved["SourceArn"])}
        statement = {
            "Sid": statement_id(resolver.prefix, permission_id),
            "Effect": "Allow",
            "Principal": {"Service": resolved["Principal"]},
            "Action": resolved["Action"],
            "Resource": resolver.arn(function_id),
            **({"Condition": condition} if condition else {}),
        }
        policy = policies.setdefault(function_id, {"Version": "2012-10-17", "Id": "default", "Statement": []})
        policy["Statement"].append(statement)
    return policies


class InvokePolicies:
    """The functions' resource-based policies, asked before a service invokes a function."""

    def __init__(self, policies: dict[str, dict[str, Any]]) -> None:
        self.policies = policies

    @classmethod
    def from_template(cls, resolver: Resolver) -> InvokePolicies:
        return cls(function_policies(resolver))

    def allows(self, function_id: str, principal: str, source_arn: str, source_account: str | None = None) -> bool:
        """Whether `principal` (a service) may invoke the function for the resource `source_arn`."""
        context = {"aws:sourcearn": [source_arn], "aws:sourceaccount": [source_account] if source_account else []}
        return any(
            statement["Effect"] == "Allow"
            and statement["Principal"].get("Service") == principal
            and wildcard_matches(statement["Action"], INVOKE, ignore_case=True)
            and condition_holds(statement.get("Condition") or {}, context) is True
            for statement in (self.policies.get(function_id) or {}).get("Statement", [])
        )
