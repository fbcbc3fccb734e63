"""Webhooks on the local stack (`make dev`): an editor registers a receiver on this machine over HTTP, an
article is published, and the receiver gets the signed event; a failed attempt comes again about 2 s later
(WebhookRetryBaseSeconds of the local stack), with the same id."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import LocalStack
from tests.support.receiver import webhook_receiver

pytestmark = pytest.mark.e2e


def test_a_published_article_reaches_a_local_receiver_and_a_failure_is_retried_seconds_later(
    local_stack: LocalStack,
) -> None:
    with webhook_receiver() as receiver:
        created = local_stack.request(
            "POST", "/admin/webhooks", json_body={"url": receiver.url, "events": ["article.published"]}, editor=True
        )
        assert created.status == 201, created.body
        hook = created.json()
        article = local_stack.request(
            "POST", "/admin/articles", json_body={"title": "Hooked", "author": "Ada", "body": "x"}, editor=True
        ).json()

        # The stack is shared: another test's article (a scheduled one, say) may be published meanwhile.
        def ours(body: bytes) -> bool:
            return bool((json.loads(body).get("data") or {}).get("id") == article["id"])

        receiver.answer(500, then=200, of=ours)
        assert local_stack.request("POST", f"/admin/articles/{article['id']}/publish", editor=True).status == 200

        first, second = receiver.wait_for(2, event_type="article.published", where=lambda r: ours(r.body), timeout=90)

    assert (first.status, second.status) == (500, 200)
    assert first.body == second.body
    assert first.headers["newsdesk-event-id"] == second.headers["newsdesk-event-id"]
    assert second.json()["data"]["id"] == article["id"]
    fields = dict(part.split("=", 1) for part in second.headers["newsdesk-signature"].split(","))
    expected = hmac.new(hook["secret"].encode(), f"{fields['t']}.".encode() + second.body, hashlib.sha256)
    assert hmac.compare_digest(expected.hexdigest(), fields["v1"])
    listed = local_stack.request("GET", f"/admin/webhooks/{hook['id']}/deliveries", editor=True).json()["items"]
    deliveries = [item for item in listed if item["event_id"] == second.headers["newsdesk-event-id"]]
    assert [(item["state"], item["attempt"]) for item in deliveries] == [("succeeded", 2)]
    # The retry came after the local stack's 2 s, not the deployed minute.
    first_at, second_at = (datetime.fromisoformat(a["at"]) for a in deliveries[0]["attempts"])
    assert timedelta(seconds=2) <= second_at - first_at < timedelta(seconds=30)


def test_the_local_stacks_own_aws_endpoint_is_refused_as_a_webhook_target(local_stack: LocalStack) -> None:
    # 127.0.0.1 takes receivers on the local stack, but not on the port of its embedded AWS: a webhook
    # there would POST signed JSON into the stack's own AWS.
    aws_port = urlsplit(local_stack.aws_endpoint).port

    refused = local_stack.request(
        "POST",
        "/admin/webhooks",
        json_body={"url": f"http://127.0.0.1:{aws_port}/", "events": ["article.published"]},
        editor=True,
    )

    assert refused.status == 422, refused.body
    assert refused.json()["error"]["code"] == "invalid_webhook_url"
    assert str(aws_port) in refused.json()["error"]["message"]
