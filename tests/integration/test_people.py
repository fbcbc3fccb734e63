"""People and roles, through the HTTP API on the in-process stack: the authorizer names who a token belongs
to and their role, every /admin route checks its role before it runs, and a refusal changes nothing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from newsdesk.cli import main
from tests.integration.conftest import Reply, Stack

ARTICLE = {"title": "Harbour reopens", "author": "Ada Lovelace", "body": "Boats are **back**."}


@dataclass(frozen=True)
class Member:
    id: str
    token: str
    role: str


def legacy_token(stack: Stack, capsys: pytest.CaptureFixture[str], name: str = "laptop") -> str:
    """A token as `newsdesk token create --name` made it before people existed: it acts as an admin."""
    assert main(["--table", stack.table("TokensTable"), "token", "create", "--name", name]) == 0
    return capsys.readouterr().out.splitlines()[1]


def join(stack: Stack, admin: str, role: str, name: str | None = None) -> Member:
    """A new person with `role` and a token of theirs, made through the API by an admin."""
    name = name or f"{role.title()} {secrets.token_hex(2)}"
    email = f"{name.lower().replace(' ', '.')}@example.org"
    created = stack.http("POST", "/admin/people", token=admin, json_body={"name": name, "email": email, "role": role})
    assert created.status == 201, created.body
    person = created.json()
    issued = stack.http("POST", f"/admin/people/{person['id']}/tokens", token=admin, json_body={})
    assert issued.status == 201, issued.body
    return Member(person["id"], issued.json()["token"], role)


def refused_for_role(reply: Reply, required: str, role: str) -> bool:
    body = reply.json()
    return (
        reply.status == 403
        and body["error"]["code"] == "role_required"
        and body["error"]["details"] == {"required": required, "role": role}
        and f"needs the {required} role" in body["error"]["message"]
    )


def audit_actions(stack: Stack) -> list[tuple[str, str, str]]:
    """(actor, action, target id) of every audit entry, oldest first."""
    items = sorted(stack.items("AuditTable"), key=lambda item: item["sk"]["S"])
    return [(item["actor"]["S"], item["action"]["S"], item["target_id"]["S"]) for item in items]


# ------------------------------------------------------------------------------------------------ roles


def test_a_contributor_writes_but_cannot_publish_and_the_refusal_names_the_role_needed(
    stack: Stack, admin: str
) -> None:
    writer = join(stack, admin, "contributor")
    draft = stack.http("POST", "/admin/articles", token=writer.token, json_body=ARTICLE)
    assert draft.status == 201, draft.body

    refused = stack.http("POST", f"/admin/articles/{draft.json()['id']}/publish", token=writer.token)

    assert refused_for_role(refused, "editor", "contributor"), refused.body
    after = stack.http("GET", f"/admin/articles/{draft.json()['id']}", token=admin).json()
    assert (after["status"], after["version"]) == ("draft", 1)


def test_an_editor_publishes(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor")
    draft = stack.http("POST", "/admin/articles", token=editor.token, json_body=ARTICLE).json()

    published = stack.http("POST", f"/admin/articles/{draft['id']}/publish", token=editor.token)

    assert published.status == 200, published.body
    assert published.json()["status"] == "published"
    assert stack.http("GET", f"/articles/{draft['slug']}").status == 200


@pytest.mark.parametrize(
    ("method", "path", "required"),
    [
        ("GET", "/admin/subscribers", "admin"),
        ("GET", "/admin/subscribers/export", "admin"),
        ("GET", "/admin/webhooks", "admin"),
        ("GET", "/admin/deliveries", "editor"),
        ("GET", "/admin/uploads", "editor"),
        ("GET", "/admin/people", "admin"),
    ],
)
def test_a_contributor_sees_no_subscribers_deliveries_webhooks_uploads_or_people(
    stack: Stack, admin: str, method: str, path: str, required: str
) -> None:
    writer = join(stack, admin, "contributor")

    assert refused_for_role(stack.http(method, path, token=writer.token), required, "contributor")


def test_an_editor_is_refused_what_only_admins_do_and_a_token_made_before_people_is_an_admin(
    stack: Stack, admin: str
) -> None:
    editor = join(stack, admin, "editor")

    assert refused_for_role(stack.http("GET", "/admin/subscribers", token=editor.token), "admin", "editor")
    assert refused_for_role(
        stack.http("POST", "/admin/people", token=editor.token,
                   json_body={"name": "Eve", "email": "eve@example.org", "role": "admin"}),
        "admin", "editor",
    )  # fmt: skip
    assert stack.http("GET", "/admin/subscribers", token=admin).status == 200
    assert [person["role"] for person in stack.http("GET", "/admin/people", token=admin).json()["items"]] == [
        "editor"
    ]  # Eve was never created


def test_a_refused_role_is_told_so_before_its_request_is_even_read(stack: Stack, admin: str) -> None:
    writer = join(stack, admin, "contributor")

    unreadable = stack.http("POST", "/admin/people", token=writer.token, json_body={"role": "nonsense"})
    not_json = stack.http("POST", "/admin/webhooks", token=writer.token, headers={"Content-Type": "text/plain"})

    assert refused_for_role(unreadable, "admin", "contributor")
    assert refused_for_role(not_json, "admin", "contributor")


def test_me_says_who_the_token_belongs_to(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor", "Grace Hopper")

    mine = stack.http("GET", "/admin/me", token=editor.token).json()
    theirs = stack.http("GET", "/admin/me", token=admin).json()

    assert (mine["actor"], mine["role"], mine["person"]["name"]) == (editor.id, "editor", "Grace Hopper")
    assert (theirs["role"], theirs["person"]) == ("admin", None)
    assert theirs["actor"].startswith("token:")


# ------------------------------------------------------------------------------------------------ people


def test_a_token_may_do_less_than_its_person_never_more(stack: Stack, admin: str) -> None:
    boss = join(stack, admin, "admin")
    limited = stack.http(
        "POST", f"/admin/people/{boss.id}/tokens", token=admin, json_body={"name": "phone", "role": "contributor"}
    )
    writer = join(stack, admin, "contributor")
    above = stack.http("POST", f"/admin/people/{writer.id}/tokens", token=admin, json_body={"role": "editor"})

    assert limited.status == 201
    assert limited.json()["role"] == "contributor"
    assert refused_for_role(stack.http("GET", "/admin/subscribers", token=limited.json()["token"]), "admin",
                            "contributor")  # fmt: skip
    assert above.status == 422


def test_disabling_a_person_stops_their_tokens_at_once_and_changing_a_role_takes_effect_at_once(
    stack: Stack, admin: str
) -> None:
    writer = join(stack, admin, "contributor")
    other = join(stack, admin, "contributor")
    assert stack.http("GET", "/admin/deliveries", token=writer.token).status == 403

    promoted = stack.http("PATCH", f"/admin/people/{writer.id}", token=admin, json_body={"role": "editor"})
    disabled = stack.http("PATCH", f"/admin/people/{other.id}", token=admin, json_body={"disabled": True})

    assert (promoted.status, disabled.status) == (200, 200)
    assert stack.http("GET", "/admin/deliveries", token=writer.token).status == 200
    refused = stack.http("GET", "/admin/me", token=other.token)
    assert (refused.status, refused.json()) == (403, {"message": "Forbidden"})  # API Gateway's own refusal


def test_revoking_one_token_of_a_person_leaves_the_others(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor")
    second = stack.http("POST", f"/admin/people/{editor.id}/tokens", token=admin, json_body={"name": "tablet"})
    listed = stack.http("GET", f"/admin/people/{editor.id}/tokens", token=admin).json()["items"]
    first_id = next(token["token_id"] for token in listed if token["token_id"] != second.json()["token_id"])

    revoked = stack.http("DELETE", f"/admin/people/{editor.id}/tokens/{first_id}", token=admin)

    assert (revoked.status, revoked.json()["revoked"]) == (200, True)
    assert stack.http("GET", "/admin/me", token=editor.token).status == 403
    assert stack.http("GET", "/admin/me", token=second.json()["token"]).status == 200
    assert all("token" not in token and "token_hash" not in token for token in listed)
    gone = stack.http("DELETE", f"/admin/people/{editor.id}/tokens/ffffffff", token=admin)
    assert gone.status == 404


def test_changing_a_persons_address_frees_the_old_one_and_claims_the_new(stack: Stack, admin: str) -> None:
    ada = stack.http("POST", "/admin/people", token=admin,
                     json_body={"name": "Ada", "email": "ada@example.org", "role": "editor"}).json()  # fmt: skip

    moved = stack.http("PATCH", f"/admin/people/{ada['id']}", token=admin, json_body={"email": "ada@news.example"})

    assert (moved.status, moved.json()["email"]) == (200, "ada@news.example")
    newcomer = {"name": "Another Ada", "email": "ada@example.org", "role": "contributor"}
    assert stack.http("POST", "/admin/people", token=admin, json_body=newcomer).status == 201
    taken = stack.http("POST", "/admin/people", token=admin, json_body={**newcomer, "email": "ada@news.example"})
    assert taken.status == 409, taken.body


def test_two_people_cannot_share_an_address_and_bad_input_changes_nothing(stack: Stack, admin: str) -> None:
    first = {"name": "Ada", "email": "ada@example.org", "role": "editor"}
    assert stack.http("POST", "/admin/people", token=admin, json_body=first).status == 201

    taken = stack.http("POST", "/admin/people", token=admin, json_body={**first, "name": "Another Ada"})
    bad_role = stack.http("POST", "/admin/people", token=admin, json_body={**first, "role": "owner"})
    bad_id = stack.http("GET", "/admin/people/not-an-id", token=admin)

    assert (taken.status, taken.json()["error"]["code"]) == (409, "email_taken")
    assert bad_role.status == 422
    assert bad_id.status == 404
    assert len(stack.http("GET", "/admin/people", token=admin).json()["items"]) == 1


def test_an_admin_cannot_lock_themselves_out(stack: Stack, admin: str) -> None:
    boss = join(stack, admin, "admin")

    reply = stack.http("PATCH", f"/admin/people/{boss.id}", token=boss.token, json_body={"role": "contributor"})

    assert (reply.status, reply.json()["error"]["code"]) == (409, "own_account")
    assert stack.http("GET", f"/admin/people/{boss.id}", token=admin).json()["role"] == "admin"


def test_changes_to_people_and_tokens_are_in_the_audit_trail_with_who_made_them(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = legacy_token(stack, capsys)
    admin_id = stack.http("GET", "/admin/me", token=admin).json()["actor"]
    editor = join(stack, admin, "editor")
    stack.http("PATCH", f"/admin/people/{editor.id}", token=admin, json_body={"role": "contributor"})
    token_id = stack.http("GET", f"/admin/people/{editor.id}/tokens", token=admin).json()["items"][0]["token_id"]
    stack.http("DELETE", f"/admin/people/{editor.id}/tokens/{token_id}", token=admin)

    actions = audit_actions(stack)

    assert actions[0][0].startswith("cli:")
    assert actions[0][1] == "token.created"  # the CLI's own token
    assert actions[1:] == [
        (admin_id, "person.created", editor.id),
        (admin_id, "token.created", token_id),
        (admin_id, "person.updated", editor.id),
        (admin_id, "token.revoked", token_id),
    ]
