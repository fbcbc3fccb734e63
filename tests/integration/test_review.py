"""Review before publish, through the HTTP API on the in-process stack: a contributor writes and submits, an
editor approves, asks for changes or publishes; each move is an event on the bus and can be a webhook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.integration.conftest import BusTap, Reply, Stack
from tests.integration.test_events import types
from tests.integration.test_people import ARTICLE, Member, join, refused_for_role
from tests.support import times
from tests.support.receiver import webhook_receiver


def write(stack: Stack, member: Member, **fields: Any) -> dict[str, Any]:
    reply = stack.http("POST", "/admin/articles", token=member.token, json_body={**ARTICLE, **fields})
    assert reply.status == 201, reply.body
    return dict(reply.json())


def act(stack: Stack, member: Member, article: dict[str, Any], action: str, body: Any = None) -> Reply:
    return stack.http("POST", f"/admin/articles/{article['id']}/{action}", token=member.token, json_body=body)


@pytest.fixture
def newsroom(stack: Stack, admin: str) -> tuple[Member, Member]:
    return join(stack, admin, "contributor", "Cora Writer"), join(stack, admin, "editor", "Ed Desk")


def test_a_contributors_article_goes_through_review_to_publication(
    stack: Stack, newsroom: tuple[Member, Member], bus: BusTap
) -> None:
    writer, editor = newsroom
    article = write(stack, writer)

    submitted = act(stack, writer, article, "submit")
    locked = stack.http("PATCH", f"/admin/articles/{article['id']}", token=writer.token, json_body={"title": "Mine"})
    sent_back = act(stack, editor, article, "request-changes", {"comment": "Add the vote count."})
    edited = stack.http(
        "PATCH", f"/admin/articles/{article['id']}", token=writer.token, json_body={"body": "Passed 7 to 2."}
    )
    resubmitted = act(stack, writer, article, "submit")
    approved = act(stack, editor, article, "approve")
    published = act(stack, editor, article, "publish")
    stack.drain()

    assert [reply.status for reply in (submitted, sent_back, edited, resubmitted, approved, published)] == [200] * 6
    assert (locked.status, locked.json()["error"]["code"]) == (409, "not_editable")
    assert sent_back.json()["status"] == "changes_requested"
    assert sent_back.json()["last_transition"]["comment"] == "Add the vote count."
    assert (approved.json()["status"], published.json()["status"]) == ("approved", "published")
    assert published.json()["last_transition"]["by"] == editor.id
    assert stack.http("GET", f"/articles/{article['slug']}").json()["html"] == "<p>Passed 7 to 2.</p>\n"
    # The editor's publish announced the newsletter: its delivery exists.
    assert stack.http("GET", f"/admin/articles/{article['id']}/delivery", token=editor.token).status == 200

    events = [envelope for envelope in bus() if envelope["detail-type"].startswith("article.")]
    assert types(events) == [
        "article.submitted",
        "article.changes_requested",
        "article.submitted",
        "article.approved",
        "article.published",
    ]
    data = [envelope["detail"]["data"] for envelope in events]
    assert [(item.get("by"), item.get("previous_status")) for item in data[:4]] == [
        (writer.id, "draft"),
        (editor.id, "in_review"),
        (writer.id, "changes_requested"),
        (editor.id, "in_review"),
    ]
    assert data[1]["comment"] == "Add the vote count."
    assert "body" not in data[0]
    assert "html" not in data[0]


def test_a_contributor_cannot_approve_publish_or_schedule_and_nothing_changes(
    stack: Stack, newsroom: tuple[Member, Member]
) -> None:
    writer, _ = newsroom
    article = write(stack, writer)
    act(stack, writer, article, "submit")
    later = {"publish_at": times.at_offset(times.now() + timedelta(days=2), hours=1)}

    refusals = [
        act(stack, writer, article, "approve"),
        act(stack, writer, article, "publish"),
        act(stack, writer, article, "schedule", later),
        act(stack, writer, article, "request-changes", {"comment": "Self-review."}),
        act(stack, writer, article, "unpublish"),
    ]

    assert all(refused_for_role(reply, "editor", "contributor") for reply in refusals), [r.body for r in refusals]
    after = stack.http("GET", f"/admin/articles/{article['id']}", token=writer.token).json()
    assert (after["status"], after["version"]) == ("in_review", 2)


def test_contributors_see_and_touch_only_their_own_articles(
    stack: Stack, newsroom: tuple[Member, Member], admin: str
) -> None:
    writer, editor = newsroom
    other = join(stack, admin, "contributor", "Other Writer")
    mine, theirs, editors = write(stack, writer), write(stack, other), write(stack, editor)

    listed = stack.http("GET", "/admin/articles", token=writer.token).json()["items"]
    read = stack.http("GET", f"/admin/articles/{theirs['id']}", token=writer.token)
    changed = stack.http("PATCH", f"/admin/articles/{editors['id']}", token=writer.token, json_body={"title": "X"})
    submitted = act(stack, writer, theirs, "submit")
    deleted = stack.http("DELETE", f"/admin/articles/{theirs['id']}", token=writer.token)

    assert [item["id"] for item in listed] == [mine["id"]]
    assert all(refused_for_role(reply, "editor", "contributor") for reply in (read, changed, submitted, deleted))
    everything = stack.http("GET", "/admin/articles", token=editor.token).json()["items"]
    assert {item["id"] for item in everything} == {mine["id"], theirs["id"], editors["id"]}
    assert [item["status"] for item in everything] == ["draft"] * 3


def test_moves_the_review_does_not_allow_are_409_and_a_request_for_changes_needs_a_comment(
    stack: Stack, newsroom: tuple[Member, Member]
) -> None:
    writer, editor = newsroom
    draft = write(stack, writer)

    approve_draft = act(stack, editor, draft, "approve")
    changes_to_draft = act(stack, editor, draft, "request-changes", {"comment": "Why?"})
    act(stack, writer, draft, "submit")
    no_comment = act(stack, editor, draft, "request-changes", {"comment": "  "})
    submitted_again = act(stack, writer, draft, "submit")

    assert (approve_draft.status, approve_draft.json()["error"]["code"]) == (409, "invalid_transition")
    assert (changes_to_draft.status, changes_to_draft.json()["error"]["code"]) == (409, "invalid_transition")
    assert no_comment.status == 422
    assert (submitted_again.status, submitted_again.json()["version"]) == (200, 2)  # no second submission


def test_an_editor_may_still_publish_a_draft_at_once_and_unscheduling_returns_to_approved(
    stack: Stack, newsroom: tuple[Member, Member]
) -> None:
    writer, editor = newsroom
    quick = write(stack, editor)
    reviewed = write(stack, writer)
    act(stack, writer, reviewed, "submit")
    act(stack, editor, reviewed, "approve")
    later = {"publish_at": times.at_offset(times.now() + timedelta(days=2), hours=1)}

    published = act(stack, editor, quick, "publish")
    scheduled = act(stack, editor, reviewed, "schedule", later)
    unscheduled = stack.http("DELETE", f"/admin/articles/{reviewed['id']}/schedule", token=editor.token)

    assert (published.status, published.json()["status"]) == (200, "published")
    assert scheduled.json()["status"] == "scheduled"
    assert (unscheduled.status, unscheduled.json()["status"], unscheduled.json()["publish_at"]) == (
        200, "approved", None,
    )  # fmt: skip


def test_the_review_moves_can_be_webhooks(stack: Stack, newsroom: tuple[Member, Member], admin: str) -> None:
    writer, editor = newsroom
    with webhook_receiver() as receiver:
        events = ["article.submitted", "article.approved"]
        hook = stack.http("POST", "/admin/webhooks", token=admin, json_body={"url": receiver.url, "events": events})
        assert hook.status == 201, hook.body
        article = write(stack, writer)
        act(stack, writer, article, "submit")
        act(stack, editor, article, "approve")
        act(stack, editor, article, "publish")
        stack.drain()

        kinds = [request.json()["type"] for request in receiver.requests]

    # Each once (webhook deliveries make no promise of order: each is its own queued attempt).
    assert sorted(kinds) == ["article.approved", "article.submitted"]
