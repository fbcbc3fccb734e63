"""Who can reach what, on the local stack: every /admin route against every kind of token, and what the public
routes can never show. Routes come from the served OpenAPI document, so new routes are checked as they appear.
"""

from __future__ import annotations

import email
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from tests.e2e.conftest import HttpReply, LocalStack
from tests.support import times

pytestmark = pytest.mark.e2e

ROLES = ("contributor", "editor", "admin")
UNAUTHORIZED = (401, {"message": "Unauthorized"})
FORBIDDEN = (403, {"message": "Forbidden"})
FAR_FUTURE = times.at_offset(times.now() + timedelta(days=365), hours=0)


@dataclass(frozen=True)
class Operation:
    """One method and path of the OpenAPI document."""

    method: str
    path: str
    parameters: tuple[dict[str, Any], ...]
    has_body: bool
    secured: bool
    role: str | None = None
    """The lowest role the route declares (`x-newsdesk-role`), for /admin routes."""

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def path_with(self, value: str, **known: str) -> str:
        """The path with the `known` parameters set, and every other {parameter} set to `value`."""
        return re.sub(r"\{([^}]+)\}", lambda found: quote(known.get(found[1], value), safe=""), self.path)

    @property
    def text_query_parameters(self) -> list[str]:
        """Query parameters that take a string."""
        return [
            parameter["name"]
            for parameter in self.parameters
            if parameter.get("in") == "query" and "string" in json.dumps(parameter.get("schema") or {})
        ]


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    parameters=tuple(operation.get("parameters") or ()),
                    has_body="requestBody" in operation,
                    secured=bool(operation.get("security")),
                    role=operation.get("x-newsdesk-role"),
                )
            )
    return found


@pytest.fixture(scope="module")
def document(local_stack: LocalStack) -> dict[str, Any]:
    reply = local_stack.request("GET", "/openapi.json")
    assert reply.status == 200
    return dict(reply.json())


@pytest.fixture(scope="module")
def admin_operations(document: dict[str, Any]) -> list[Operation]:
    found = [operation for operation in operations(document) if operation.path.startswith("/admin")]
    assert len(found) >= 10, "the document lists fewer editor routes than the API has"
    return found


@pytest.fixture(scope="module")
def public_operations(document: dict[str, Any]) -> list[Operation]:
    found = [operation for operation in operations(document) if not operation.path.startswith("/admin")]
    assert {"GET /articles", "GET /articles/{slug}", "GET /feed.xml"} <= {op.label for op in found}
    return found


def _newsdesk_cli(local_stack: LocalStack, *arguments: str) -> list[str]:
    # The CLI finds the local stack's AWS endpoint by itself, not through this process's environment.
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    command = [sys.executable, "-m", "newsdesk.cli", "--local", "--local-url", local_stack.api_url, *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
    return result.stdout.splitlines()


@dataclass(frozen=True)
class MintedToken:
    token_id: str
    secret: str


@pytest.fixture(scope="module")
def revoked_token(local_stack: LocalStack) -> MintedToken:
    """A token that worked until `newsdesk token revoke`."""
    first, secret = _newsdesk_cli(local_stack, "token", "create", "--name", "revoked-in-e2e")[:2]
    token = MintedToken(token_id=first.split()[1], secret=secret)
    bearer = {"Authorization": f"Bearer {token.secret}"}
    assert local_stack.request("GET", "/admin/articles?limit=1", headers=bearer).status == 200

    _newsdesk_cli(local_stack, "token", "revoke", token.token_id)

    return token


def create_article(local_stack: LocalStack, title: str, token: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"title": title, "author": fields.pop("author", "Ada"), "body": fields.pop("body", "Text."), **fields}
    headers = {"Authorization": f"Bearer {token}"} if token else None
    reply = local_stack.request("POST", "/admin/articles", json_body=body, editor=token is None, headers=headers)
    assert reply.status == 201, reply.body
    return dict(reply.json())


# -------------------------------------------------------------------------------- the token matrix

# A body that would succeed, where the route takes one: a refused request must have no effect even so.
INTRUDER = f"intruder-{secrets.token_hex(4)}"
WORKING_BODIES: dict[str, Any] = {
    "POST /admin/articles": {"title": f"Written by {INTRUDER}", "author": "X", "body": "x"},
    "PATCH /admin/articles/{article_id}": {"title": f"Changed by {INTRUDER}"},
    "POST /admin/articles/{article_id}/schedule": {"publish_at": FAR_FUTURE},
    "POST /admin/articles/{article_id}/test-email": {"to": f"{INTRUDER}@example.com"},
}


def malformed_credentials(valid: str) -> dict[str, str]:
    return {
        "scheme only": "Bearer",
        "another scheme": f"Basic {valid}",
        "no scheme": valid,
        "altered token": f"Bearer {valid[:-1]}{'A' if valid[-1] != 'A' else 'B'}",
        "token with a suffix": f"Bearer {valid}x",
        "two tokens": f"Bearer {valid} {valid}",
        "oversized token": f"Bearer {'a' * 4096}",
        "markup": "Bearer <script>alert(1)</script>",
        "encoded nul": "Bearer %00",
    }


def call(local_stack: LocalStack, operation: Operation, article_id: str, authorization: str | None) -> HttpReply:
    path = operation.path_with(f"nobody-{secrets.token_hex(3)}@example.com", article_id=article_id)
    headers = {} if authorization is None else {"Authorization": authorization}
    if operation.has_body:
        body = WORKING_BODIES.get(operation.label, {})
        return local_stack.request(operation.method, path, json_body=body, headers=headers)
    return local_stack.request(operation.method, path, headers=headers)


def gateway_answer(reply: HttpReply) -> tuple[int, Any]:
    try:
        return reply.status, reply.json()
    except ValueError:
        return reply.status, reply.body


def test_every_admin_route_lets_only_a_valid_token_through(
    local_stack: LocalStack, admin_operations: list[Operation], revoked_token: MintedToken
) -> None:
    # Given an article that refused requests aim at, and every kind of credential
    target = create_article(local_stack, f"Target of {INTRUDER}")
    refused: dict[str, tuple[str | None, tuple[int, Any]]] = {"no Authorization header": (None, UNAUTHORIZED)}
    for name, value in malformed_credentials(local_stack.token).items():
        refused[name] = (value, FORBIDDEN)
    refused["revoked token"] = (f"Bearer {revoked_token.secret}", FORBIDDEN)
    refused["revoked token, lower-case scheme"] = (f"bearer  {revoked_token.secret}", FORBIDDEN)

    # When every /admin route is called with each of them, then with the valid token
    wrong: list[str] = []
    for operation in admin_operations:
        for name, (authorization, expected) in refused.items():
            answer = gateway_answer(call(local_stack, operation, target["id"], authorization))
            if answer != expected:
                wrong.append(f"{operation.label} with {name}: {answer}, expected {expected}")
        own = create_article(local_stack, f"Own article for {operation.label}")
        answer = gateway_answer(call(local_stack, operation, own["id"], f"Bearer {local_stack.token}"))
        if answer in (UNAUTHORIZED, FORBIDDEN) or answer[0] >= 500:
            wrong.append(f"{operation.label} with the valid token: {answer}")

    # Then only the valid token got through, and none of the refused requests changed anything
    assert not wrong, "\n".join(wrong)
    after = local_stack.request("GET", f"/admin/articles/{target['id']}", editor=True)
    assert after.status == 200
    assert (after.json()["version"], after.json()["status"], after.json()["title"]) == (1, "draft", target["title"])
    written = [article for article in _all_admin_articles(local_stack) if INTRUDER in article["title"]]
    assert sorted(article["title"] for article in written) == sorted(
        [f"Target of {INTRUDER}", f"Written by {INTRUDER}", f"Changed by {INTRUDER}"]
    )
    sent = local_stack.emails(to=INTRUDER)
    assert len(sent) == 1, "only the valid token's test email may be sent"


@dataclass(frozen=True)
class Member:
    person_id: str
    token: str


def join(local_stack: LocalStack, role: str) -> Member:
    """A person of `role` with a token, made by the stack's admin token over the API."""
    marker = secrets.token_hex(3)
    person = local_stack.request(
        "POST", "/admin/people", editor=True,
        json_body={"name": f"{role.title()} {marker}", "email": f"{role}-{marker}@example.org", "role": role},
    )  # fmt: skip
    assert person.status == 201, person.body
    person_id = person.json()["id"]
    issued = local_stack.request("POST", f"/admin/people/{person_id}/tokens", editor=True, json_body={})
    assert issued.status == 201, issued.body
    return Member(person_id, issued.json()["token"])


def test_every_admin_route_refuses_each_role_below_its_own_before_it_runs(
    local_stack: LocalStack, admin_operations: list[Operation]
) -> None:
    # Given a person of each role, each with their own draft (a contributor may touch only their own)
    members = {role: join(local_stack, role) for role in ("contributor", "editor")}
    wrong: list[str] = []

    # When each of them calls every /admin route (the stack's own token is an admin's, from before people)
    for operation in admin_operations:
        needed = ROLES.index(operation.role or "admin")
        for role, member in [*members.items(), ("admin", None)]:
            token = member.token if member else local_stack.token
            person_id = member.person_id if member else "0" * 16
            own = create_article(local_stack, f"{role}'s article for {operation.label}", token=token)
            path = operation.path_with(f"nobody-{secrets.token_hex(3)}@example.com", article_id=own["id"],
                                       person_id=person_id)  # fmt: skip
            body = WORKING_BODIES.get(operation.label, {}) if operation.has_body else None
            reply = local_stack.request(operation.method, path, json_body=body,
                                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            answer = gateway_answer(reply)
            refused = answer[0] == 403 and isinstance(answer[1], dict) and "error" in answer[1]
            if ROLES.index(role) < needed:
                expected = {"required": operation.role, "role": role}
                if (
                    not refused
                    or answer[1]["error"]["code"] != "role_required"
                    or answer[1]["error"]["details"] != expected
                ):
                    wrong.append(f"{operation.label} as {role}: {answer}, expected role_required {expected}")
                after = local_stack.request("GET", f"/admin/articles/{own['id']}", editor=True)
                if (after.status, after.json()["version"]) != (200, 1):
                    wrong.append(f"{operation.label} as {role} was refused but changed the article")
            elif refused or answer in (UNAUTHORIZED, FORBIDDEN) or answer[0] >= 500:
                wrong.append(f"{operation.label} as {role}: {answer}")

    # Then each role got exactly the routes its rank allows, and a refusal changed nothing
    assert not wrong, "\n".join(wrong)


def _all_admin_articles(local_stack: LocalStack) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        query = urlencode({"limit": 100, **({"cursor": cursor} if cursor else {})})
        page = local_stack.request("GET", f"/admin/articles?{query}", editor=True).json()
        yield from page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return


def test_every_admin_route_documents_the_token_its_role_and_the_refusals(
    document: dict[str, Any], admin_operations: list[Operation]
) -> None:
    gateway_error = {"$ref": "#/components/schemas/GatewayError"}
    either = [{"$ref": "#/components/schemas/ErrorResponse"}, gateway_error]
    for operation in admin_operations:
        described = document["paths"][operation.path][operation.method.lower()]
        responses = described["responses"]
        assert operation.secured, f"{operation.label} does not declare bearerAuth"
        assert responses["401"]["content"]["application/json"]["schema"] == gateway_error, operation.label
        # 403: API Gateway's refusal of a wrong token, or the function's role_required
        assert responses["403"]["content"]["application/json"]["schema"]["anyOf"] == either, operation.label
        assert operation.role in ROLES, f"{operation.label} declares no x-newsdesk-role"
        assert f"Needs the `{operation.role}` role" in described["description"], operation.label


# -------------------------------------------------------------------------------- the public side


@dataclass(frozen=True)
class Secrets:
    """What the public must never see, and the values to probe the public routes with."""

    never_shown: frozenset[str]
    probes: tuple[str, ...]
    hidden_slugs: tuple[str, ...]
    addresses: tuple[str, ...]
    published_title: str


def confirm_link(raw: str) -> str:
    """The confirmation link in the text part of a raw confirmation email."""
    message = email.message_from_string(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    text = str(part.get_content())
    return next(url for url in re.findall(r"https?://\S+", text) if urlsplit(url).path == "/subscribers/confirm")


@pytest.fixture(scope="module")
def hidden(local_stack: LocalStack, revoked_token: MintedToken) -> Secrets:
    """A draft, a scheduled article, a published one, a pending and a confirmed subscriber."""
    marker = secrets.token_hex(4)
    draft = create_article(
        local_stack, f"Draft {marker}", author=f"Draft Author {marker}", body=f"draft-body-{marker}",
        tags=[f"draft-tag-{marker}"],
    )  # fmt: skip
    scheduled = create_article(local_stack, f"Scheduled {marker}", body=f"scheduled-body-{marker}")
    reply = local_stack.request(
        "POST", f"/admin/articles/{scheduled['id']}/schedule", json_body={"publish_at": FAR_FUTURE}, editor=True
    )
    assert reply.status == 200, reply.body
    published = create_article(local_stack, f"Published {marker}")
    assert local_stack.request("POST", f"/admin/articles/{published['id']}/publish", editor=True).status == 200
    pending, confirmed = f"pending-{marker}@example.com", f"confirmed-{marker}@example.com"
    for address in (pending, confirmed):
        assert local_stack.request("POST", "/subscribers", json_body={"email": address}).status == 202
    [raw] = [item["raw"] for item in local_stack.emails(to=confirmed)]
    link = urlsplit(confirm_link(raw))
    assert local_stack.request("POST", f"{link.path}?{link.query}", data=b"").status == 200  # the page's button
    never_shown = {
        draft["id"], draft["slug"], draft["title"], f"draft-body-{marker}", f"Draft Author {marker}",
        scheduled["id"], scheduled["slug"], scheduled["title"], f"scheduled-body-{marker}",
        pending, confirmed, local_stack.token, revoked_token.secret,
    }  # fmt: skip
    hidden_slugs = (draft["slug"], draft["id"], scheduled["slug"], scheduled["id"])
    probes = (*hidden_slugs, f"draft-tag-{marker}", f"Draft Author {marker}", pending, confirmed, "draft", "scheduled")
    return Secrets(frozenset(never_shown), probes, hidden_slugs, (pending, confirmed), published["title"])


def public_requests(operation: Operation, probe: str) -> list[str]:
    """The probe in the path, then in each text query parameter in turn."""
    path = operation.path_with(probe)
    return [path] + [f"{path}?{urlencode({name: probe})}" for name in operation.text_query_parameters]


def test_public_routes_never_show_drafts_scheduled_articles_addresses_or_tokens(
    local_stack: LocalStack, public_operations: list[Operation], hidden: Secrets
) -> None:
    # Given drafts, a scheduled article, subscribers and tokens in the stack
    # When every public route is called with each secret value in its path or query, carrying a token too
    leaks: list[str] = []
    headers = {"Authorization": f"Bearer {local_stack.token}"}
    for operation in public_operations:
        for probe in hidden.probes:
            for target in public_requests(operation, probe):
                json_body: dict[str, Any] | None = {} if operation.has_body else None
                reply = local_stack.request(operation.method, target, json_body=json_body, headers=headers)
                # Then no answer is a 5xx or shows anything hidden (an echo of what was sent is no leak)
                if reply.status >= 500:
                    leaks.append(f"{operation.method} {target}: {reply.status}")
                text = reply.body.decode("utf-8", errors="replace")
                shown = sorted(secret for secret in hidden.never_shown - {probe} if secret in text)
                if shown:
                    leaks.append(f"{operation.method} {target} shows {shown}")
    assert not leaks, "\n".join(leaks)

    # And the published article is there, so the routes were not simply empty
    assert hidden.published_title in local_stack.request("GET", "/articles?limit=100").body.decode()
    assert hidden.published_title in local_stack.request("GET", "/feed.xml").body.decode()


def test_drafts_and_scheduled_articles_are_not_found_by_slug_or_id(local_stack: LocalStack, hidden: Secrets) -> None:
    for value in hidden.hidden_slugs:
        reply = local_stack.request("GET", f"/articles/{quote(value, safe='')}")

        assert reply.status == 404, value


def test_subscribing_answers_the_same_whoever_the_address_is(local_stack: LocalStack, hidden: Secrets) -> None:
    unknown = f"new-{secrets.token_hex(4)}@example.com"

    replies = [
        local_stack.request("POST", "/subscribers", json_body={"email": address})
        for address in (*hidden.addresses, unknown)
    ]

    assert {(reply.status, reply.body) for reply in replies} == {(replies[0].status, replies[0].body)}
    assert replies[0].status == 202


# -------------------------------------------------------------------------------- the README's error table


def readme_error_table() -> set[tuple[int, str]]:
    """(status, body) of each row of the README's table in "Limits and errors"."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Limits and errors", 1)[1].split("\n#", 1)[0]
    return {(int(status), body) for status, body in re.findall(r"^\| (\d{3}) \| `([^`]+)` \|", section, re.M)}


def test_the_readme_s_errors_are_what_the_api_answers(local_stack: LocalStack) -> None:
    # Given an article, another one's slug, a contributor, and a cursor of a tagged list
    article = create_article(local_stack, "Errors as documented")
    contributor = join(local_stack, "contributor").token
    taken = create_article(local_stack, "A slug to take")["slug"]
    json_type = {"Content-Type": "application/json"}
    requests: dict[tuple[int, str], tuple[str, str, dict[str, Any]]] = {
        (400, "malformed_json"): ("POST", "/admin/articles", {"data": b'{"title": ', "headers": json_type}),
        (401, '{"message": "Unauthorized"}'): ("GET", "/admin/articles", {}),
        (403, '{"message": "Forbidden"}'): (
            "GET",
            "/admin/articles",
            {"headers": {"Authorization": "Bearer " + "x" * 32}},
        ),
        (403, "role_required"): (
            "POST",
            f"/admin/articles/{article['id']}/publish",
            {"headers": {"Authorization": f"Bearer {contributor}"}},
        ),
        (404, "not_found"): ("GET", "/articles/no-such-article", {}),
        (404, '{"message": "Not Found"}'): ("GET", "/no-such-route", {}),
        (409, "slug_taken"): ("PATCH", f"/admin/articles/{article['id']}", {"json_body": {"slug": taken}}),
        (412, "version_mismatch"): (
            "PATCH",
            f"/admin/articles/{article['id']}",
            {"json_body": {"title": "Stale"}, "headers": {"If-Match": '"999"'}},
        ),
        # 60,000 ampersands are 60 KB of Markdown and 300 KB of HTML (&amp;)
        (413, "payload_too_large"): (
            "PATCH",
            f"/admin/articles/{article['id']}",
            {"json_body": {"body": "&" * 60_000}},
        ),
        (415, "unsupported_media_type"): (
            "POST",
            "/admin/articles",
            {"data": b"title=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        ),
        (422, "validation_error"): ("PATCH", f"/admin/articles/{article['id']}", {"json_body": {"body": "x" * 70_000}}),
        (422, "invalid_input"): (
            "POST",
            f"/admin/articles/{article['id']}/schedule",
            {"json_body": {"publish_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}},
        ),
        (422, "unknown_topics"): (
            "POST",
            "/subscribers",
            {"json_body": {"email": "errors@example.org", "topics": ["no-such-topic"]}},
        ),
        (422, "invalid_cursor"): ("GET", "/articles?cursor=bm90LW91cnM", {}),
    }

    # When each request of the table is sent, Then the API answers what the README says
    assert set(requests) == readme_error_table()
    for (status, body), (method, path, options) in requests.items():
        editor = status not in (401, 403) and path.startswith("/admin")  # role_required sends its own token
        reply = local_stack.request(method, path, editor=editor, **options)
        answer = reply.json()
        got = json.dumps(answer, separators=(", ", ": ")) if "error" not in answer else answer["error"]["code"]
        assert (reply.status, got) == (status, body), (method, path, reply.body[:300])
