"""The template is deployable, least-privilege, and agrees with the routes the code serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from local.iam.calls import Permission
from local.iam.policies import Role, function_roles_from_template
from local.template.model import Template
from local.template.resolver import Resolver
from local.template.sam import expanded_for, function_roles
from newsdesk.api.routing import openapi_json

ROOT = Path(__file__).resolve().parents[2]
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
LOCAL_ONLY_ROUTES = {"GET /docs"}  # served, but not part of the API it documents


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([cfn_lint, ROOT / "template.yaml"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_template_route_is_documented_and_every_documented_route_is_routed(template: Template) -> None:
    document = json.loads(openapi_json())
    documented = {f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops}

    # HEAD twins of the GET routes are answered as their GET (test_index_and_head.py), not documented apart.
    routed = {route.route_key for route in template.routes if route.method != "HEAD"}

    assert routed - LOCAL_ONLY_ROUTES == documented


def test_only_admin_routes_need_a_token_and_all_of_them_do(template: Template) -> None:
    for route in template.routes:
        assert route.auth_required == route.path.startswith("/admin"), route.route_key


def public_role(resolver: Resolver) -> Role:
    return function_roles_from_template(resolver)["PublicFunction"]


def articles(resolver: Resolver, suffix: str = "") -> str:
    return resolver.arn("ArticlesTable") + suffix


def test_public_function_cannot_write_articles(resolver: Resolver) -> None:
    role = public_role(resolver)
    for action in WRITE_ACTIONS:
        for key in ("slug#a-story", "article#1", "feed#all"):
            assert not role.allows(Permission(action, articles(resolver)), {"dynamodb:leadingkeys": (key,)}), action


def test_public_function_reads_public_copies_and_a_previewed_draft_but_lists_no_drafts(resolver: Resolver) -> None:
    role = public_role(resolver)

    def reads(action: str, *keys: str) -> bool:
        return role.allows(Permission(action, articles(resolver)), {"dynamodb:leadingkeys": keys})

    # A slug claim carries a published article's public copy. An article item (a draft too) is read one at a
    # time, by key, for a preview link that the service checked first; never in a batch.
    assert reads("dynamodb:GetItem", "slug#a-story")
    assert reads("dynamodb:BatchGetItem", "slug#a-story", "slug#another")
    assert reads("dynamodb:GetItem", "article#01hdraft")
    assert not reads("dynamodb:BatchGetItem", "article#01hdraft")
    assert not reads("dynamodb:BatchGetItem", "slug#a-story", "article#01hdraft")
    # Feeds hold published articles only; the editor's indexes list drafts. by-entity is the exception GET
    # /authors needs (its `author` partition): a query's partition is not a condition IAM can test here.
    assert role.allows(Permission("dynamodb:Query", articles(resolver, "/index/by-feed")))
    for index in ("by-status", "by-owner"):
        assert not role.allows(Permission("dynamodb:Query", articles(resolver, f"/index/{index}")))
    assert not role.allows(Permission("dynamodb:Query", articles(resolver)))


def test_public_function_cannot_scan_any_table(resolver: Resolver, template: Template) -> None:
    role = public_role(resolver)
    for table in template.tables:
        for resource in (resolver.arn(table.logical_id), resolver.arn(table.logical_id) + "/index/by-feed"):
            assert not role.allows(Permission("dynamodb:Scan", resource)), resource
            assert not role.allows(Permission("dynamodb:PartiQLSelect", resource)), resource


def test_no_role_has_aws_managed_policies_or_grants_on_every_resource_but_xray(resolver: Resolver) -> None:
    # SAM's generated roles carry AWSLambdaSQSQueueExecutionRole and AWSLambdaDynamoDBExecutionRole (every
    # queue and stream: `*`) for event sources, and AWSLambdaBasicExecutionRole (every log group).
    expanded = expanded_for(resolver)
    for function_id, role in function_roles(expanded).items():
        assert not role.get("ManagedPolicyArns"), function_id
        for policy in role["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "*" in resources:  # X-Ray's actions take no resource
                    assert all(action.startswith("xray:") for action in actions), (function_id, actions)


def test_each_function_reads_its_own_queues_and_streams_and_no_others(resolver: Resolver, template: Template) -> None:
    # Lambda reads a function's event sources with the function's role (local.lambda_runtime.sources does too).
    def sources(kind: str, key: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for event in template.events_of(kind):
            found.setdefault(str(resolver.resolve(event.properties[key])), set()).add(event.function_id)
        return found

    queues, streams = sources("SQS", "Queue"), sources("DynamoDB", "Stream")
    for function_id, role in function_roles_from_template(resolver).items():
        for arn, readers in queues.items():
            reads = all(role.allows(Permission(f"sqs:{a}", arn)) for a in ("ReceiveMessage", "DeleteMessage"))
            assert reads == (function_id in readers), (function_id, arn)
        for arn, readers in streams.items():
            reads = all(role.allows(Permission(f"dynamodb:{a}", arn)) for a in ("GetRecords", "GetShardIterator"))
            assert reads == (function_id in readers), (function_id, arn)


# ---------------------------------------------------------------------- privacy: traces and old uploads

ERASURE_DEADLINE_DAYS = 30  # an erased person's address may outlive the erasure in an upload this long at most


def test_no_function_records_its_answers_in_xray(template: Template, resolver: Resolver) -> None:
    for function in template.functions.values():
        environment = resolver.function_environment(function)
        assert environment.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE") == "false", function.logical_id


def lifecycle_days(template: Template, key: str) -> tuple[int | None, int | None]:
    """(days until the current version of `key` expires, days its older versions are kept): the shortest of
    the enabled rules that apply, as S3 honours the shorter of overlapping expirations."""
    rules = template.resources["UploadsBucket"].properties["LifecycleConfiguration"]["Rules"]
    applying = [
        rule
        for rule in rules
        if rule["Status"] == "Enabled"
        and key.startswith(rule.get("Prefix", "") or (rule.get("Filter") or {}).get("Prefix", ""))
    ]
    current = [rule["ExpirationInDays"] for rule in applying if "ExpirationInDays" in rule]
    older = [rule["NoncurrentVersionExpiration"]["NoncurrentDays"] for rule in applying
             if "NoncurrentVersionExpiration" in rule]  # fmt: skip
    return (min(current) if current else None), (min(older) if older else None)


def test_uploaded_subscriber_files_and_their_versions_expire_within_the_erasure_deadline(template: Template) -> None:
    for key in ("subscribers/members.csv", "subscribers/confirmed/2026/list.csv"):
        current, older = lifecycle_days(template, key)
        assert current is not None, key
        assert older is not None, key
        assert current + older <= ERASURE_DEADLINE_DAYS, key


def test_article_sources_stay_and_their_old_versions_expire(template: Template) -> None:
    assert lifecycle_days(template, "articles/council.md") == (None, 30)
    assert lifecycle_days(template, "media/2026/chamber.jpg") == (None, 30)
