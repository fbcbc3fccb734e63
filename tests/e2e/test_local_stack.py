"""Smoke test of `python -m local`: resources exist, the authorizer guards /admin, public routes answer."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from local.aws.embedded import client
from local.stack import local_resolver
from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e


def call(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_every_table_is_listed_and_exists(local_stack: LocalStack) -> None:
    resolver = local_resolver(api_url=local_stack.api_url, region=local_stack.region)
    template = resolver.template
    dynamodb = client("dynamodb", local_stack.aws_endpoint, local_stack.region)

    existing = set(dynamodb.list_tables()["TableNames"])

    for table in template.tables:
        assert local_stack.physical_name(table.logical_id) == resolver.physical_name(table.logical_id)
        assert resolver.physical_name(table.logical_id) in existing


def test_admin_route_without_token_is_401(local_stack: LocalStack) -> None:
    status, body = call("GET", f"{local_stack.api_url}/admin/articles")

    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})


def test_admin_route_with_a_wrong_token_is_403(local_stack: LocalStack) -> None:
    status, body = call("GET", f"{local_stack.api_url}/admin/articles", {"Authorization": "Bearer wrong"})

    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})


def test_admin_route_with_the_dev_token_reaches_the_editor(local_stack: LocalStack) -> None:
    headers = {"Authorization": f"Bearer {local_stack.token}"}

    status, _ = call("GET", f"{local_stack.api_url}/admin/articles", headers)

    assert status == 200


def test_public_route_reaches_its_function(local_stack: LocalStack) -> None:
    status, body = call("GET", f"{local_stack.api_url}/articles")

    assert status == 200
    assert "items" in json.loads(body)


@pytest.mark.parametrize("path", ["/", "/openapi.json"])
def test_head_sends_the_get_s_headers_and_length_without_the_body(local_stack: LocalStack, path: str) -> None:
    got = local_stack.request("GET", path)
    head = local_stack.request("HEAD", path)

    assert (head.status, head.body) == (got.status, b"")
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert int(head.headers["Content-Length"]) == len(got.body) > 0


def test_unknown_route_is_404(local_stack: LocalStack) -> None:
    status, body = call("GET", f"{local_stack.api_url}/no/such/route")

    assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_cli_mints_a_token_the_local_stack_accepts(local_stack: LocalStack) -> None:
    command = [sys.executable, "-m", "newsdesk.cli", "--local", "--local-url", local_stack.api_url, "token", "create"]
    minted = subprocess.run([*command, "--name", "e2e"], capture_output=True, text=True, check=True, env=_clean_env())
    token = minted.stdout.splitlines()[1]

    reply = local_stack.request("GET", "/admin/articles", headers={"Authorization": f"Bearer {token}"})

    assert reply.status == 200


def _clean_env() -> dict[str, str]:
    # The CLI must find the local stack's endpoint by itself, not through the test's environment.
    return {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}


def test_outbox_pages_the_sent_emails_newest_first_and_filters_them(local_stack: LocalStack) -> None:
    # Given three confirmation emails to addresses of one marker
    marker = f"outbox-{secrets.token_hex(4)}"
    addresses = [f"{marker}-{n}@example.com" for n in range(3)]
    for address in addresses:
        assert local_stack.request("POST", "/subscribers", json_body={"email": address}).status == 202

    # When they are listed two at a time, by recipient
    first = local_stack.request("GET", f"/_local/emails?to={marker}&limit=2")
    assert first.status == 200
    assert first.headers["content-type"] == "application/json"
    page = first.json()
    rest = local_stack.request("GET", f"/_local/emails?to={marker}&limit=2&cursor={page['next_cursor']}").json()

    # Then the pages hold them newest first, each once, and the last page says it is the last
    assert [item["to"] for item in page["items"] + rest["items"]] == addresses[::-1]
    assert rest["next_cursor"] is None
    newest = page["items"][0]
    assert set(newest) == {"id", "to", "subject", "sent_at", "raw"}
    assert newest["subject"].startswith("Confirm your subscription")
    # The subject filter, the one email by id, and what is refused
    by_subject = local_stack.emails(to=marker, subject="CONFIRM YOUR")
    assert [item["id"] for item in by_subject] == [item["id"] for item in page["items"] + rest["items"]]
    assert local_stack.emails(to=marker, subject="no such subject") == []
    one = local_stack.request("GET", f"/_local/emails/{newest['id']}")
    assert (one.status, one.json()) == (200, newest)
    assert local_stack.request("GET", "/_local/emails/no-such-id").status == 404
    assert local_stack.request("GET", "/_local/emails?cursor=no-such-id").status == 400
    assert local_stack.request("GET", "/_local/emails?limit=501").status == 400
    # The outbox page lists them by recipient too
    listed = local_stack.request("GET", f"/_local/?to={marker}")
    assert listed.status == 200
    assert all(address.encode() in listed.body for address in addresses)


def test_outbox_page_is_html(local_stack: LocalStack) -> None:
    reply = local_stack.request("GET", "/_local/")

    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["content-security-policy"].startswith("default-src 'none'")  # so: no scripts
    assert b"<title>Local outbox</title>" in reply.body


def test_erasing_over_http_erases_exactly_the_address_named(local_stack: LocalStack) -> None:
    # Given two sign-ups whose addresses differ only in an escape that decodes to the other
    marker = secrets.token_hex(4)
    escaped, plain = f"x%41y-{marker}@example.org", f"xay-{marker}@example.org"
    for address in (escaped, plain):
        assert local_stack.request("POST", "/subscribers", json_body={"email": address}).status == 202

    # When an editor erases the first, percent-encoded in the path as HTTP clients send it
    first = local_stack.request("DELETE", f"/admin/subscribers/{quote(escaped, safe='')}", editor=True)
    gone = local_stack.request("GET", f"/admin/subscribers/{quote(escaped, safe='')}", editor=True)
    other = local_stack.request("GET", f"/admin/subscribers/{quote(plain, safe='')}", editor=True)

    # Then exactly that address was erased: the other one is still there
    assert (first.status, gone.status, other.status) == (204, 404, 200)
