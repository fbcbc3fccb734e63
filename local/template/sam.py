"""The template as CloudFormation deploys it: expanded by the SAM translator, as `sam deploy` does.

The local runner takes each function's IAM role from here (the template's own role with the policies
attached to it; or SAM's generated one, with its policy templates and the managed policies SAM adds for
event sources and tracing) and the permissions to invoke it (the template's own and those SAM adds), and
the template tests check the expanded resources rather than the YAML.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from local.template.model import FUNCTION, LAYER, Template
from local.template.resolver import Resolver

MANAGED_POLICY_PREFIX = "arn:aws:iam::aws:policy/"


@cache
def aws_managed_policies() -> dict[str, dict[str, Any]]:
    """AWS's managed policies, by name: {"arn": ..., "document": ...} (the copy moto ships)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return {
        name: {"arn": f"{MANAGED_POLICY_PREFIX}{body['Path'].lstrip('/')}{name}", "document": body["Document"]}
        for name, body in json.loads(aws_managed_policies_data).items()
    }


def managed_policy_document(arn: str) -> dict[str, Any]:
    """The document of an AWS managed policy named by its ARN."""
    name = arn.rsplit("/", 1)[-1]
    found = aws_managed_policies().get(name)
    if found is None or found["arn"].split(":", 4)[4] != arn.split(":", 4)[4]:
        raise ValueError(f"unknown AWS managed policy {arn}")
    return dict(found["document"])


def expand(
    template: Template, parameters: dict[str, str] | None = None, *, region: str = "us-east-1"
) -> dict[str, Any]:
    """The CloudFormation template SAM makes of `template` (code locations as `sam package` leaves them)."""
    data = copy.deepcopy(template.data)
    for logical_id, body in (data.get("Resources") or {}).items():
        properties = body.get("Properties") or {}
        # `sam package` uploads the folders and writes their S3 addresses in; the translator wants those.
        if body.get("Type") == FUNCTION and isinstance(properties.get("CodeUri", "."), str):
            properties["CodeUri"] = f"s3://newsdesk-artifacts/{logical_id}.zip"
        if body.get("Type") == LAYER and isinstance(properties.get("ContentUri"), str):
            properties["ContentUri"] = f"s3://newsdesk-artifacts/{logical_id}.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    names = {name: policy["arn"] for name, policy in aws_managed_policies().items()}
    expanded: dict[str, Any] = translator.translate(
        data, parameter_values=dict(parameters or {}), get_managed_policy_map=lambda: names
    )
    return expanded


def function_roles(expanded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's execution role (the AWS::IAM::Role its `Role` property points at), by function id,
    with the policies that other resources attach to it (AWS::IAM::RolePolicy, AWS::IAM::Policy) among
    its `Policies`."""
    resources = expanded["Resources"]
    roles = {}
    for logical_id, body in resources.items():
        if body["Type"] != "AWS::Lambda::Function":
            continue
        role = body["Properties"].get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            role_id = role["Fn::GetAtt"][0]
            properties = dict(resources[role_id]["Properties"])
            properties["Policies"] = [*(properties.get("Policies") or []), *_attached_policies(resources, role_id)]
            roles[logical_id] = properties
    return roles


def _attached_policies(resources: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    attached = []
    for body in resources.values():
        properties = body.get("Properties") or {}
        names = [properties.get("RoleName")] if body["Type"] == "AWS::IAM::RolePolicy" else []
        names += (
            properties.get("Roles") or [] if body["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") else []
        )
        if {"Ref": role_id} in names:
            attached.append(
                {"PolicyName": properties.get("PolicyName"), "PolicyDocument": properties["PolicyDocument"]}
            )
    return attached


_EXPANSIONS: dict[tuple[int, tuple[tuple[str, str], ...], str], tuple[Template, dict[str, Any]]] = {}


def expanded_for(resolver: Resolver) -> dict[str, Any]:
    """The resolver's template as SAM expands it with the resolver's parameters and region, once per process:
    the translator takes seconds, and every test's stack would otherwise pay them. Names and ARNs are the
    resolver's to fill in afterwards."""
    template = resolver.template
    parameters = {name: str(resolver.ref(name)) for name in template.parameters if _has_value(resolver, name)}
    key = (id(template), tuple(sorted(parameters.items())), resolver.region)
    if key not in _EXPANSIONS:
        # The template is kept with its expansion, so its id cannot be reused by another template.
        _EXPANSIONS[key] = (template, expand(template, parameters, region=resolver.region))
    return _EXPANSIONS[key][1]


def _has_value(resolver: Resolver, name: str) -> bool:
    try:
        resolver.ref(name)
    except ValueError:
        return False
    return True


def lambda_permissions(expanded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The AWS::Lambda::Permission resources (the template's own and those SAM adds for event sources and
    authorizers): their properties, by logical id."""
    return {
        logical_id: dict(body["Properties"])
        for logical_id, body in expanded["Resources"].items()
        if body["Type"] == "AWS::Lambda::Permission"
    }
