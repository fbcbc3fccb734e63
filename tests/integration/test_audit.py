"""The audit trail, through the HTTP API on the in-process stack: every transition of an article and every
admin action on people, tokens, subscribers and webhooks is an entry, newest first, a page at a time; no
entry holds an address, and no function may change or delete one."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from local.iam.calls import Permission
from tests.integration.conftest import Stack
from tests.integration.test_people import ARTICLE, Member, join, refused_for_role
from tests.integration.test_review import act, write
from tests.support import times
from tests.support.events import sample_event
from tests.support.receiver import webhook_receiver


def trail(stack: Stack, token: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Every entry, newest first, read a page of `limit` at a time."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        reply = stack.http("GET", f"/admin/audit?{query}", token=token)
        assert reply.status == 200, reply.body
        page = reply.json()
        assert len(page["items"]) <= limit
        entries += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return entries


def test_every_transition_of_an_article_is_in_the_audit_trail_with_who_made_it(stack: Stack, admin: str) -> None:
    writer, editor = join(stack, admin, "contributor"), join(stack, admin, "editor")
    article = write(stack, writer)
    path = f"/admin/articles/{article['id']}"
    later = {"publish_at": times.at_offset(times.now() + timedelta(days=3), hours=2)}
    moves: list[tuple[Member, str, Any]] = [
        (writer, "submit", None),
        (editor, "request-changes", {"comment": "Shorter, please."}),
        (writer, "submit", None),
        (editor, "approve", None),
        (editor, "schedule", later),
    ]
    stack.http("PATCH", path, token=writer.token, json_body={"title": "Harbour reopens at dawn"})
    for member, action, body in moves:
        assert act(stack, member, article, action, body).status == 200
    stack.http("DELETE", f"{path}/schedule", token=editor.token)
    for action in ("publish", "unpublish"):
        assert act(stack, editor, article, action).status == 200
    stack.http("DELETE", path, token=editor.token, headers={"If-Match": "*"})

    entries = [entry for entry in trail(stack, admin, limit=3) if entry["target"] == "article"]

    assert [(entry["action"], entry["actor"], entry["details"].get("from"), entry["details"].get("to"))
            for entry in reversed(entries)] == [
        ("article.created", writer.id, None, None),
        ("article.updated", writer.id, None, None),
        ("article.submitted", writer.id, "draft", "in_review"),
        ("article.changes_requested", editor.id, "in_review", "changes_requested"),
        ("article.submitted", writer.id, "changes_requested", "in_review"),
        ("article.approved", editor.id, "in_review", "approved"),
        ("article.scheduled", editor.id, "approved", "scheduled"),
        ("article.unscheduled", editor.id, "scheduled", "approved"),
        ("article.published", editor.id, "approved", "published"),
        ("article.unpublished", editor.id, "published", "draft"),
        ("article.deleted", editor.id, None, None),
    ]  # fmt: skip
    assert {entry["target_id"] for entry in entries} == {article["id"]}
    assert entries[-4]["details"]["comment"] == "Shorter, please."
    assert [entry["role"] for entry in reversed(entries[-3:])] == ["contributor", "contributor", "contributor"]
    times_listed = [entry["at"] for entry in entries]
    assert times_listed == sorted(times_listed, reverse=True)


def test_a_refused_transition_leaves_no_entry(stack: Stack, admin: str) -> None:
    writer = join(stack, admin, "contributor")
    article = write(stack, writer)
    before = len(trail(stack, admin))

    assert refused_for_role(act(stack, writer, article, "publish"), "editor", "contributor")
    assert act(stack, join(stack, admin, "editor"), article, "approve").status == 409

    actions = [entry["action"] for entry in trail(stack, admin)]
    assert len(actions) == before + 2  # the editor who joined: a person and a token, nothing else
    assert "article.published" not in actions
    assert "article.approved" not in actions


def test_admin_actions_on_subscribers_and_webhooks_are_recorded_without_an_address(stack: Stack, admin: str) -> None:
    address = "reader@example.org"
    assert stack.http("POST", "/subscribers", json_body={"email": address}).status == 202
    with webhook_receiver() as receiver:
        hook = stack.http("POST", "/admin/webhooks", token=admin,
                          json_body={"url": receiver.url, "events": ["article.published"]}).json()  # fmt: skip
        stack.http("PATCH", f"/admin/webhooks/{hook['id']}", token=admin, json_body={"description": "Slack"})
        stack.http("POST", f"/admin/webhooks/{hook['id']}/test", token=admin)
        stack.http("DELETE", f"/admin/webhooks/{hook['id']}", token=admin)
    assert stack.http("GET", "/admin/subscribers/export", token=admin).status == 200
    assert stack.http("DELETE", f"/admin/subscribers/{address}", token=admin).status == 204

    entries = [entry for entry in trail(stack, admin) if entry["target"] in ("webhook", "subscriber")]

    assert [(entry["action"], entry["target_id"]) for entry in reversed(entries)] == [
        ("webhook.created", hook["id"]),
        ("webhook.updated", hook["id"]),
        ("webhook.tested", hook["id"]),
        ("webhook.deleted", hook["id"]),
        ("subscribers.exported", "*"),
        ("subscriber.erased", "-"),
    ]
    assert "@" not in json.dumps(entries)
    assert "reader" not in json.dumps(stack.items("AuditTable"))


def test_only_admins_read_the_trail_and_a_forged_cursor_is_a_422(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor")

    assert refused_for_role(stack.http("GET", "/admin/audit", token=editor.token), "admin", "editor")
    forged = stack.http("GET", "/admin/audit?cursor=bm90LW91cnM", token=admin)
    assert (forged.status, forged.json()["error"]["code"]) == (422, "invalid_cursor")
    too_many = stack.http("GET", "/admin/audit?limit=101", token=admin)
    assert too_many.status == 422


@pytest.mark.parametrize("action", ["dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"])
def test_no_function_may_change_or_delete_an_entry(stack: Stack, action: str) -> None:
    table = f"arn:aws:dynamodb:{stack.resolver.region}:{stack.resolver.account_id}:table/{stack.table('AuditTable')}"

    allowed = [name for name, role in stack.policy.roles.items() if role.allows(Permission(action, table))]
    writers = [name for name, role in stack.policy.roles.items() if role.allows(Permission("dynamodb:PutItem", table))]

    assert allowed == []
    assert sorted(writers) == ["EditorFunction", "SchedulerFunction", "UploadFunction"]


def test_a_scheduled_publish_is_recorded_as_the_schedules_doing(stack: Stack, admin: str) -> None:
    # Given an article an editor scheduled a few minutes from now
    article = stack.http("POST", "/admin/articles", token=admin, json_body=ARTICLE).json()
    due = times.now() + timedelta(minutes=5)
    scheduled = stack.http("POST", f"/admin/articles/{article['id']}/schedule", token=admin,
                           json_body={"publish_at": times.at_offset(due, hours=0)})  # fmt: skip
    assert scheduled.status == 200, scheduled.body

    # When the scheduler runs once it is due
    with freeze_time(due + timedelta(minutes=1), tick=True):
        event = sample_event("schedule-publish-due") | {"scheduled_time": times.zulu(due)}
        result = stack.invoke("SchedulerFunction", event)

    # Then the entry names the schedule, acting as an editor
    assert result["published"] == [article["id"]]
    latest = trail(stack, admin)[0]
    assert (latest["action"], latest["actor"], latest["role"]) == ("article.published", "system:schedule", "editor")
