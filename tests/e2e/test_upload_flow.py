"""An editor publishes by uploading Markdown to the local stack's S3 (as `aws s3 cp --endpoint-url` does);
a reader finds the article over the public API."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest

from local.aws.embedded import DUMMY_CREDENTIALS
from tests.e2e.conftest import HttpReply, LocalStack

pytestmark = pytest.mark.e2e

# A cold start of the upload function on a busy machine takes a while; on an idle one it is a second or two.
WITHIN_SECONDS = 60


def wait_for_article(local_stack: LocalStack, slug: str) -> HttpReply:
    deadline = time.monotonic() + WITHIN_SECONDS
    while True:
        reply = local_stack.request("GET", f"/articles/{slug}")
        if reply.status == 200 or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def test_a_markdown_upload_to_the_embedded_s3_is_published(local_stack: LocalStack) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=local_stack.aws_endpoint,
        region_name=local_stack.region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    slug = f"ferry-timetable-{uuid.uuid4().hex[:8]}"
    story = f"---\ntitle: New ferry timetable\nslug: {slug}\ntags: [harbour]\n---\nFerries run *hourly* from May.\n"
    key = f"articles/Ferry timetable é {slug}.md"

    s3.put_object(Bucket=local_stack.physical_name("UploadsBucket"), Key=key, Body=story.encode())

    reply = wait_for_article(local_stack, slug)
    assert reply.status == 200, f"not published within {WITHIN_SECONDS}s: {reply.body!r}"
    article = reply.json()
    assert (article["title"], article["html"]) == (
        "New ferry timetable",
        "<p>Ferries run <em>hourly</em> from May.</p>\n",
    )
    listed = local_stack.request("GET", "/admin/uploads?limit=100", editor=True).json()["items"]
    record = next(item for item in listed if item["key"] == key)
    assert (record["outcome"], record["article_id"]) == ("published", article["id"])
