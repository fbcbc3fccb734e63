"""The template is deployable, least-privilege, and agrees with the routes the code serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from local.template import Template
from newsdesk.api.openapi import openapi_json

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

    routed = {route.route_key for route in template.routes}

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
