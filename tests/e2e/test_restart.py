"""Stopping `make dev` and starting it again at once: the ports are free again, and with NEWSDESK_STATE_DIR
the data is still there (a token, an article, a subscriber and the links already emailed to them)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from local.aws.embedded import client
from local.stack_process import LocalStack, free_ports, local_stack_process
from tests.support.mail import as_mail

pytestmark = pytest.mark.e2e

ADDRESS = "kept@example.org"


def confirm_path(stack: LocalStack, address: str) -> str:
    [sent] = stack.emails(to=address)
    link = urlsplit(as_mail(sent).link("/subscribers/confirm"))
    return f"{link.path}?{link.query}"


def settled(stack: LocalStack, article_id: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while stack.request("GET", f"/admin/articles/{article_id}/delivery", editor=True).json()["state"] != "done":
        assert time.monotonic() < deadline, "the newsletter did not settle"
        time.sleep(0.5)


def test_a_stack_started_again_at_once_on_its_ports_keeps_its_data(tmp_path: Path) -> None:
    # Given a stack that keeps its data, with an article, a sign-up and a file in the uploads bucket
    api_port, aws_port = free_ports(2)
    ports = (api_port, aws_port)
    keep = {"NEWSDESK_STATE_DIR": str(tmp_path / "state")}
    with local_stack_process(tmp_path / "first.log", keep, ports=ports) as first:
        article = first.request(
            "POST", "/admin/articles", json_body={"title": "Kept", "author": "Ada", "body": "Still here."}, editor=True
        ).json()
        assert first.request("POST", f"/admin/articles/{article['id']}/publish", editor=True).status == 200
        assert first.request("POST", "/subscribers", json_body={"email": ADDRESS}).status == 202
        confirm = confirm_path(first, ADDRESS)
        s3 = client("s3", first.aws_endpoint, first.region)
        bucket = first.physical_name("UploadsBucket")
        s3.put_object(Bucket=bucket, Key="media/kept.txt", Body=b"v1")
        s3.put_object(Bucket=bucket, Key="media/kept.txt", Body=b"v2")
        old_token, state_path = first.token, first.state_path
        settled(first, article["id"])  # a quiet stack stops in seconds (the test waits 20 at most)
        assert (state_path / f"{api_port}.json").exists()  # where `newsdesk --local` finds it

    # When it is stopped and started again at once, on the same ports
    with local_stack_process(tmp_path / "second.log", keep, ports=ports) as second:
        # Then it serves on them, and the first one's editor token, article and sign-up are there
        assert second.api_url == first.api_url
        assert second.token != old_token
        editor = {"Authorization": f"Bearer {old_token}"}
        listed = second.request("GET", "/admin/articles", headers=editor)
        assert listed.status == 200
        assert [item["id"] for item in listed.json()["items"]] == [article["id"]]
        assert second.request("GET", f"/articles/{article['slug']}").json()["title"] == "Kept"
        # The link the first stack emailed still confirms (the signing secret was kept too)
        assert second.request("POST", confirm, data=b"").status == 200
        subscriber = second.request("GET", f"/admin/subscribers/{quote(ADDRESS)}", headers=editor).json()
        assert subscriber["status"] == "confirmed"
        s3 = client("s3", second.aws_endpoint, second.region)
        versions = s3.list_object_versions(Bucket=bucket, Prefix="media/kept.txt")["Versions"]
        assert s3.get_object(Bucket=bucket, Key="media/kept.txt")["Body"].read() == b"v2"
        assert len(versions) == 2

    # A stop leaves no entry for `newsdesk --local` behind, and says nothing about connection pools
    assert not (state_path / f"{api_port}.json").exists()
    for log in ("first.log", "second.log"):
        assert "Connection pool is full" not in (tmp_path / log).read_text()
