"""The local outbox in a real browser: a long email is shown whole, its frame as tall as the email."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import LocalStack
from tests.e2e.test_browser import TIMEOUT_MS, browser

pytestmark = pytest.mark.e2e
__all__ = ["browser"]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    try:
        yield opened
    finally:
        context.close()


def test_a_long_email_grows_its_frame_instead_of_being_cut_off(page: Page, local_stack: LocalStack) -> None:
    # Given a long newsletter in the outbox (a test email of an article of 120 paragraphs)
    body = "\n\n".join(f"Paragraph {n} of the long story." for n in range(120))
    article = local_stack.request(
        "POST", "/admin/articles", json_body={"title": "A long read", "author": "Ada", "body": body}, editor=True
    ).json()
    to = f"long-{secrets.token_hex(4)}@example.org"
    sent = local_stack.request("POST", f"/admin/articles/{article['id']}/test-email", json_body={"to": to}, editor=True)
    assert sent.status == 202, sent.body
    [email_id] = [item["id"] for item in local_stack.emails(to=to)]

    # When it is opened in the outbox
    page.goto(f"{local_stack.api_url}/_local/?id={email_id}")
    frame = page.locator("iframe")
    expect(frame.content_frame.get_by_text("Paragraph 119 of the long story.")).to_be_attached()

    # Then the frame is as tall as the email inside it: nothing is cut off, nothing scrolls inside it
    page.wait_for_function(
        "() => { const f = document.querySelector('iframe');"
        " return f.getBoundingClientRect().height >= f.contentDocument.documentElement.scrollHeight; }"
    )
    height = frame.evaluate("f => f.getBoundingClientRect().height")
    assert height > 3000
    # And the email itself ran no script (the sandbox has no allow-scripts)
    assert frame.evaluate("f => f.sandbox.contains('allow-scripts')") is False
