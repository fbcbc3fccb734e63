"""Draft previews, through the HTTP API on the in-process stack: the author or an editor shares a draft (or
one of its revisions) by a signed link; anyone with the link sees it, never indexed nor cached, until it
expires or is revoked, and then a 410 page says which."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from freezegun import freeze_time

from tests.integration.conftest import Reply, Stack
from tests.integration.test_people import join, refused_for_role
from tests.integration.test_review import write
from tests.support import times
from tests.support.html_safety import executable_content


def share(stack: Stack, token: str, article_id: str, **request: Any) -> dict[str, Any]:
    reply = stack.http("POST", f"/admin/articles/{article_id}/previews", token=token, json_body=request)
    assert reply.status == 201, reply.body
    return dict(reply.json())


def visit(stack: Stack, preview: dict[str, Any]) -> Reply:
    """Open the link as someone without any token would."""
    return stack.http("GET", urlsplit(preview["url"]).path)


def test_a_preview_link_shows_a_draft_to_someone_without_a_token_never_indexed_or_cached(
    stack: Stack, admin: str
) -> None:
    writer = join(stack, admin, "contributor")
    draft = write(stack, writer, body="Boats are **back**.\n\n<script>alert(1)</script>")

    preview = share(stack, writer.token, draft["id"], expires_in_hours=2)
    page = visit(stack, preview)

    assert page.status == 200, page.body
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["x-robots-tag"] == "noindex"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<meta name="robots" content="noindex">' in page.body
    assert "Harbour reopens" in page.body
    assert "<strong>back</strong>" in page.body
    article = page.body.split("<article>", 1)[1].split("</article>", 1)[0]
    assert executable_content(article) == []  # the sanitized HTML a save stores
    assert "<script" not in page.body
    assert preview["revision"] is None
    assert stack.http("GET", f"/articles/{draft['slug']}").status == 404  # still a draft to everyone else
    listed = stack.http("GET", f"/admin/articles/{draft['id']}/previews", token=writer.token).json()["items"]
    assert [(item["id"], item["url"]) for item in listed] == [(preview["id"], None)]  # the url is shown once


def test_a_preview_of_a_revision_shows_what_that_save_wrote(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor")
    article = write(stack, editor)
    stack.http("PATCH", f"/admin/articles/{article['id']}", token=editor.token,
               json_body={"title": "Harbour stays shut", "body": "Storm damage."})  # fmt: skip

    first = visit(stack, share(stack, editor.token, article["id"], revision=1))
    current = visit(stack, share(stack, editor.token, article["id"]))
    missing = stack.http("POST", f"/admin/articles/{article['id']}/previews", token=editor.token,
                         json_body={"revision": 9})  # fmt: skip

    assert "Harbour reopens" in first.body
    assert "Preview of revision 1" in first.body
    assert "Storm damage" not in first.body
    assert "Harbour stays shut" in current.body
    assert missing.status == 404


def test_a_revoked_link_stops_at_once_and_says_so(stack: Stack, admin: str) -> None:
    writer = join(stack, admin, "contributor")
    draft = write(stack, writer)
    preview = share(stack, writer.token, draft["id"])
    assert visit(stack, preview).status == 200

    revoked = stack.http("DELETE", f"/admin/articles/{draft['id']}/previews/{preview['id']}", token=writer.token)
    page = visit(stack, preview)

    assert revoked.status == 200
    assert revoked.json()["revoked_at"] is not None
    assert page.status == 410
    assert "This preview was revoked" in page.body
    assert "Harbour reopens" not in page.body
    assert page.headers["cache-control"] == "no-store"


def test_an_expired_link_says_so(stack: Stack, admin: str) -> None:
    writer = join(stack, admin, "contributor")
    preview = share(stack, writer.token, write(stack, writer)["id"], expires_in_hours=1)

    with freeze_time(times.now() + timedelta(minutes=59), tick=True):
        before = visit(stack, preview)
    with freeze_time(times.now() + timedelta(hours=1, minutes=1), tick=True):
        after = visit(stack, preview)

    assert before.status == 200
    assert after.status == 410
    assert "This preview has expired" in after.body


def test_a_deleted_draft_is_gone_and_a_link_that_is_not_ours_is_a_404(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor")
    draft = write(stack, editor)
    preview = share(stack, editor.token, draft["id"])
    path = urlsplit(preview["url"]).path
    stack.http("DELETE", f"/admin/articles/{draft['id']}", token=editor.token)

    gone = visit(stack, preview)
    altered = stack.http("GET", path[:-3] + ("abc" if not path.endswith("abc") else "xyz"))
    made_up = stack.http("GET", "/preview/not-a-token")

    assert gone.status == 410
    assert "This preview is gone" in gone.body
    assert (altered.status, made_up.status) == (404, 404)
    assert "This preview link does not work" in made_up.body


def test_only_the_author_or_an_editor_shares_a_draft(stack: Stack, admin: str) -> None:
    writer, other = join(stack, admin, "contributor"), join(stack, admin, "contributor")
    editor = join(stack, admin, "editor")
    draft = write(stack, writer)

    refused = stack.http("POST", f"/admin/articles/{draft['id']}/previews", token=other.token, json_body={})
    by_editor = share(stack, editor.token, draft["id"])
    revoke = stack.http("DELETE", f"/admin/articles/{draft['id']}/previews/{by_editor['id']}", token=other.token)
    too_long = stack.http("POST", f"/admin/articles/{draft['id']}/previews", token=writer.token,
                          json_body={"expires_in_hours": 24 * 31})  # fmt: skip

    assert refused_for_role(refused, "editor", "contributor")
    assert refused_for_role(revoke, "editor", "contributor")
    assert too_long.status == 422
    assert visit(stack, by_editor).status == 200
    actions = [entry["action"] for entry in stack.http("GET", "/admin/audit", token=admin).json()["items"]]
    assert actions[0] == "preview.created"


def test_a_preview_of_an_embargoed_article_says_until_when(stack: Stack, admin: str) -> None:
    editor = join(stack, admin, "editor")
    draft = write(stack, editor, body="The report is out.")
    until = times.now() + timedelta(days=2)
    embargoed = stack.http("POST", f"/admin/articles/{draft['id']}/embargo", token=editor.token,
                           json_body={"embargo_until": times.zulu(until)})  # fmt: skip
    assert embargoed.status == 200, embargoed.body

    page = visit(stack, share(stack, editor.token, draft["id"]))

    notice = page.body.split('id="notice">', 1)[1].split("</p>", 1)[0]
    assert notice.startswith(f"EMBARGOED until {until:%Y-%m-%d %H:%M} UTC"), notice
