"""A storm of 200 concurrent mixed requests on the local stack: reads, sign-ups, competing edits of the same
version, and several publishes of one article in the middle of it all.

Nothing may fail with a 5xx, exactly one edit per version may win, and every confirmed subscriber gets the
article's newsletter exactly once. The counts are printed.
"""

from __future__ import annotations

import email
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.e2e.conftest import HttpReply, LocalStack

pytestmark = pytest.mark.e2e

CONCURRENT_REQUESTS = 200
SUBSCRIBERS = 20
EDITED_ARTICLES = 10
EDITS_PER_ARTICLE = 6
PUBLISHES = 20
SIGN_UPS = 40
DELIVERY_TIMEOUT_SECONDS = 180


@dataclass(frozen=True)
class Call:
    kind: str
    method: str
    path: str
    json_body: Any = None
    headers: dict[str, str] | None = None
    editor: bool = False
    target: str = ""


@dataclass(frozen=True)
class Outcome:
    call: Call
    reply: HttpReply


def text_part(raw: str) -> str:
    message = email.message_from_string(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def confirmed_subscribers(local_stack: LocalStack, marker: str) -> list[str]:
    """Sign up SUBSCRIBERS addresses and confirm each (the button behind the link in its confirmation email)."""
    addresses = [f"storm-{marker}-{number}@example.com" for number in range(SUBSCRIBERS)]
    for address in addresses:
        assert local_stack.request("POST", "/subscribers", json_body={"email": address}).status == 202
    for sent in local_stack.emails(to=f"storm-{marker}-"):
        if sent["to"] in addresses:
            link = next(
                urlsplit(url)
                for url in re.findall(r"https?://\S+", text_part(sent["raw"]))
                if urlsplit(url).path == "/subscribers/confirm"
            )
            assert local_stack.request("POST", f"{link.path}?{link.query}", data=b"").status == 200
    stats = local_stack.request("GET", "/admin/subscribers?status=confirmed&limit=100", editor=True).json()
    assert set(addresses) <= {item["email"] for item in stats["items"]}
    return addresses


def create_article(local_stack: LocalStack, title: str) -> dict[str, Any]:
    reply = local_stack.request(
        "POST", "/admin/articles", json_body={"title": title, "author": "Ada", "body": "Storm."}, editor=True
    )
    assert reply.status == 201, reply.body
    return dict(reply.json())


def storm_calls(marker: str, published: dict[str, Any], edited: list[dict[str, Any]]) -> list[Call]:
    """The mix, in a fixed shuffled order with the publishes in its middle third."""
    edits = [
        Call("edit", "PATCH", f"/admin/articles/{article['id']}", {"title": f"Edit {number} of {article['id']}"},
             {"If-Match": '"1"'}, editor=True, target=article["id"])
        for article in edited
        for number in range(EDITS_PER_ARTICLE)
    ]  # fmt: skip
    sign_ups = [
        Call("subscribe", "POST", "/subscribers", {"email": f"storm-{marker}-new-{number}@example.com"})
        for number in range(SIGN_UPS)
    ]
    publishes = [
        Call("publish", "POST", f"/admin/articles/{published['id']}/publish", editor=True, target=published["id"])
        for _ in range(PUBLISHES)
    ]
    reads_needed = CONCURRENT_REQUESTS - len(edits) - len(sign_ups) - len(publishes)
    read_paths = [
        ("read", "/articles?limit=20", False),
        ("read", "/feed.xml", False),
        ("read", f"/admin/articles/{edited[0]['id']}", True),
        ("read", "/admin/articles?limit=20", True),
        # 404 until one of the publishes lands
        ("read-published", f"/articles/{quote(published['slug'])}", False),
    ]
    reads = [
        Call(kind, "GET", path, editor=editor)
        for kind, path, editor in (read_paths[number % len(read_paths)] for number in range(reads_needed))
    ]
    others = edits + sign_ups + reads
    random.Random(20261128).shuffle(others)
    third = len(others) // 3
    return others[:third] + publishes + others[third:]


def run_concurrently(local_stack: LocalStack, calls: list[Call]) -> list[Outcome]:
    """Every call in its own thread, all released at once."""
    start = threading.Barrier(len(calls))

    def send(call: Call) -> Outcome:
        start.wait()
        reply = local_stack.request(
            call.method, call.path, json_body=call.json_body, headers=call.headers, editor=call.editor
        )
        return Outcome(call, reply)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))


def wait_until(condition: Callable[[], dict[str, Any] | None], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = condition()
        if answer is not None:
            return answer
        time.sleep(0.5)
    pytest.fail(f"not done within {timeout}s")


def report(config: pytest.Config, lines: list[str]) -> None:
    """Show the counts in pytest's output even when the test passes."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            for line in lines:
                reporter.write_line(line)


def test_a_storm_of_concurrent_requests_loses_nothing_and_mails_each_subscriber_once(
    local_stack: LocalStack, request: pytest.FixtureRequest
) -> None:
    # Given confirmed subscribers, an article to publish and articles that several editors change at once
    marker = secrets.token_hex(4)
    subscribers = confirmed_subscribers(local_stack, marker)
    published = create_article(local_stack, f"Storm edition {marker}")
    edited = [create_article(local_stack, f"Contested {marker} {number}") for number in range(EDITED_ARTICLES)]
    calls = storm_calls(marker, published, edited)
    assert len(calls) == CONCURRENT_REQUESTS

    try:
        # When all of it is sent at once
        started = time.monotonic()
        outcomes = run_concurrently(local_stack, calls)
        storm_seconds = time.monotonic() - started
        progress = wait_until(lambda: _delivery_done(local_stack, published["id"]), DELIVERY_TIMEOUT_SECONDS)
        delivered_seconds = time.monotonic() - started

        statuses = {kind: Counter[int]() for kind in ("read", "read-published", "subscribe", "edit", "publish")}
        for outcome in outcomes:
            statuses[outcome.call.kind][outcome.reply.status] += 1
        winners = Counter(outcome.call.target for outcome in outcomes if outcome.call.kind == "edit"
                          and outcome.reply.status == 200)  # fmt: skip
        newsletters = Counter(
            sent["to"]
            for sent in local_stack.emails(subject=published["title"])
            if sent["subject"] == published["title"]
        )
        per_subscriber = Counter(newsletters[address] for address in subscribers)
        report(
            request.config,
            [
                f"storm: {len(outcomes)} concurrent requests in {storm_seconds:.1f}s, "
                f"newsletter delivered after {delivered_seconds:.1f}s",
                *(f"  {kind:14} {dict(sorted(counts.items()))}" for kind, counts in statuses.items()),
                f"  edits: winners per contested version {dict(Counter(winners.values()))} "
                f"over {EDITED_ARTICLES} articles ({EDITS_PER_ARTICLE} editors each)",
                f"  newsletters per storm subscriber {dict(per_subscriber)}; to anyone twice: "
                f"{sum(1 for count in newsletters.values() if count > 1)}; delivery {progress}",
            ],
        )

        # Then no request failed with a 5xx, and each kind got what it should
        assert [o.reply.status for o in outcomes if o.reply.status >= 500] == []
        assert statuses["read"] == Counter({200: statuses["read"].total()})
        assert set(statuses["read-published"]) <= {200, 404}
        assert local_stack.request("GET", f"/articles/{quote(published['slug'])}").status == 200
        assert statuses["subscribe"] == Counter({202: SIGN_UPS})
        assert statuses["publish"] == Counter({200: PUBLISHES})
        assert {o.reply.json()["status"] for o in outcomes if o.call.kind == "publish"} == {"published"}
        # And exactly one edit per version won; the others were told their version was stale
        assert statuses["edit"] == Counter({200: EDITED_ARTICLES, 412: EDITED_ARTICLES * (EDITS_PER_ARTICLE - 1)})
        assert winners == Counter({article["id"]: 1 for article in edited})
        for article in edited:
            final = local_stack.request("GET", f"/admin/articles/{article['id']}", editor=True).json()
            won = next(o.call.json_body["title"] for o in outcomes
                       if o.call.target == article["id"] and o.reply.status == 200)  # fmt: skip
            assert (final["version"], final["title"]) == (2, won)
        # And every confirmed subscriber got the newsletter exactly once; nobody got it twice
        assert per_subscriber == Counter({1: SUBSCRIBERS})
        assert max(newsletters.values()) == 1
        assert progress["sent"] == len(newsletters)
        assert progress["sent"] + progress["failed"] + progress["suppressed"] == progress["total"]
    finally:
        for address in subscribers + [f"storm-{marker}-new-{number}@example.com" for number in range(SIGN_UPS)]:
            local_stack.request("DELETE", f"/admin/subscribers/{quote(address)}", editor=True)


def _delivery_done(local_stack: LocalStack, article_id: str) -> dict[str, Any] | None:
    reply = local_stack.request("GET", f"/admin/articles/{article_id}/delivery", editor=True)
    assert reply.status == 200, reply.body
    progress: dict[str, Any] = reply.json()
    return progress if progress["state"] == "done" else None
