"""The reader's whole journey over HTTP on the local stack: subscribe, confirm, receive, leave."""

from __future__ import annotations

import email
import re
import time
from email import policy
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e
ADDRESS = "journey@example.org"


def emails_to(local_stack: LocalStack, address: str) -> list[EmailMessage]:
    messages = []
    for sent in local_stack.emails(to=address):
        message = email.message_from_string(sent["raw"], policy=policy.default)
        assert isinstance(message, EmailMessage)
        if address in str(message["To"]):
            messages.append(message)
    return messages


def wait_for(local_stack: LocalStack, address: str, subject: str, timeout: float = 60) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in emails_to(local_stack, address) if m["Subject"] == subject]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no email {subject!r} to {address} within {timeout}s")


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_subscribe_confirm_receive_and_leave_in_one_click(local_stack: LocalStack) -> None:
    assert local_stack.request("POST", "/subscribers", json_body={"email": ADDRESS}).status == 202
    confirmation = wait_for(local_stack, ADDRESS, "Confirm your subscription to Newsdesk")
    [confirm_url] = re.findall(r"https?://\S+/subscribers/confirm\?token=\S+", text_of(confirmation))
    assert confirm_url.startswith(local_stack.api_url)
    # Opening the link (as a mail scanner would) only shows the button; pressing it posts the form.
    assert b"Confirm my subscription" in local_stack.request("GET", local_path(confirm_url)).body
    assert b"You are subscribed" in local_stack.request("POST", local_path(confirm_url), data=b"").body

    article = local_stack.request(
        "POST",
        "/admin/articles",
        json_body={"title": "Bridge opens", "author": "Ada", "body": "At *last*."},
        editor=True,
    ).json()
    local_stack.request("POST", f"/admin/articles/{article['id']}/publish", editor=True)
    newsletter = wait_for(local_stack, ADDRESS, "Bridge opens")

    assert newsletter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_link = re.search(r"<(https?://[^>]+)>", str(newsletter["List-Unsubscribe"]))
    assert https_link is not None
    # What a mail client does for RFC 8058: POST the form body, no cookies, no login.
    left = local_stack.request(
        "POST",
        local_path(https_link.group(1)),
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert left.status == 200
    assert b"You are unsubscribed" in left.body
    listed = local_stack.request("GET", "/admin/subscribers?status=unsubscribed", editor=True).json()["items"]
    assert ADDRESS in [s["email"] for s in listed]
    deadline = time.monotonic() + 60
    while (
        local_stack.request("GET", f"/admin/articles/{article['id']}/delivery", editor=True).json()["state"] != "done"
    ):
        assert time.monotonic() < deadline, "the delivery did not finish"
        time.sleep(0.2)
