"""The template is deployable, least-privilege, and agrees with the routes the code serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from local.resolver import Resolver
from local.template import Template
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


def test_public_function_cannot_write_articles(template: Template) -> None:
    policies = template.resources["PublicFunction"].properties["Policies"]
    for policy in policies:
        for name, body in policy.items():
            if name != "Statement":  # a SAM policy template: only read templates may name the articles
                assert "ArticlesTable" not in repr(body) or name == "DynamoDBReadPolicy", name
                continue
            for statement in body:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if set(actions) & WRITE_ACTIONS:
                    assert "ArticlesTable" not in repr(statement["Resource"])


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
